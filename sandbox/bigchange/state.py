"""The simulated tenant: its seed, its records, its call log, and the two error shapes.

Records are stored in wire shape (the JSON the API answers), so state and
responses cannot drift apart. Everything a handler touches is guarded by the
tenant's lock: the server is threaded.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any, TypeVar

from flask import Response, g, jsonify, request

from sandbox.faults import FaultPlan
from sandbox.validation import InputError, exceeds_months, page_of, parse_utc_text, utc_text

T = TypeVar("T")
Record = dict[str, Any]
Reply = tuple[int, Any]

# The seed: what a tenant already has before any workflow runs.
JOB_TYPES = {
    42: {"id": 42, "name": "Plumbing repair", "defaultDuration": 60},
    7: {"id": 7, "name": "Survey", "defaultDuration": 30},
}
RESOURCES = {100: "Alex Engineer", 101: "Sam Fitter"}
VEHICLES = {50: "Vehicle 50", 51: "Vehicle 51"}
STOCK_ITEMS = {
    10: {"id": 10, "name": "15mm copper pipe (3 m)", "unitPrice": 12.5},
    11: {"id": 11, "name": "15mm ball valve", "unitPrice": 6.2},
    12: {"id": 12, "name": "Central heating pump", "unitPrice": 145.0},
}
SEED_CONTACT_GROUPS = {1: {"id": 1, "name": "Customers", "createdAt": "2025-01-01T00:00:00Z"}}
# Distinct ranges make id-chaining bugs visible: a contact id where a job id belongs 404s.
FIRST_IDS = {
    "contact": 1001,
    "contact_group": 301,
    "job": 5001,
    "job_group": 701,
    "constraint": 9001,
    "stock": 8001,
}
MAX_WINDOW_MONTHS = 12


class ApiError(Exception):
    """An error answer, already in the shape the proxy would send."""

    def __init__(self, status: int, body: Record, content_type: str = "application/json") -> None:
        super().__init__(body)
        self.status, self.body, self.content_type = status, body, content_type

    def response(self) -> Response:
        response = jsonify(self.body)
        response.status_code = self.status
        response.content_type = self.content_type
        return response


def gateway_error(status: int, code: str, message: str, param: str | None = None) -> ApiError:
    body: Record = {"code": code, "message": message}
    if param is not None:
        body["payload"] = {"param": param}
    return ApiError(status, body)


def problem(status: int, detail: str) -> ApiError:
    """An RFC 7807 problem, as BigChange itself answers."""
    body = {
        "type": f"https://httpstatuses.io/{status}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    return ApiError(status, body, "application/problem+json")


@dataclass
class Records:
    """The tenant's records. Site access hours and status histories are keyed by their owner's id."""

    contacts: dict[int, Record] = field(default_factory=dict)
    contact_groups: dict[int, Record] = field(default_factory=lambda: copy.deepcopy(SEED_CONTACT_GROUPS))
    access_hours: dict[int, list[Record]] = field(default_factory=dict)
    jobs: dict[int, Record] = field(default_factory=dict)
    job_history: dict[int, list[Record]] = field(default_factory=dict)
    constraints: dict[int, Record] = field(default_factory=dict)
    stock: dict[int, Record] = field(default_factory=dict)
    job_groups: dict[int, Record] = field(default_factory=dict)
    group_history: dict[int, list[Record]] = field(default_factory=dict)
    next_ids: dict[str, int] = field(default_factory=lambda: dict(FIRST_IDS))

    def new_id(self, kind: str) -> int:
        ident = self.next_ids[kind]
        self.next_ids[kind] = ident + 1
        return ident


class BigChangeSandbox:
    """Everything one simulated tenant holds. Handlers run under `lock` (threaded server)."""

    def __init__(self, api_key: str, clock: Callable[[], datetime]) -> None:
        self.api_key = api_key
        self.clock = clock
        self.lock = threading.Lock()
        self.records = Records()
        self.calls: list[Record] = []
        self.faults = FaultPlan()

    def now_text(self) -> str:
        return utc_text(self.clock())

    def reset(self) -> None:
        with self.lock:
            self.records = Records()
            self.calls.clear()
        self.faults.reset()

    def job_view(self, job: Record) -> Record:
        records = self.records
        constraints = [c for c in records.constraints.values() if c["jobId"] == job["id"]]
        stock = [s for s in records.stock.values() if s["jobId"] == job["id"]]
        return copy.deepcopy(job | {"constraints": constraints, "stock": stock})

    def group_view(self, group: Record) -> Record:
        job_ids = [job["id"] for job in self.records.jobs.values() if job.get("jobGroupId") == group["id"]]
        return copy.deepcopy(group | {"jobIds": job_ids})

    def set_job_status(self, job: Record, status: str, comment: str | None = None) -> None:
        job["status"] = status
        entry = {"status": status, "at": self.now_text(), "comment": comment}
        self.records.job_history.setdefault(job["id"], []).append(entry)

    def set_group_status(self, group: Record, status: str) -> None:
        group["status"] = status
        self.records.group_history.setdefault(group["id"], []).append({"status": status, "at": self.now_text()})

    def state(self) -> Record:
        records = self.records
        return {
            "contacts": copy.deepcopy(list(records.contacts.values())),
            "contactGroups": copy.deepcopy(list(records.contact_groups.values())),
            "siteAccessHours": copy.deepcopy({str(k): v for k, v in records.access_hours.items()}),
            "jobs": [self.job_view(job) for job in records.jobs.values()],
            "constraints": copy.deepcopy(list(records.constraints.values())),
            "stock": copy.deepcopy(list(records.stock.values())),
            "jobGroups": [self.group_view(group) for group in records.job_groups.values()],
        }

    def record_call(self, response: Response) -> None:
        entry = {
            "method": request.method,
            "path": request.path,
            "query": redact(request.args.to_dict(flat=True), self.api_key),
            "json": redact(request.get_json(silent=True), self.api_key),
            "status": response.status_code,
            # When the request arrived (epoch seconds): lets a test check the pace of calls.
            "at": g.get("sandbox_arrived", time.time()),
        }
        with self.lock:
            self.calls.append(entry)


def redact(value: Any, secret: str) -> Any:
    """Hide the key even when a client wrongly sends it in the query or body."""
    if isinstance(value, dict):
        return {k: redact(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secret) for v in value]
    return "***" if value == secret else value


# --- lookups and shared rules ----------------------------------------------------------------


def find(table: Mapping[int, T], kind: str, ident: int) -> T:
    if ident not in table:
        raise problem(404, f"{kind} {ident} was not found")
    return table[ident]


def checked_window(p: Record) -> tuple[datetime | None, datetime | None]:
    start, end = p.get("createdAtFrom"), p.get("createdAtTo")
    if start is not None and end is not None:
        if end < start:
            raise InputError("createdAtTo", "Invalid param: createdAtTo must not be before createdAtFrom")
        if exceeds_months(start, end, MAX_WINDOW_MONTHS):
            raise problem(
                422, f"The date range between createdAtFrom and createdAtTo cannot exceed {MAX_WINDOW_MONTHS} months"
            )
    return start, end


def created_within(record: Record, start: datetime | None, end: datetime | None) -> bool:
    created = parse_utc_text(record["createdAt"])
    return (start is None or created >= start) and (end is None or created <= end)


def page(items: list[Record], p: Record) -> Record:
    chosen = copy.deepcopy(page_of(items, p["pageNumber"], p["pageSize"]))
    return {"items": chosen, "pageItemCount": len(chosen)}
