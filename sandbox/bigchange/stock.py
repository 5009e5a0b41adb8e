"""Handlers for job stock lines: parts from the seeded stock catalogue, planned on a job."""

from __future__ import annotations

from sandbox.bigchange.jobs import open_job
from sandbox.bigchange.state import STOCK_ITEMS, BigChangeSandbox, Record, Reply, find, page, problem


def _line(sim: BigChangeSandbox, p: Record) -> Record:
    """The stock line `jobStockId`, which must belong to `jobId`."""
    find(sim.records.jobs, "Job", p["jobId"])
    line = find(sim.records.stock, "Job stock line", p["jobStockId"])
    if line["jobId"] != p["jobId"]:
        raise problem(404, f"Job stock line {line['id']} was not found on job {p['jobId']}")
    return line


def stock_create(sim: BigChangeSandbox, p: Record) -> Reply:
    job = open_job(sim, p["jobId"], "given stock")
    item = find(STOCK_ITEMS, "Stock item", p["stockDetailsId"])
    ident = sim.records.new_id("stock")
    sim.records.stock[ident] = {
        "id": ident,
        "jobId": job["id"],
        "stockDetailsId": item["id"],
        "name": item["name"],
        "quantityPlanned": p["quantityPlanned"],
        "quantityUsed": 0,
        "createdAt": sim.now_text(),
    }
    return 201, {"id": ident}


def stock_get(sim: BigChangeSandbox, p: Record) -> Reply:
    return 200, _line(sim, p)


def stock_delete(sim: BigChangeSandbox, p: Record) -> Reply:
    del sim.records.stock[_line(sim, p)["id"]]
    return 204, None


def stock_list(sim: BigChangeSandbox, p: Record) -> Reply:
    find(sim.records.jobs, "Job", p["jobId"])
    return 200, page([s for s in sim.records.stock.values() if s["jobId"] == p["jobId"]], p)
