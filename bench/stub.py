"""A minimal, fast BigChange stub: the four paths the web-enquiry workflow calls, and nothing else.

Why not the sandbox: it is a faithful simulator (validation, state, a call log,
one lock around everything, Werkzeug's threaded server), which makes it the
bottleneck long before Hookflow is. This stub answers with the same paths and
response shapes, `201 {"id": n}` for creates and `204` for scheduling, from one
asyncio process, so a fixed latency costs a timer rather than a thread and
thousands of requests can wait at once. Its own capacity is measured and
reported next to the results.

It still checks what matters for the end-to-end verdict: the API key, that a
job names a contact it created, that constraints and scheduling name a job it
created, and that no contact reference is created twice (a duplicated step).

    python -m bench.stub --port 8123 --api-key KEY [--prefix /bigchange]

Control routes, like the sandbox's: `GET {prefix}/__sandbox__/counts`,
`POST {prefix}/__sandbox__/latency {"ms": n}`, `POST {prefix}/__sandbox__/reset`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

Reply = tuple[int, dict[str, Any] | None]

REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


@dataclass
class StubState:
    """Everything the stub remembers; reset between scenarios."""

    api_key: str
    latency_ms: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    contacts: dict[int, str] = field(default_factory=dict)  # id -> reference
    references: set[str] = field(default_factory=set)
    duplicate_references: int = 0
    jobs: dict[int, int] = field(default_factory=dict)  # id -> contactId
    constraints: int = 0
    scheduled: int = 0
    next_id: int = 1000
    # Wall-clock times (time.time()) of the first contact created and the last job scheduled: a pipeline
    # that keeps no ledger (bench/naive.py) is timed from these.
    first_contact_at: float | None = None
    last_scheduled_at: float | None = None

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def reset(self) -> None:
        fresh = StubState(self.api_key)
        self.__dict__.update(fresh.__dict__)

    def counts(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "errors": dict(self.errors),
            "contacts": len(self.contacts),
            "jobs": len(self.jobs),
            "constraints": self.constraints,
            "scheduled": self.scheduled,
            "duplicate_references": self.duplicate_references,
            "latency_ms": self.latency_ms,
            "first_contact_at": self.first_contact_at,
            "last_scheduled_at": self.last_scheduled_at,
        }


def _problem(status: int, detail: str) -> Reply:
    return status, {"status": status, "title": REASONS.get(status, "Error"), "detail": detail}


def api_call(state: StubState, path: str, body: dict[str, Any]) -> Reply:
    """One API request (the path without the prefix) -> status and JSON body (None: no body)."""
    if path == "/contacts/create":
        if not body.get("name"):
            return _problem(400, "Missing param: name")
        reference = str(body.get("reference") or "")
        if reference and reference in state.references:
            state.duplicate_references += 1
        state.references.add(reference)
        ident = state.new_id()
        state.contacts[ident] = reference
        if state.first_contact_at is None:
            state.first_contact_at = time.time()
        return 201, {"id": ident}
    if path == "/jobs/create":
        if body.get("contactId") not in state.contacts:
            return _problem(404, f"Contact {body.get('contactId')} was not found")
        ident = state.new_id()
        state.jobs[ident] = body["contactId"]
        return 201, {"id": ident}
    if path in ("/jobs/constraints/create", "/jobs/scheduling"):
        if body.get("jobId") not in state.jobs:
            return _problem(404, f"Job {body.get('jobId')} was not found")
        if path == "/jobs/scheduling":
            state.scheduled += 1
            state.last_scheduled_at = time.time()
            return 204, None
        state.constraints += 1
        return 201, {"id": state.new_id()}
    return _problem(404, f"Unable to locate request: POST {path}")


def control_call(state: StubState, method: str, path: str, body: dict[str, Any]) -> Reply:
    if method == "GET" and path == "/counts":
        return 200, state.counts()
    if method == "POST" and path == "/latency":
        state.latency_ms = float(body.get("ms", 0))
        return 204, None
    if method == "POST" and path == "/reset":
        state.reset()
        return 204, None
    return _problem(404, f"no control route {method} {path}")


class StubServer:
    """Routes requests under `prefix` to `api_call` (with the key checked) or `control_call`."""

    def __init__(self, state: StubState, prefix: str = "/bigchange") -> None:
        self.state = state
        self.prefix = prefix.rstrip("/")
        self.control_prefix = f"{self.prefix}/__sandbox__"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one keep-alive connection until the client closes it."""
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method, path, headers, raw = request
                status, body = await self.dispatch(method, path, headers, raw)
                writer.write(_response(status, body))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return  # a client that went away or spoke nonsense: drop the connection
        finally:
            writer.close()

    async def dispatch(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        path = path.split("?", 1)[0]
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            return _problem(400, "Request body must be JSON")
        if not isinstance(body, dict):
            return _problem(400, "Request body must be a JSON object")
        if path.startswith(self.control_prefix):
            return control_call(self.state, method, path[len(self.control_prefix) :], body)
        if not path.startswith(self.prefix) or method != "POST":
            return _problem(404, f"Unable to locate request: {method} {path}")
        api_path = path[len(self.prefix) :]
        self.state.requests[api_path] += 1
        if self.state.latency_ms:
            await asyncio.sleep(self.state.latency_ms / 1000)
        if headers.get("x-api-key") != self.state.api_key:
            reply = _problem(401, "Invalid or missing API key")
        else:
            reply = api_call(self.state, api_path, body)
        if reply[0] >= 400:
            self.state.errors[f"{reply[0]} {api_path}"] += 1
        return reply


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    line = await reader.readline()
    if not line:
        return None
    method, path, _version = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return method, path, headers, body


def _response(status: int, body: dict[str, Any] | None) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    head = f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Length: {len(payload)}\r\n"
    if payload:
        head += "Content-Type: application/json\r\n"
    return (head + "\r\n").encode("latin-1") + payload


async def serve(host: str, port: int, api_key: str, prefix: str) -> None:
    server = StubServer(StubState(api_key), prefix)
    listener = await asyncio.start_server(server.handle, host, port, backlog=1024)
    print(f"stub listening on http://{host}:{port}{prefix}", flush=True)
    async with listener:
        await listener.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--prefix", default="/bigchange")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a person stops it
        asyncio.run(serve(args.host, args.port, args.api_key, args.prefix))


if __name__ == "__main__":
    main()
