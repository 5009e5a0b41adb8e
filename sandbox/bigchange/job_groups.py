"""Handlers for job groups (multi-job programmes) and the seeded job-type catalogue.

A group holds the jobs created or edited with its `jobGroupId` (shown as
`jobIds`). Its status goes open -> complete -> financiallyComplete (the docs
are silent on order; this is the order that makes sense): financially complete
needs complete first, and nothing reopens a financially complete group. Marking
complete twice is accepted (a retried step must not fail on it). Every change is
appended to the group's status history.
"""

from __future__ import annotations

from sandbox.bigchange.state import JOB_TYPES, BigChangeSandbox, Record, Reply, find, page, problem


def job_groups_create(sim: BigChangeSandbox, p: Record) -> Reply:
    ident = sim.records.new_id("job_group")
    group = {"id": ident, "name": p["name"], "status": "open", "createdAt": sim.now_text()}
    sim.records.job_groups[ident] = group
    sim.set_group_status(group, "open")
    return 201, {"id": ident}


def job_groups_edit(sim: BigChangeSandbox, p: Record) -> Reply:
    find(sim.records.job_groups, "Job group", p["jobGroupId"])["name"] = p["name"]
    return 204, None


def job_groups_get(sim: BigChangeSandbox, p: Record) -> Reply:
    return 200, sim.group_view(find(sim.records.job_groups, "Job group", p["jobGroupId"]))


def job_groups_list(sim: BigChangeSandbox, p: Record) -> Reply:
    groups = sorted(sim.records.job_groups.values(), key=lambda g: g["id"], reverse=p["direction"] == "descending")
    return 200, page([sim.group_view(group) for group in groups], p)


def job_groups_history(sim: BigChangeSandbox, p: Record) -> Reply:
    group = find(sim.records.job_groups, "Job group", p["jobGroupId"])
    return 200, page(sim.records.group_history.get(group["id"], []), p)


def job_groups_complete(sim: BigChangeSandbox, p: Record) -> Reply:
    group = find(sim.records.job_groups, "Job group", p["jobGroupId"])
    if group["status"] == "financiallyComplete":
        raise problem(422, f"Job group {group['id']} is already financially complete")
    sim.set_group_status(group, "complete")
    return 204, None


def job_groups_financially_complete(sim: BigChangeSandbox, p: Record) -> Reply:
    group = find(sim.records.job_groups, "Job group", p["jobGroupId"])
    if group["status"] == "open":
        raise problem(422, f"Job group {group['id']} must be marked complete before financially complete")
    sim.set_group_status(group, "financiallyComplete")
    return 204, None


def job_types_get(sim: BigChangeSandbox, p: Record) -> Reply:
    return 200, find(JOB_TYPES, "Job type", p["jobTypeId"])


def job_types_list(sim: BigChangeSandbox, p: Record) -> Reply:
    return 200, page(sorted(JOB_TYPES.values(), key=lambda t: t["id"]), p)
