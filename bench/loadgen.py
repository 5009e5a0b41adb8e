"""An asyncio HTTP/1.1 load generator: closed-loop (saturation) and open-loop (fixed rate).

Why not httpx or aiohttp: on a 2-core machine the client shares the CPU with
the server it measures, so it must be as cheap per request as possible. A
keep-alive POST over a raw asyncio stream costs a fraction of a full client's
bookkeeping. It speaks just enough HTTP/1.1 for our own servers: Content-Length
bodies (chunked read as a fallback), keep-alive, `Connection: close`.

Open-loop latency is measured from each request's *scheduled* send time, not
from when it was actually sent: if the server (or the client) falls behind, the
wait shows up in the latency instead of being hidden (coordinated omission).
"""

from __future__ import annotations

import asyncio
import itertools
import resource
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.stats import summarize

BodyFactory = Callable[[int], bytes]


class StaleConnection(Exception):
    """A reused keep-alive connection was closed by the server before it answered anything."""


@dataclass(frozen=True)
class Target:
    """Where the requests go: POST http://host:port/path with these extra headers."""

    host: str
    port: int
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def request(self, body: bytes) -> bytes:
        extra = "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        )
        return head.encode("latin-1") + body


def schedule(rate: float, duration: float) -> list[float]:
    """Send offsets (seconds from the start) of an open-loop run: evenly spaced, `rate` per second.

    Raises:
        ValueError: a rate or duration that is not positive.
    """
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    return [i / rate for i in range(round(rate * duration))]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status and whether the connection may be reused.

    Raises:
        StaleConnection: the server closed the connection before sending a byte.
        asyncio.IncompleteReadError, ValueError: a truncated or malformed response.
    """
    status_line = await reader.readline()
    if not status_line:
        raise StaleConnection
    status = int(status_line.split(b" ", 2)[1])
    length, chunked, keep = 0, False, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            keep = value != b"close"
    if chunked:
        await _skip_chunks(reader)
    elif length:
        await reader.readexactly(length)
    return status, keep


async def _skip_chunks(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        await reader.readexactly(size + 2)  # the chunk and its CRLF
        if size == 0:
            return


class Connection:
    """One keep-alive connection; `used` says whether a request has already gone over it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used = False

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def roundtrip(self, request: bytes) -> tuple[int, bool]:
        self.writer.write(request)
        await self.writer.drain()
        answer = await read_response(self.reader)
        self.used = True
        return answer

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Keep-alive connections to one server, reused most-recent-first.

    Most-recent-first keeps the set of busy connections small at a modest rate.
    A connection idle longer than `max_idle` is dropped rather than reused: the
    server may be closing it (gunicorn's keep-alive is 2 s), and a request lost
    in that race would need a retry.
    """

    def __init__(self, host: str, port: int, max_connections: int, max_idle: float = 1.0) -> None:
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self._idle: list[tuple[float, Connection]] = []
        self._slots = asyncio.Semaphore(max_connections)
        self.opened = 0

    async def acquire(self, fresh: bool = False) -> Connection:
        await self._slots.acquire()
        while self._idle and not fresh:
            released, connection = self._idle.pop()
            if time.monotonic() - released <= self.max_idle:
                return connection
            connection.close()
        try:
            connection = await Connection.open(self.host, self.port)
        except OSError:
            self._slots.release()
            raise
        self.opened += 1
        return connection

    def release(self, connection: Connection, reusable: bool) -> None:
        if reusable:
            self._idle.append((time.monotonic(), connection))
        else:
            connection.close()
        self._slots.release()

    def close(self) -> None:
        for _, connection in self._idle:
            connection.close()
        self._idle.clear()


@dataclass
class Tally:
    """What came back: statuses, transport errors, latencies of completed requests (ms)."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    stale_retries: int = 0

    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)


