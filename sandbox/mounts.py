"""Every simulator in one WSGI app, each under its own prefix, so one port serves them all.

`flask --app app sandbox` serves this; connectors are pointed at
`http://127.0.0.1:8001/<prefix>` (e.g. BIGCHANGE_BASE_URL=…/bigchange). Each
simulator keeps its control routes under its own prefix
(`/bigchange/__sandbox__/calls`). Adding a simulator is one entry in MOUNTS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, jsonify
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from sandbox import additiv, bigchange, bigchange_webservice, lightening

MOUNTS: dict[str, Callable[[str], Flask]] = {
    "/bigchange": lambda key: bigchange.create_app(api_key=key),
    "/bigchange-webservice": lambda key: bigchange_webservice.create_app(api_key=key),
    "/lightening": lambda key: lightening.create_app(api_key=key),
    "/additiv": lambda key: additiv.create_app(api_key=key),
}


@dataclass(frozen=True)
class Simulated:
    """How a connector is pointed at its simulator: Settings fields ("{url}": this server, "{key}": its key)."""

    connector: str
    credential: str  # the Settings field whose absence means "use the simulator"
    settings: dict[str, str]


SIMULATED = (
    Simulated(
        "BigChange", "bigchange_api_key", {"bigchange_base_url": "{url}/bigchange", "bigchange_api_key": "{key}"}
    ),
    Simulated(
        "BigChange web service",
        "bigchange_webservice_key",
        {
            "bigchange_webservice_url": "{url}/bigchange-webservice/services.ashx",
            "bigchange_webservice_username": "sandbox-user",
            "bigchange_webservice_password": "{key}",
            "bigchange_webservice_key": "{key}",
        },
    ),
    Simulated(
        "Lightening", "lightening_token", {"lightening_base_url": "{url}/lightening", "lightening_token": "{key}"}
    ),
    Simulated("additiv", "additiv_token", {"additiv_base_url": "{url}/additiv", "additiv_token": "{key}"}),
)


def sandbox_settings(url: str, key: str, connectors: tuple[Simulated, ...] = SIMULATED) -> dict[str, str]:
    """Settings values that point these connectors at the simulators served at `url`."""
    return {
        name: value.format(url=url.rstrip("/"), key=key)
        for simulated in connectors
        for name, value in simulated.settings.items()
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
