"""A workflows directory with one source per sender preset and verify type, for the inbound web tests.

Test modules import the fixtures below (`inbound_workflows_dir`, `inbound_app`:
they override `workflows_dir` and `app`) to run the app against it; secrets
reach sources.yaml as `${VAR}` like in production.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from engine.models import Event, Run
from engine.services import EXTENSION, Services
from schemas.settings import Settings
from tests.conftest import SECRETS

EXAMPLES = Path(__file__).parents[2] / "examples" / "inbound"
JOTFORM_CONTENT_TYPE = "multipart/form-data; boundary=------------------------5b6e1a0c3f2d7a91"

INBOUND_SECRETS = {
    "TYPEFORM_SECRET": "tf-signing-secret",
    "JOTFORM_TOKEN": "jf-url-token",
    "WEBFLOW_CLIENT_SECRET": "wf-client-secret",
    "GRAVITY_TOKEN": "gf-feed-token",
    "ZAPIER_TOKEN": "zap-token",
    "XERO_WEBHOOK_KEY": "xero-webhook-key",
    "INTUIT_VERIFIER_TOKEN": "intuit-verifier-token",
    "PARTNER_WHSEC": "whsec_" + base64.b64encode(b"partner-random-key-24byt").decode(),
    "LEGACY_PASSWORD": "legacy-pass",
}

SOURCES = """\
sources:
  enquiries: {preset: typeform, secret: "${TYPEFORM_SECRET}"}
  jotform: {preset: jotform, secret: "${JOTFORM_TOKEN}"}
  webflow: {preset: webflow, secret: "${WEBFLOW_CLIENT_SECRET}"}
  gravity:
    preset: gravityforms
    secret: "${GRAVITY_TOKEN}"
    field_names: {"1.3": first_name, "1.6": last_name, "2": email, "4.5": postcode}
  zapier: {preset: zapier, secret: "${ZAPIER_TOKEN}", run_workflows: [log-anything]}
  zap-key:
    verify: {type: token, header: X-Zap-Key, secret: "${ZAPIER_TOKEN}"}
    run_workflows: [log-anything]
  xero: {preset: xero, secret: "${XERO_WEBHOOK_KEY}"}
  quickbooks: {preset: quickbooks, secret: "${INTUIT_VERIFIER_TOKEN}"}
  partner: {verify: {type: standard-webhooks, secret: "${PARTNER_WHSEC}"}}
  legacy:
    verify: {type: basic, username: crm, password: "${LEGACY_PASSWORD}"}
    rate_limit: {per_second: 0.01, burst: 2}
  forms:
    verify: {type: token, secret: "${WEBFORM_TOKEN}"}
    event_type: form.submitted
    event_id: "{{ body.submission_id }}"
    max_body_bytes: 200
"""

# One workflow per source that logs a field, so each test can see the runs an event started.
WORKFLOWS = {
    "typeform-enquiry": ("enquiries", "form.submitted", "{{ event.data.name }} in {{ event.data.postcode }}"),
    "jotform-enquiry": ("jotform", "form.submitted", "{{ event.data.fullName.first }}"),
    "webflow-enquiry": ("webflow", "form.submitted", "{{ event.data['First Name'] }}"),
    "gravity-enquiry": ("gravity", "form.submitted", "{{ event.data.first_name }} {{ event.data.postcode }}"),
    "xero-change": ("xero", None, "{{ event.type }} {{ event.data.resourceId }}"),
    "qbo-change": ("quickbooks", None, "{{ event.data.entity }} {{ event.data.entity_id }} {{ event.data.operation }}"),
    "partner-alert": ("partner", "customer.credit_limit.exceeded", "{{ event.data.data.account_ref }}"),
    "legacy-call": ("legacy", None, "called with {{ event.data }}"),
    "form-enquiry": ("forms", "form.submitted", "{{ event.data.name }}"),
    "log-anything": ("zapier", None, "called with {{ event.data }}"),
}


def write_workflows(directory: Path, sources: str = SOURCES) -> Path:
    (directory / "sources.yaml").write_text(sources)
    for name, (source, event, message) in WORKFLOWS.items():
        trigger = {"source": source, **({"event": event} if event else {})}
        spec = {
            "name": name,
            "on": trigger,
            "steps": [{"id": "note", "uses": "core.log", "with": {"message": message}}],
        }
        (directory / f"{name}.yaml").write_text(json.dumps(spec))  # JSON is YAML
    return directory


@pytest.fixture(name="workflows_dir")
def inbound_workflows_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "workflows"
    directory.mkdir()
    return write_workflows(directory)


@pytest.fixture(name="app")
def inbound_app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings, environ={**SECRETS, **INBOUND_SECRETS})
    services = app.extensions[EXTENSION]
    services.redis.flushdb()
    yield app
    services.close()


def events(services: Services, **where: Any) -> list[Event]:
    query = sa.select(Event).order_by(Event.id)
    for column, value in where.items():
        query = query.where(getattr(Event, column) == value)
    with services.db.session() as session:
        return list(session.scalars(query))


def runs(services: Services, **where: Any) -> list[Run]:
    query = sa.select(Run).order_by(Run.id)
    for column, value in where.items():
        query = query.where(getattr(Run, column) == value)
    with services.db.session() as session:
        return list(session.scalars(query))


def example_bytes(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def reload(services: Services) -> None:
    """Make the next request see edited YAML at once."""
    services.catalog._fingerprint = ()
