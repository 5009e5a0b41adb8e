"""Handlers for jobs, their lifecycle and scheduling, and their constraints.

Lifecycle rules the simulator holds to (the docs are silent; these are what a
field-service tenant enforces and what makes a workflow's mistakes visible):
no job for an on-stop contact; a cancelled or completed job cannot be started,
resulted, scheduled or cancelled again. Every status change is appended to the
job's status history.
"""

from __future__ import annotations

from sandbox.bigchange.contracts import DATE_CONSTRAINTS, ENTITY_CONSTRAINTS, JOB_DETAILS
from sandbox.bigchange.state import (
    JOB_TYPES,
    RESOURCES,
    VEHICLES,
    BigChangeSandbox,
    Record,
    Reply,
    checked_window,
    created_within,
    find,
    page,
    problem,
)
from sandbox.validation import InputError, utc_text

FINISHED = ("cancelled", "completedOk", "completedWithIssues")


def open_job(sim: BigChangeSandbox, job_id: int, action: str) -> Record:
    """The job, if it can still be worked on; a 422 naming its state if it cannot."""
    job = find(sim.records.jobs, "Job", job_id)
    if job["status"] in FINISHED:
        raise problem(422, f"Job {job_id} is {job['status']}; it cannot be {action}")
    return job


def check_job_refs(sim: BigChangeSandbox, p: Record) -> None:
    if "typeId" in p:
        find(JOB_TYPES, "Job type", p["typeId"])
    if "jobGroupId" in p:
        find(sim.records.job_groups, "Job group", p["jobGroupId"])


def jobs_get(sim: BigChangeSandbox, p: Record) -> Reply:
    return 200, sim.job_view(find(sim.records.jobs, "Job", p["jobId"]))


def _bookable_contact(sim: BigChangeSandbox, contact_id: int) -> Record:
    contact = find(sim.records.contacts, "Contact", contact_id)
    if contact["status"] != "normal":
        # BigChange blocks job creation for on-stop contacts, whichever flavour.
        raise problem(422, f"Contact {contact['id']} is on stop ({contact['status']}); jobs cannot be created for it")
    return contact


def jobs_create(sim: BigChangeSandbox, p: Record) -> Reply:
    check_job_refs(sim, p)
    contact = _bookable_contact(sim, p["contactId"])
    ident = sim.records.new_id("job")
    job = {
        "id": ident,
        "typeId": p["typeId"],
        "contactId": contact["id"],
        "status": "new",
        **{spec.name: p.get(spec.name) for spec in JOB_DETAILS},
        "resourceId": None,
        "vehicleId": None,
        "plannedStartAt": None,
        "result": None,
        "isFinanciallyComplete": False,
        "isActioned": False,
        "officeNotes": None,
        "createdAt": sim.now_text(),
    }
    sim.records.jobs[ident] = job
    sim.set_job_status(job, "new")
    return 201, {"id": ident}


def jobs_edit(sim: BigChangeSandbox, p: Record) -> Reply:
    job = find(sim.records.jobs, "Job", p["jobId"])
    check_job_refs(sim, p)
    if "contactId" in p and p["contactId"] != job["contactId"]:
        _bookable_contact(sim, p["contactId"])
    job.update({k: v for k, v in p.items() if k != "jobId"})
    return 204, None


def _listed(job: Record, p: Record) -> bool:
    """Does `job` pass every filter given (each filter is a list of accepted values)?"""
    filters = ("contactId", "resourceId", "vehicleId", "typeId", "status", "reference")
    return all(key not in p or job[key] in p[key] for key in filters)


def jobs_list(sim: BigChangeSandbox, p: Record) -> Reply:
    start, end = checked_window(p)
    items = [sim.job_view(j) for j in sim.records.jobs.values() if created_within(j, start, end) and _listed(j, p)]
    items.sort(key=lambda j: (j["createdAt"], j["id"]), reverse=p["direction"] == "descending")
    # This endpoint wraps its page in "result": the proxy mixes envelopes (reference notes §2.4).
    return 200, {"result": page(items, p)}


def jobs_cancel(sim: BigChangeSandbox, p: Record) -> Reply:
    job = open_job(sim, p["jobId"], "cancelled")
    sim.set_job_status(job, "cancelled", p.get("reason"))
    return 204, None


def jobs_start(sim: BigChangeSandbox, p: Record) -> Reply:
    job = open_job(sim, p["jobId"], "started")
    sim.set_job_status(job, "started", p.get("comment"))
    return 204, None


def jobs_result(sim: BigChangeSandbox, p: Record) -> Reply:
    job = open_job(sim, p["jobId"], "resulted")
    job["result"] = p.get("result")
    sim.set_job_status(job, p["status"], p.get("result"))
    return 204, None


def jobs_scheduling(sim: BigChangeSandbox, p: Record) -> Reply:
    job = open_job(sim, p["jobId"], "scheduled")
    if "resourceId" in p:
        find(RESOURCES, "Resource", p["resourceId"])
    if "vehicleId" in p:
        find(VEHICLES, "Vehicle", p["vehicleId"])
    job["resourceId"] = p.get("resourceId", job["resourceId"])
    job["vehicleId"] = p.get("vehicleId", job["vehicleId"])
    if "plannedStartAt" in p:
        job["plannedStartAt"] = utc_text(p["plannedStartAt"])
    sim.set_job_status(job, "scheduled")
    return 204, None


def jobs_status_history(sim: BigChangeSandbox, p: Record) -> Reply:
    job = find(sim.records.jobs, "Job", p["jobId"])
    return 200, page(sim.records.job_history.get(job["id"], []), p)


# --- constraints ------------------------------------------------------------------------------------


def constraints_create(sim: BigChangeSandbox, p: Record) -> Reply:
    kind = p["type"]
    for needed, kinds in (("constraintAt", DATE_CONSTRAINTS), ("entityId", ENTITY_CONSTRAINTS)):
        if kind in kinds and needed not in p:
            raise InputError(needed, f"Missing param: {needed} (required when type is {kind})")
    find(sim.records.jobs, "Job", p["jobId"])
    if kind == "jobResource":
        find(RESOURCES, "Resource", p["entityId"])
    if kind == "jobVehicle":
        find(VEHICLES, "Vehicle", p["entityId"])
    ident = sim.records.new_id("constraint")
    at = p.get("constraintAt")
    sim.records.constraints[ident] = {
        "id": ident,
        "jobId": p["jobId"],
        "type": kind,
        "constraintAt": at and utc_text(at),
        "entityId": p.get("entityId"),
        "createdAt": sim.now_text(),
    }
    return 201, {"id": ident}


def constraints_list(sim: BigChangeSandbox, p: Record) -> Reply:
    find(sim.records.jobs, "Job", p["jobId"])
    return 200, page([c for c in sim.records.constraints.values() if c["jobId"] == p["jobId"]], p)


def constraints_delete(sim: BigChangeSandbox, p: Record) -> Reply:
    constraint = find(sim.records.constraints, "Constraint", p["constraintId"])
    if "jobId" in p:
        find(sim.records.jobs, "Job", p["jobId"])
        if constraint["jobId"] != p["jobId"]:
            raise problem(404, f"Constraint {constraint['id']} was not found on job {p['jobId']}")
    del sim.records.constraints[constraint["id"]]
    return 204, None