async def send(pool: Pool, request: bytes, tally: Tally, timeout: float) -> int | None:
    """POST once (retrying once, on a new connection, if a keep-alive one was stale); the status, None on error."""
    for fresh in (False, True):
        try:
            connection = await pool.acquire(fresh)
        except OSError as exc:  # refused, or out of ports: the server is not taking connections
            tally.errors[type(exc).__name__] += 1
            return None
        reusable = False
        try:
            status, reusable = await asyncio.wait_for(connection.roundtrip(request), timeout)
        except StaleConnection:
            if connection.used:  # the server dropped an idle keep-alive connection: nothing was processed
                tally.stale_retries += 1
                continue
            tally.errors["closed before answering"] += 1
            return None
        except TimeoutError:
            tally.errors["timeout"] += 1
            return None
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            tally.errors[type(exc).__name__] += 1
            return None
        finally:
            pool.release(connection, reusable)
        tally.statuses[status] += 1
        return status
    tally.errors["stale twice"] += 1
    return None


@dataclass
class LoadResult:
    """One load run, as the report shows it."""

    mode: str  # "closed" | "open"
    concurrency: int | None
    offered_rate: float | None
    window_s: float
    tally: Tally
    connections: int
    client_cpu_s: float
    max_send_lag_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        latency = summarize(self.tally.latencies_ms)
        return {
            "mode": self.mode,
            "concurrency": self.concurrency,
            "offered_rate": self.offered_rate,
            "requests": sum(self.tally.statuses.values()) + sum(self.tally.errors.values()),
            "ok": self.tally.ok(),
            "statuses": {str(k): v for k, v in sorted(self.tally.statuses.items())},
            "errors": dict(self.tally.errors),
            "stale_retries": self.tally.stale_retries,
            "window_s": round(self.window_s, 3),
            "ok_per_s": round(self.tally.ok() / self.window_s, 1) if self.window_s > 0 else 0.0,
            "latency_ms": latency.as_dict() if latency else None,
            "connections": self.connections,
            "client_cpu_s": round(self.client_cpu_s, 2),
            "max_send_lag_ms": round(self.max_send_lag_ms, 2),
        }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def closed_loop(
    target: Target,
    body_for: BodyFactory,
    concurrency: int,
    *,
    duration: float | None = None,
    total: int | None = None,
    timeout: float = 10.0,
) -> LoadResult:
    """`concurrency` clients, each sending its next request as soon as the last is answered.

    Stops after `duration` seconds or `total` requests, whichever is given (and first).
    """
    if duration is None and total is None:
        raise ValueError("give a duration, a total, or both")
    pool = Pool(target.host, target.port, concurrency)
    tally = Tally()
    counter = itertools.count()
    cpu0, start = _cpu_seconds(), time.perf_counter()
    deadline = start + duration if duration is not None else float("inf")

    async def client() -> None:
        while time.perf_counter() < deadline:
            index = next(counter)
            if total is not None and index >= total:
                return
            request = target.request(body_for(index))
            sent = time.perf_counter()
            if await send(pool, request, tally, timeout) is not None:
                tally.latencies_ms.append((time.perf_counter() - sent) * 1000)

    try:
        await asyncio.gather(*(client() for _ in range(concurrency)))
    finally:
        pool.close()
    window = time.perf_counter() - start
    return LoadResult("closed", concurrency, None, window, tally, pool.opened, _cpu_seconds() - cpu0)


async def open_loop(
    target: Target,
    body_for: BodyFactory,
    rate: float,
    duration: float,
    *,
    max_connections: int = 512,
    timeout: float = 10.0,
) -> LoadResult:
    """Send at a fixed rate whatever the server does; latency counts from each scheduled send time."""
    offsets = schedule(rate, duration)
    pool = Pool(target.host, target.port, max_connections)
    tally = Tally()
    max_lag = 0.0
    cpu0 = _cpu_seconds()
    start = time.perf_counter() + 0.05

    async def one(index: int, scheduled: float) -> None:
        if await send(pool, target.request(body_for(index)), tally, timeout) is not None:
            tally.latencies_ms.append((time.perf_counter() - scheduled) * 1000)

    tasks = []
    try:
        for index, offset in enumerate(offsets):
            scheduled = start + offset
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            max_lag = max(max_lag, time.perf_counter() - scheduled)
            tasks.append(asyncio.create_task(one(index, scheduled)))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        pool.close()
    window = time.perf_counter() - start
    return LoadResult(
        "open", None, rate, window, tally, pool.opened, _cpu_seconds() - cpu0, max_send_lag_ms=max_lag * 1000
    )
