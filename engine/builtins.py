"""Built-in operations under `core.`: log, fail, wait, http.

They are operations like any connector's (a name, an input model, a call),
so workflows, validation, retries and the ledger treat them the same. Their
`connect` hands the call the attempt's context instead of an API client.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine import egress
from engine.errors import PermanentStepError, StepDeferred
from engine.http import ApiClient
from engine.operations import ConnectorContext, Operation, Output
from schemas.common import UtcDateTime
from schemas.workflow import Duration

log = logging.getLogger("hookflow.workflow")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogIn(_In):
    """Write a line to Hookflow's log (and the step's output), e.g. to trace a decision."""

    message: str = Field(max_length=2000)
    level: Literal["info", "warning", "error"] = "info"


class FailIn(_In):
    """Fail the run on purpose with a message, e.g. when an `if` finds data that must not go on."""

    message: str = Field(min_length=1, max_length=2000)


class WaitIn(_In):
    """Pause the run durably: the next step starts after `duration` (e.g. 2d, counted from when this step
    was first reached) or at `until`. Survives restarts and Redis loss: the wait lives in the ledger."""

    duration: Duration | None = None
    until: UtcDateTime | None = None

    @model_validator(mode="after")
    def _one_of(self) -> WaitIn:
        if (self.duration is None) == (self.until is None):
            raise ValueError("give either duration (e.g. 2d) or until (an ISO date-time)")
        return self


class HttpIn(_In):
    """Call an allow-listed HTTP endpoint (CORE_HTTP_ALLOWED_HOSTS), e.g. a Slack or Teams webhook.

    Credentials never go in the workflow: `url_secret` and `secret_headers` name
    entries of CORE_HTTP_SECRETS (a JSON object in the environment), e.g. a Slack
    webhook URL, or `{Authorization: TEAMS_TOKEN}`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str | None = Field(None, pattern=r"^https?://", max_length=2000)
    url_secret: str | None = Field(None, description="Name of a CORE_HTTP_SECRETS entry holding the whole URL.")
    headers: dict[str, str] = Field(default_factory=dict)
    secret_headers: dict[str, str] = Field(
        default_factory=dict, description="Header -> name of a CORE_HTTP_SECRETS entry holding its value."
    )
    params: dict[str, Any] = Field(default_factory=dict)
    json_: Any = Field(None, alias="json")

    @model_validator(mode="after")
    def _one_url(self) -> HttpIn:
        if (self.url is None) == (self.url_secret is None):
            raise ValueError("give either url or url_secret")
        return self


def _context(ctx: ConnectorContext) -> ConnectorContext:
    return ctx


def core_log(ctx: ConnectorContext, inp: LogIn) -> Output:
    log.log(logging.getLevelName(inp.level.upper()), "run %s step %s: %s", ctx.run_id, ctx.step_id, inp.message)
    return {"message": inp.message, "level": inp.level}


def core_fail(ctx: ConnectorContext, inp: FailIn) -> Output:
    raise PermanentStepError(inp.message)


def core_wait(ctx: ConnectorContext, inp: WaitIn) -> Output:
    """Succeed once the target time has come; until then defer (no failure counted, exact time kept)."""
    first = ctx.step_started_at or datetime.now(timezone.utc)
    target = inp.until if inp.until is not None else first + timedelta(seconds=inp.duration or 0)
    remaining = (target - datetime.now(timezone.utc)).total_seconds()
    if remaining > 0:
        raise StepDeferred(f"waiting until {target:%Y-%m-%dT%H:%M:%SZ}", delay=remaining, jitter=False)
    return {"waited_until": target.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _http_connect(ctx: ConnectorContext) -> ConnectorContext:
    return ctx


def _secret(ctx: ConnectorContext, name: str) -> str:
    value = ctx.settings.core_http_secrets.get(name)
    if value is None:
        listed = ", ".join(sorted(ctx.settings.core_http_secrets)) or "none"
        raise PermanentStepError(f"CORE_HTTP_SECRETS has no entry {name!r} (entries: {listed})")
    return value.get_secret_value()


def core_http(ctx: ConnectorContext, inp: HttpIn) -> Output:
    """One call through a client of its own that connects only to vetted addresses (engine/egress.py)."""
    url = inp.url if inp.url is not None else _secret(ctx, inp.url_secret or "")
    secret_values = {header: _secret(ctx, name) for header, name in inp.secret_headers.items()}
    egress.check_allowed(url, egress.allowed_hosts(ctx.settings.core_http_allowed_hosts))
    with egress.vetted_client(ctx.http.timeout) as http:
        api = ApiClient(
            http,
            url,
            {**inp.headers, **secret_values},
            ctx.calls,
            read_error=lambda response: response.text[:500] or response.reason_phrase,
            auth_hint="check the headers this step sends",
            deadline=ctx.deadline,
            secrets=(*secret_values.values(), *([url] if inp.url_secret else [])),  # never logged, even echoed
        )
        body = api.request(inp.method, "", params=inp.params or None, json_body=inp.json_)
    return {"body": body}


OPERATIONS = [
    Operation(
        "core.log", LogIn, core_log, _context, summary="write a log line", outputs=frozenset({"message", "level"})
    ),
    Operation("core.fail", FailIn, core_fail, _context, summary="fail the run with a message", outputs=frozenset()),
    Operation(
        "core.wait",
        WaitIn,
        core_wait,
        _context,
        summary="durable delay before the next step",
        outputs=frozenset({"waited_until"}),
    ),
    Operation(
        "core.http",
        HttpIn,
        core_http,
        _http_connect,
        summary="HTTP call to an allow-listed host",
        outputs=frozenset({"body"}),
    ),
]
