"""The operator's side of every simulator, the same for each: state, call log, reset, faults.

Tests and drills drive all four simulators through these routes, so they must not
drift apart; each simulator differs only in what its `/state` shows.

    GET    {prefix}/state     what the simulated tenant holds now
    GET    {prefix}/calls     every API call received, in order
    DELETE {prefix}/calls     forget them
    POST   {prefix}/reset     back to the seed: data, call log and faults
    ...                       and the fault routes of sandbox.faults

Control routes need no API key: they are the operator's side of the simulator.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from flask import Blueprint, Flask, Response, jsonify, request

from sandbox.faults import FaultPlan, register_control_routes

CONTROL_PREFIX = "/__sandbox__"


class Simulator(Protocol):
    lock: threading.Lock
    calls: list[dict[str, Any]]
    faults: FaultPlan

    def reset(self) -> None: ...


def register_control(app: Flask, sim: Simulator, state: Callable[[], Any]) -> None:
    """Add the control routes for `sim` to `app`; `state()` is called holding `sim.lock`."""
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

    app.register_blueprint(bp)
    register_control_routes(app, sim.faults, CONTROL_PREFIX)


def is_api_request() -> bool:
    """True for a call to the simulated API, False for the operator's control routes."""
    return not request.path.startswith(CONTROL_PREFIX)
