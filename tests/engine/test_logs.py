"""Structured logs: one JSON object per line with the fields ops search by; secrets never written."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydantic import SecretStr

from engine import logs
from engine.observe import RunFinished, StepFinished
from schemas.settings import PROJECT_ROOT, Settings
from tests.conftest import SECRETS, Drain, Sandbox, post_hook

EXAMPLE = (PROJECT_ROOT / "examples" / "web-enquiry.json").read_bytes()
TOKEN = {"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]}


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def restore_logging() -> Any:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_every_step_and_run_writes_one_line_with_its_fields(
    client: FlaskClient, drain: Drain, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    formatter = logs.JsonFormatter(logs.Scrubber())
    with caplog.at_level(logging.INFO):
        accepted = post_hook(client, "webform", EXAMPLE, **TOKEN).get_json()
        drain()
    written = [json.loads(formatter.format(record)) for record in caplog.records]

    steps = [line for line in written if line["msg"].startswith("step ")]
    assert [line["step"] for line in steps] == ["contact", "job", "constraint", "schedule"]
    first = steps[0]
    assert first["event_id"] == accepted["event_id"] and first["run_id"] == accepted["runs"][0]
    assert (first["attempt"], first["connector"], first["operation"]) == (1, "bigchange", "bigchange.contacts.create")
    assert first["status"] == "succeeded" and first["duration_ms"] > 0 and first["http_statuses"]
    assert first["level"] == "info" and first["ts"].endswith("+00:00")

    (webhook,) = [line for line in written if line["logger"] == "hookflow.inbound"]
    assert (webhook["source"], webhook["http_status"], webhook["event_id"]) == ("webform", 202, accepted["event_id"])
    (finished,) = [line for line in written if line["msg"] == "run succeeded"]
    assert finished["run_id"] == accepted["runs"][0] and finished["duration_ms"] >= 0


def test_secrets_are_masked_by_value_and_by_field_name(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(bigchange_api_key=SecretStr("bc-key-12345"), admin_token=SecretStr("adm-67890"))
    logs.configure(settings)
    fact = StepFinished(
        "run_x",
        "evt_x",
        "w",
        "contact",
        "bigchange.contacts.create",
        2,
        "failed",
        12.5,
        "HTTP 401: key bc-key-12345 is not valid",
    )
    logs.log_fact(fact)
    logging.getLogger("engine.test").warning("admin token adm-67890 leaked", extra={"api_token": "tok-abc", "n": 1})

    text = capsys.readouterr().err
    assert "bc-key-12345" not in text and "adm-67890" not in text and "tok-abc" not in text
    step, other = lines(text)
    assert step["error"] == "HTTP 401: key [redacted] is not valid" and step["level"] == "warning"
    assert other["msg"] == "admin token [redacted] leaked" and other["api_token"] == "[redacted]" and other["n"] == 1


def test_text_format_is_for_people_and_masks_too(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(Settings(log_format="text", admin_token=SecretStr("adm-67890")))
    logs.log_fact(RunFinished("run_x", "evt_x", "w", "failed", "boom adm-67890", "contact", 5.0))
    (line,) = capsys.readouterr().err.splitlines()
    assert " WARNING hookflow: run failed " in line
    assert "run_id=run_x" in line and "step=contact" in line and "error=boom [redacted]" in line


def test_configuring_twice_keeps_one_handler(restore_logging: None) -> None:
    logs.configure(Settings())
    logs.configure(Settings(log_level="WARNING"))
    ours = [h for h in logging.getLogger().handlers if getattr(h, "hookflow", False)]
    assert len(ours) == 1 and logging.getLogger().level == logging.WARNING
    assert logging.getLogger("httpx").level == logging.WARNING


def test_an_exception_is_one_line_with_its_traceback(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(Settings())
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("engine.test").exception("it broke")
    (line,) = lines(capsys.readouterr().err)
    assert line["msg"] == "it broke" and "ValueError: bad" in line["exc"]
