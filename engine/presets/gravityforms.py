"""Gravity Forms Webhooks Add-On (reference §8): JSON or form-encoded, unsigned.

"All Fields" sends the entry object: meta keys plus one key per field id
("1", "2.3" for a name's first input). Field ids are all the entry knows, so
the normaliser drops the meta keys and keeps the ids; the source's
`field_names:` maps them to names ("2.3": first_name). "Select Fields" sends
the author's own keys, which are kept as they are. The add-on cannot sign;
add a header on the feed carrying the token.
"""

from __future__ import annotations

from typing import Any

from engine.presets.base import Headers, Preset, require_mapping

SENDER = "gravityforms"
# The entry object's own keys (not form fields).
ENTRY_META = frozenset(
    {
        "id", "form_id", "post_id", "date_created", "date_updated", "is_starred", "is_read", "ip",
        "source_url", "user_agent", "currency", "payment_status", "payment_date", "payment_amount",
        "payment_method", "transaction_id", "is_fulfilled", "created_by", "transaction_type", "status",
        "source_id", "is_approved",
    }
)  # fmt: skip


def _is_entry(body: dict[str, Any]) -> bool:
    return "form_id" in body and "date_created" in body


def normalise(item: Any) -> dict[str, Any]:
    body = require_mapping(item, SENDER, "the body")
    if not _is_entry(body):
        return dict(body)  # "Select Fields": the feed author's own keys
    return {key: value for key, value in body.items() if key not in ENTRY_META}


def event_type(item: Any, headers: Headers) -> str:
    return "form.submitted"


def event_id(item: Any, headers: Headers) -> str | None:
    """`<form id>:<entry id>` for an entry; None (a digest of the body) for "Select Fields"."""
    body = require_mapping(item, SENDER, "the body")
    if _is_entry(body) and body.get("id") not in (None, ""):
        return f"{body['form_id']}:{body['id']}"
    return None


PRESET = Preset(
    name=SENDER,
    summary="Gravity Forms Webhooks Add-On (JSON or form; unsigned, so a token header on the feed)",
    verify={"type": "token", "header": "X-Hook-Token", "query_param": "token"},
    source={"ack": {"status": 200}},
    normalise=normalise,
    event_type=event_type,
    event_id=event_id,
)
