"""Concurrent redeliveries of one batch, on SQLite and PostgreSQL: every change is stored once, with one run."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask

from engine.services import Services
from engine.verify import sign_body_base64
from tests.web.inbound_setup import (  # noqa: F401  (inbound_app, inbound_workflows_dir: fixtures)
    INBOUND_SECRETS,
    events,
    example_bytes,
    inbound_app,
    inbound_workflows_dir,
    runs,
)


@pytest.fixture
def database_url(any_db_url: str) -> str:
    return any_db_url


def test_five_simultaneous_deliveries_of_a_batch_store_each_change_once(app: Flask, services: Services) -> None:
    body = example_bytes("quickbooks-legacy.json")
    headers = {
        "Content-Type": "application/json",
        "intuit-signature": sign_body_base64(body, INBOUND_SECRETS["INTUIT_VERIFIER_TOKEN"]),
    }

    def deliver(_: int) -> int:
        return app.test_client().post("/hooks/quickbooks", data=body, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = list(pool.map(deliver, range(5)))
    assert statuses == [200] * 5
    assert len(events(services)) == 4 and len(runs(services)) == 4
