"""Zapier's "Webhooks by Zapier" action calling us (reference §10): form, JSON or raw, unsigned.

Form-mode values are flat strings and arrive as they are. Zapier provides no
idempotency key, so the preset uses an `Idempotency-Key` header or an `id`
field when the Zap sends one, and otherwise the default (a digest of the
body). Every request is typed `zapier.request`: Zapier has no notion of an
event type, and reading one from a body field would make a form field that
happens to be called `type` decide which workflows run; a Zap that sends
several kinds sets `event_type: "{{ body.event }}"` on its source. A Custom
Request sends the body exactly as typed with whatever Content-Type the Zap
author entered — often none, or the form default — so this is the one preset
that sniffs JSON. For starting one workflow directly, the
`POST /api/workflows/<name>/run` endpoint suits Zapier better (docs/inbound.md).
"""

from __future__ import annotations

from typing import Any

from engine.presets.base import Headers, Preset

EVENT_TYPE = "zapier.request"


def event_type(item: Any, headers: Headers) -> str:
    return EVENT_TYPE


def event_id(item: Any, headers: Headers) -> str | None:
    if headers.get("idempotency-key"):
        return headers["idempotency-key"]
    if isinstance(item, dict) and item.get("id") not in (None, "", [], {}):
        return str(item["id"])
    return None


PRESET = Preset(
    name="zapier",
    summary="Webhooks by Zapier (form, JSON or raw; token header or Basic auth)",
    verify={"type": "token", "header": "X-Hook-Token", "query_param": "token"},
    source={"sniff_json": True},
    event_type=event_type,
    event_id=event_id,
)
