"""A TCP proxy that can go dark: "the API is down" as a real connection refusal.

Stopping the simulator itself would lose its in-memory state (the contacts a
run already created), which a real outage does not; so the drill stops this
proxy in front of it instead.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from bootstrap.embedded_redis import free_port


class Proxy:
    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = ("127.0.0.1", target_port)
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Refuse new connections (open ones are cut too, as when a host goes away)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink, listener), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, listener: socket.socket) -> None:
        try:
            while listener.fileno() != -1 and (chunk := source.recv(65536)):
                sink.sendall(chunk)
        except OSError:
            pass  # either side closed: the other pipe sees it too
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):  # already closed by the other pipe
                    sock.close()
