"""Xero webhooks (reference §3): thin change events in batches, base64 HMAC-SHA256 in x-xero-signature.

One POST carries `events: [...]`; each is its own Hookflow event, keyed by what
Xero documents as its identity (tenant, category, resource, type, time), since
Xero sends no event id. The intent-to-receive handshake is a delivery with no
events: correctly signed it gets 200 with an empty body and stores nothing,
incorrectly signed the verifier's 401. Xero wants 200 with an empty body for
every delivery, within 5 seconds.
"""

from __future__ import annotations

from typing import Any

from engine.presets.base import Headers, PayloadError, Preset, require_mapping, text_field

SENDER = "xero"
_KEY_FIELDS = ("tenantId", "eventCategory", "resourceId", "eventType", "eventDateUtc")


def items(parsed: Any) -> list[Any]:
    events = require_mapping(parsed, SENDER, "the body").get("events")
    if not isinstance(events, list):
        raise PayloadError(f"{SENDER} delivery has no events list")
    return [require_mapping(event, SENDER, "an event") for event in events]


def wrap(item: Any) -> dict[str, Any]:
    return {"events": [item]}


def normalise(item: Any) -> dict[str, Any]:
    """The event as sent, with eventType/eventCategory upper-cased (docs show "Update" as well as "UPDATE")."""
    data = dict(item)
    for key in ("eventType", "eventCategory"):
        if isinstance(data.get(key), str):
            data[key] = data[key].upper()
    return data


def event_type(item: Any, headers: Headers) -> str:
    """e.g. `xero.invoice.update`."""
    category = text_field(item, "eventCategory", SENDER).lower()
    return f"xero.{category}.{text_field(item, 'eventType', SENDER).lower()}"


def event_id(item: Any, headers: Headers) -> str:
    parts = [text_field(item, name, SENDER) for name in _KEY_FIELDS]
    parts[1], parts[3] = parts[1].upper(), parts[3].upper()
    return ":".join(parts)


PRESET = Preset(
    name=SENDER,
    summary="Xero webhooks (batched, x-xero-signature; intent-to-receive handshake; 200 with an empty body)",
    verify={"type": "xero"},
    source={"ack": {"status": 200, "body": "empty"}},
    items=items,
    normalise=normalise,
    event_type=event_type,
    event_id=event_id,
    batched=True,
    wrap=wrap,
)
