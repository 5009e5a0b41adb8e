"""Serve a simulator app over real HTTP, in a background thread (tests) or the foreground (CLI).

Why real HTTP and not `WSGITransport`: the connector's timeouts, keep-alive, headers
and `Retry-After` handling only get exercised through a socket. Werkzeug's threaded
server is enough: the simulators guard their own state with locks.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from types import TracebackType

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import BaseWSGIServer, make_server

App = Flask | DispatcherMiddleware

log = logging.getLogger(__name__)
_POLL_SECONDS = 0.05


@dataclass
class RunningServer:
    """A simulator listening on `url` until `stop()`; usable as a context manager."""

    url: str
    _server: BaseWSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting requests, wait for the serving loop, release the socket."""
        self._server.shutdown()
        self._thread.join(timeout)
        self._server.server_close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_in_thread(app: App, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start `app` on a daemon thread and return once the socket is listening.

    Args:
        port: 0 picks a free port; read the real one from `RunningServer.url`.
    """
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever,
        # A short poll keeps stop() quick; the default 0.5 s adds up across test modules.
        kwargs={"poll_interval": _POLL_SECONDS},
        name=f"sandbox-{server.port}",
        daemon=True,
    )
    thread.start()
    return RunningServer(url=f"http://{host}:{server.port}", _server=server, _thread=thread)


def serve_forever(app: App, host: str = "127.0.0.1", port: int = 8081) -> None:
    """Serve `app` in the foreground until interrupted (the `flask sandbox` command)."""
    server = make_server(host, port, app, threaded=True)
    log.info("sandbox listening on http://%s:%s", host, server.port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
