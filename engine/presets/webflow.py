"""Webflow `form_submission` (reference §9): JSON, HMAC-SHA256 hex over "<ms timestamp>:<body>".

`payload.data` already holds the form's fields by the designer's names, so it
becomes `event.data` as it is. Webflow treats anything but 200 as a failure.
Webhooks created in the site dashboard are unsigned: give such a source
`verify: {type: token, ...}` (the token in the URL) instead of the preset's.
"""

from __future__ import annotations

from typing import Any

from engine.presets.base import Headers, Preset, require_mapping

SENDER = "webflow"


def _payload(item: Any) -> dict[str, Any]:
    return require_mapping(require_mapping(item, SENDER, "the body").get("payload"), SENDER, "payload")


def normalise(item: Any) -> Any:
    payload = _payload(item)
    if item.get("triggerType") == "form_submission":
        return dict(require_mapping(payload.get("data"), SENDER, "payload.data"))
    return payload


def event_type(item: Any, headers: Headers) -> str | None:
    trigger = require_mapping(item, SENDER, "the body").get("triggerType")
    return "form.submitted" if trigger == "form_submission" else (str(trigger) if trigger else None)


def event_id(item: Any, headers: Headers) -> str | None:
    value = _payload(item).get("id")
    return str(value) if value not in (None, "") else None


PRESET = Preset(
    name=SENDER,
    summary="Webflow webhooks (JSON, HMAC-SHA256 hex over timestamp:body, 5-minute window)",
    verify={
        "type": "hmac",
        "header": "X-Webflow-Signature",
        "algorithm": "sha256",
        "encoding": "hex",
        "timestamp_header": "X-Webflow-Timestamp",
        "timestamp_unit": "ms",
        "signed_payload": "{timestamp}:{body}",
    },
    source={"ack": {"status": 200}},
    normalise=normalise,
    event_type=event_type,
    event_id=event_id,
)
