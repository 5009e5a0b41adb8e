"""The load generator: the open-loop schedule, HTTP framing, and a few requests against the stub in-process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from bench.loadgen import StaleConnection, Target, closed_loop, open_loop, read_response, schedule
from bench.procs import free_port
from bench.stub import StubServer, StubState


def test_schedule_is_evenly_spaced_at_the_rate() -> None:
    offsets = schedule(200, 30)
    assert len(offsets) == 6000
    assert offsets[:3] == [0.0, 0.005, 0.01]
    assert offsets[-1] == pytest.approx(29.995)


def test_schedule_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        schedule(0, 10)


def test_request_has_the_length_and_headers() -> None:
    raw = Target("127.0.0.1", 8000, "/hooks/webform", {"X-Hook-Token": "t"}).request(b'{"a": 1}')
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /hooks/webform HTTP/1.1\r\nHost: 127.0.0.1:8000")
    assert b"Content-Length: 8" in head and b"X-Hook-Token: t" in head
    assert body == b'{"a": 1}'


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def parse(data: bytes) -> tuple[int, bool]:
    async def read() -> tuple[int, bool]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_response(reader)

    return run(read())


def test_reads_a_keep_alive_answer_and_a_closing_one() -> None:
    assert parse(b"HTTP/1.1 202 ACCEPTED\r\nContent-Length: 2\r\n\r\n{}") == (202, True)
    assert parse(b"HTTP/1.1 500 ERR\r\nConnection: close\r\nContent-Length: 0\r\n\r\n") == (500, False)


def test_reads_a_chunked_answer() -> None:
    assert parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n") == (200, True)


def test_a_connection_closed_before_any_byte_is_stale() -> None:
    with pytest.raises(StaleConnection):
        parse(b"")


async def _with_stub(use: Callable[[int, StubState], Coroutine[Any, Any, Any]]) -> Any:
    state = StubState("key")
    server = await asyncio.start_server(StubServer(state).handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        return await use(port, state)


def _contacts(port: int) -> Target:
    return Target("127.0.0.1", port, "/bigchange/contacts/create", {"X-API-Key": "key"})


def _body(index: int) -> bytes:
    return b'{"name": "n", "reference": "R-%d"}' % index


def test_closed_loop_sends_exactly_the_total_and_counts_answers() -> None:
    async def use(port: int, state: StubState) -> Any:
        return await closed_loop(_contacts(port), _body, 4, total=25), state

    result, state = run(_with_stub(use))
    assert result.tally.statuses == {201: 25}
    assert len(result.tally.latencies_ms) == 25
    assert len(state.contacts) == 25 and state.duplicate_references == 0
    assert result.connections == 4


def test_open_loop_sends_on_schedule_and_measures_from_the_scheduled_time() -> None:
    async def use(port: int, _state: StubState) -> Any:
        return await open_loop(_contacts(port), _body, rate=100, duration=0.2)

    result = run(_with_stub(use))
    assert result.tally.ok() == 20
    assert result.window_s >= 0.19  # the last send is scheduled 0.19 s in
    assert result.as_dict()["latency_ms"]["count"] == 20


def test_refused_connections_are_counted_as_errors() -> None:
    result = run(closed_loop(Target("127.0.0.1", free_port(), "/"), _body, 2, total=4))
    assert result.tally.ok() == 0
    assert result.tally.errors == {"ConnectionRefusedError": 4}
