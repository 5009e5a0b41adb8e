"""Fault injection and latency for any simulator app.

Connectors are only as good as their handling of the failures real APIs produce:
rate limits with `Retry-After`, 5xx, slow answers, and the nastiest one, a request
the API *did* carry out whose response was lost. A `FaultPlan` holds the faults a
test or operator has asked for; sandbox/control.py calls `inject_before` /
`inject_after` from every simulator's request hooks (before its call log, so the
log holds the status actually sent) and `register_fault_routes` to expose:

    POST   {prefix}/faults    add a fault (body: `FaultSpec`), 201 with its id
    GET    {prefix}/faults    pending faults and their remaining occurrences
    DELETE {prefix}/faults    drop them all, and let go of any request a delay is holding
    GET    {prefix}/latency   current base latency
    POST   {prefix}/latency   {"ms": n} base latency added to every API call; 0 disables

A fault's `delay_ms` holds the request where the fault acts: a `when="before"`
fault before the request is processed (nothing has changed yet), a `when="after"`
fault after it (the change is made, only the answer is late or lost), which is
the window a "worker killed after the API call" drill needs.

Control routes need no API key: they are the operator's side of the simulator.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal

from flask import Blueprint, Flask, Response, g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# vh3/Xano-style defaults; a simulator for another API passes its own `default_bodies`.
DEFAULT_BODIES: Mapping[int, dict[str, Any]] = {
    429: {"code": "ERROR_CODE_RATE_LIMITED", "message": "Too many requests"},
    500: {"code": "ERROR_CODE_INTERNAL", "message": "Injected fault"},
}
_NO_BODY_STATUSES = frozenset({204, 304})


class FaultSpec(BaseModel):
    """What a caller asks for. `status` absent means "only delay these calls"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description='Exact request path, e.g. "/contacts/create", or "*" for any')
    method: str | None = Field(default=None, description="HTTP method to match; any when absent")
    status: int | None = Field(default=None, ge=100, le=599)
    times: int = Field(default=1, ge=1, description="How many matching requests to affect")
    body: dict[str, Any] | list[Any] | None = None
    retry_after: int | None = Field(default=None, ge=0, description="Seconds, sent as Retry-After")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers to answer with, e.g. a 302's Location")
    delay_ms: int = Field(default=0, ge=0, description="Hold the request this long, where `when` says")
    when: Literal["before", "after"] = Field(
        default="before",
        description='"before": delay, then answer without touching state; "after": process, delay, then answer',
    )

    @field_validator("path")
    @classmethod
    def _path_is_absolute(cls, value: str) -> str:
        if value != "*" and not value.startswith("/"):
            raise ValueError('path must start with "/" (or be "*")')
        return value

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else None

    @model_validator(mode="after")
    def _does_something(self) -> FaultSpec:
        if self.status is None and self.delay_ms == 0:
            raise ValueError("a fault needs a status, a delay_ms, or both")
        return self

    def matches(self, method: str, path: str) -> bool:
        return (self.path in ("*", path)) and (self.method is None or self.method == method.upper())


class Fault(FaultSpec):
    """A registered fault; `times` is what was asked for, the plan tracks what is left."""

    id: int


