"""What every simulator does around its API, the same for each: control routes, faults, call log.

Tests and drills drive all four simulators through these routes and rely on the
same fault behaviour from each, so they must not drift apart; a simulator differs
only in what its `/state` shows and what it keeps of a call.

    GET    {prefix}/state     what the simulated tenant holds now
    GET    {prefix}/calls     every API call received, in order
    DELETE {prefix}/calls     forget them
    POST   {prefix}/reset     back to the seed: data, call log and faults
    ...                       and the fault routes of sandbox.faults

Control routes need no API key: they are the operator's side of the simulator.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from flask import Blueprint, Flask, Response, g, jsonify, request

from sandbox.faults import FaultPlan, inject_after, inject_before, register_fault_routes

CONTROL_PREFIX = "/__sandbox__"


class Simulator(Protocol):
    lock: threading.Lock
    calls: list[dict[str, Any]]
    faults: FaultPlan

    def reset(self) -> None: ...


def register_control(
    app: Flask, sim: Simulator, state: Callable[[], Any], record_call: Callable[[Response], None]
) -> None:
    """Add the control routes for `sim` to `app`, and fault injection and logging around every API call.

    Args:
        state: what `/state` shows; called holding `sim.lock`.
        record_call: keeps one API call in `sim.calls`; called after any fault has acted, so the
            log holds the status actually sent. `g.sandbox_arrived` is when the call arrived.
    """
    app.register_blueprint(_control_blueprint(sim, state))
    register_fault_routes(app, sim.faults, CONTROL_PREFIX)

    @app.before_request
    def faults_first() -> Response | None:
        if not _is_api_request():
            return None
        g.sandbox_arrived = time.time()
        return inject_before(sim.faults)

    @app.after_request
    def faults_then_log(response: Response) -> Response:
        # One hook, fixed order: the call log must record the status actually sent.
        if _is_api_request():
            response = inject_after(sim.faults, response)
            record_call(response)
        return response


def _control_blueprint(sim: Simulator, state: Callable[[], Any]) -> Blueprint:
    bp = Blueprint("sandbox_control", __name__, url_prefix=CONTROL_PREFIX)

    @bp.get("/state")
    def show_state() -> Response:
        with sim.lock:
            return jsonify(state())

    @bp.get("/calls")
    def calls() -> Response:
        with sim.lock:
            return jsonify(sim.calls)

    @bp.delete("/calls")
    def clear_calls() -> tuple[str, int]:
        with sim.lock:
            sim.calls.clear()
        return "", 204

    @bp.post("/reset")
    def reset() -> tuple[str, int]:
        sim.reset()
        return "", 204

    return bp


def _is_api_request() -> bool:
    """True for a call to the simulated API, False for the operator's control routes."""
    return not request.path.startswith(CONTROL_PREFIX)
