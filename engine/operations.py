"""The operation registry: every name a workflow step may `use`.

An operation is data plus a small function: its name, its pydantic input
model, the call, the connector it needs and, for creates, how to find what an
earlier attempt may already have made (its natural key). Handlers declare
operations; the engine looks them up here and knows nothing of any API.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from engine.errors import SpecError

if TYPE_CHECKING:
    from datetime import datetime

    import httpx
    from redis import Redis

    from engine.db import Database
    from engine.http import CallLog
    from schemas.settings import Settings

Output = dict[str, Any]


@dataclass(frozen=True)
class ConnectorContext:
    """What a connector may use to build its client for one attempt.

    Handlers get configuration only from here (never os.environ): the settings,
    the process's pooled HTTP client, the attempt's call log, and Redis for state
    shared across workers (e.g. a per-key request budget).
    """

    settings: Settings
    http: httpx.Client
    calls: CallLog
    redis: Redis
    db: Database | None = None
    run_id: str = ""
    step_id: str = ""
    step_started_at: datetime | None = None  # when the step's first attempt started (durable waits count from it)
    deadline: float | None = None  # time.monotonic() by which the attempt must be done (step `timeout:`)


Connect = Callable[[ConnectorContext], Any]


@dataclass(frozen=True)
class Operation:
    """One step target.

    Attributes:
        name: `<connector>.<api path with / as .>`, e.g. bigchange.jobs.constraints.create.
        input: model that a step's rendered `with` must satisfy.
        call: performs the operation with what `connect` built and returns its output (creates include `id`).
        connect: builds what `call` needs for one attempt: a connector's ApiClient, or for
            built-in operations the context itself.
        find_existing: for creates, returns the output of a record an earlier attempt
            may have made (looked up by natural key), or None.
        natural_key: the input field(s) `find_existing` matches on, for the docs.
        outputs: the output's field names, when known: exactly those, or with "*" among them, at least those
            (the rest of the API's answer passes through; `workflows check` warns on other names).
    """

    name: str
    input: type[BaseModel]
    call: Callable[[Any, Any], Output]
    connect: Connect
    find_existing: Callable[[Any, Any], Output | None] | None = None
    natural_key: tuple[str, ...] = ()
    summary: str = ""
    # The output's fields when they are known exactly; `workflows check` then refuses a template that reads
    # another one (steps.x.output.idd). None: the shape depends on the API's answer, so nothing is checked.
    outputs: frozenset[str] | None = None

    @property
    def module(self) -> str:
        """The connector (handlers/ module) this operation belongs to: the name's first part."""
        return self.name.split(".", 1)[0]


class OperationRegistry:
    """An explicit name -> Operation map that refuses duplicates."""

    def __init__(self, operations: Iterable[Operation] = ()) -> None:
        self._operations: dict[str, Operation] = {}
        for operation in operations:
            self.add(operation)

    def add(self, operation: Operation) -> None:
        if operation.name in self._operations:
            raise ValueError(f"operation {operation.name!r} is registered twice")
        self._operations[operation.name] = operation

    def get(self, name: str) -> Operation:
        """The operation called `name`, or SpecError naming the closest match."""
        try:
            return self._operations[name]
        except KeyError:
            raise SpecError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self._operations, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown operation {name!r}{hint}"

    def __contains__(self, name: object) -> bool:
        return name in self._operations

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._operations.values())

    def __len__(self) -> int:
        return len(self._operations)
