"""Every simulator in one WSGI app, each under its own prefix, so one port serves them all.

`flask --app app sandbox` serves this; connectors are pointed at
`http://127.0.0.1:8001/<prefix>` (e.g. BIGCHANGE_BASE_URL=…/bigchange). Each
simulator keeps its control routes under its own prefix
(`/bigchange/__sandbox__/calls`). Adding a simulator is one entry in MOUNTS.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, jsonify
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from sandbox import bigchange

MOUNTS: dict[str, Callable[[str], Flask]] = {
    "/bigchange": lambda key: bigchange.create_app(api_key=key),
}


def create_app(api_key: str = "sandbox-key") -> DispatcherMiddleware:
    """All simulators, each accepting `api_key` as its credential."""
    index = Flask("sandbox")

    @index.get("/")
    def simulators() -> Response:
        return jsonify(simulators=sorted(MOUNTS))

    @index.errorhandler(404)
    def not_found(_exc: Exception) -> tuple[Response, int]:
        return jsonify(error=f"no simulator here; mounted: {', '.join(sorted(MOUNTS))}"), 404

    return DispatcherMiddleware(index, {prefix: factory(api_key) for prefix, factory in MOUNTS.items()})
