"""`event.raw` in step templates, and secrets written into sources.yaml where a preset or basic auth keeps them."""

from __future__ import annotations

import json
from pathlib import Path

from flask.testing import FlaskClient

from engine.loader import load_sources
from engine.services import Services
from engine.verify import sign_body_base64
from tests.conftest import Drain
from tests.web.inbound_setup import (  # noqa: F401  (inbound_app, inbound_workflows_dir: fixtures)
    INBOUND_SECRETS,
    example_bytes,
    inbound_app,
    inbound_workflows_dir,
    reload,
    runs,
)


def test_steps_read_the_senders_original_payload_as_event_raw(
    client: FlaskClient, services: Services, drain: Drain, workflows_dir: Path
) -> None:
    spec = {
        "name": "typeform-raw",
        "on": {"source": "enquiries"},
        "steps": [{"id": "note", "uses": "core.log", "with": {"message": "token {{ event.raw.form_response.token }}"}}],
    }
    (workflows_dir / "typeform-raw.yaml").write_text(json.dumps(spec))
    reload(services)
    body = example_bytes("typeform.json")
    signature = "sha256=" + sign_body_base64(body, INBOUND_SECRETS["TYPEFORM_SECRET"])
    headers = {"Content-Type": "application/json", "Typeform-Signature": signature}
    assert client.post("/hooks/enquiries", data=body, headers=headers).status_code == 202
    drain()
    (run,) = runs(services, workflow="typeform-raw")
    assert run.status == "succeeded"


def test_a_preset_secret_or_a_basic_password_written_into_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(
        "sources:\n"
        "  tf: {preset: typeform, secret: literal}\n"
        '  crm: {verify: {type: basic, username: u, password: ["${OK}", literal]}}\n'
    )
    result = load_sources(path, {"OK": "x"})
    assert [(i.path, i.message) for i in result.issues] == [
        ("sources.tf.secret", "a secret is written into the file"),
        ("sources.crm.verify.password[1]", "a secret is written into the file"),
    ]
    assert result.sources == {}