class FaultPlan:
    """Thread-safe queue of pending faults plus the base latency.

    The simulator's server is threaded, so every read and write takes the lock.
    Faults are matched in the order they were added.
    """

    def __init__(self, default_bodies: Mapping[int, dict[str, Any]] = DEFAULT_BODIES) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: list[tuple[Fault, int]] = []
        self._latency_ms = 0
        # Set (and replaced) by clear()/reset(): wakes every request a fault's delay is holding.
        self._release = threading.Event()
        self.default_bodies = default_bodies

    def add(self, spec: FaultSpec) -> Fault:
        with self._lock:
            fault = Fault(id=next(self._ids), **spec.model_dump())
            self._pending.append((fault, fault.times))
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """Consume one occurrence of the first fault matching this request, if any."""
        with self._lock:
            for index, (fault, remaining) in enumerate(self._pending):
                if fault.matches(method, path):
                    if remaining > 1:
                        self._pending[index] = (fault, remaining - 1)
                    else:
                        del self._pending[index]
                    return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.model_dump() | {"remaining": left} for fault, left in self._pending]

    def clear(self) -> None:
        """Drop every pending fault and let go of held requests (a test need not wait out a long delay)."""
        with self._lock:
            self._pending.clear()
            self._let_go()

    def release_signal(self) -> threading.Event:
        """What the next clear()/reset() sets; take it before `take()` so no clear can slip between them."""
        with self._lock:
            return self._release

    def _let_go(self) -> None:
        self._release.set()
        self._release = threading.Event()

    @property
    def latency_ms(self) -> int:
        with self._lock:
            return self._latency_ms

    def set_latency(self, ms: int) -> None:
        with self._lock:
            self._latency_ms = ms

    def reset(self) -> None:
        """Back to a fresh plan: no faults, no latency. Fault ids keep counting, so
        an id seen before a reset never names a different fault after it."""
        with self._lock:
            self._pending.clear()
            self._latency_ms = 0
            self._let_go()

    def response_for(self, fault: Fault) -> Response:
        status = fault.status if fault.status is not None else 500
        if status in _NO_BODY_STATUSES:
            response = Response(status=status)
        else:
            body = fault.body if fault.body is not None else self._default_body(status)
            response = jsonify(body)
            response.status_code = status
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(fault.retry_after)
        response.headers.update(fault.headers)
        return response

    def _default_body(self, status: int) -> dict[str, Any]:
        return dict(self.default_bodies.get(status, {"code": "ERROR_CODE_INJECTED", "message": "Injected fault"}))


def inject_before(plan: FaultPlan) -> Response | None:
    """Call from `before_request` for API paths: base latency, then a `when="before"` fault.

    Returns:
        The fault response when a `when="before"` fault with a status matched (the
        request is then never processed), else None. A `when="after"` fault is only
        remembered here: its delay and answer come in `inject_after`.
    """
    base_ms = plan.latency_ms
    if base_ms:
        time.sleep(base_ms / 1000)
    g.sandbox_release = plan.release_signal()
    fault = plan.take(request.method, request.path)
    g.sandbox_fault = fault
    if fault is None or fault.when == "after":
        return None
    _hold(fault)
    return plan.response_for(fault) if fault.status is not None else None


def inject_after(plan: FaultPlan, response: Response) -> Response:
    """Call from `after_request`: the delay and answer of a `when="after"` fault.

    The request has been processed, so state changed; the answer is held for the
    fault's delay, then replaced by the fault's status if it has one (lost).
    """
    fault: Fault | None = g.pop("sandbox_fault", None)
    if fault is None or fault.when != "after":
        return response
    _hold(fault)
    return plan.response_for(fault) if fault.status is not None else response


def _hold(fault: Fault) -> None:
    """Hold this request for the fault's delay, or until the plan is cleared or reset."""
    if fault.delay_ms:
        g.sandbox_release.wait(fault.delay_ms / 1000)


class _LatencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ms: int = Field(ge=0)


def register_fault_routes(app: Flask, plan: FaultPlan, prefix: str) -> None:
    """Expose the plan over HTTP (see module docstring) on `app` under `prefix`."""
    bp = Blueprint("sandbox_faults", __name__, url_prefix=prefix)

    @bp.post("/faults")
    def add_fault() -> tuple[Response, int]:
        spec = FaultSpec.model_validate(request.get_json(silent=True) or {})
        return jsonify(plan.add(spec).model_dump()), 201

    @bp.get("/faults")
    def list_faults() -> Response:
        return jsonify(plan.pending())

    @bp.delete("/faults")
    def clear_faults() -> tuple[str, int]:
        plan.clear()
        return "", 204

    @bp.get("/latency")
    def get_latency() -> Response:
        return jsonify({"ms": plan.latency_ms})

    @bp.post("/latency")
    def set_latency() -> Response:
        plan.set_latency(_LatencyIn.model_validate(request.get_json(silent=True) or {}).ms)
        return jsonify({"ms": plan.latency_ms})

    @bp.errorhandler(ValidationError)
    def bad_control_request(exc: ValidationError) -> tuple[Response, int]:
        details = exc.errors(include_url=False, include_context=False, include_input=False)
        return jsonify({"error": "invalid control request", "details": details}), 400

    app.register_blueprint(bp)
