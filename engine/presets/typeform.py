"""Typeform: one JSON POST per response, signed `Typeform-Signature: sha256=<base64>` (reference §6).

Answers arrive as a list, each value under a key named after its type
(`email`, `choice.label`, …). Workflows want `event.data.email`, so answers
are keyed by the field's `ref` — stable and editable in the builder, unlike
titles — with hidden fields alongside.
"""

from __future__ import annotations

from typing import Any

from engine.presets.base import Headers, PayloadError, Preset, require_mapping, text_field

SENDER = "typeform"


def _answer_value(answer: dict[str, Any]) -> Any:
    kind = answer.get("type")
    if kind == "choice":
        choice = answer.get("choice") or {}
        return choice.get("label", choice.get("other"))
    if kind == "choices":
        choices = answer.get("choices") or {}
        labels = list(choices.get("labels") or [])
        return labels + [choices["other"]] if choices.get("other") else labels
    if isinstance(kind, str) and kind in answer:
        return answer[kind]
    # A type this code does not know yet: keep whatever the answer carries besides its field.
    return {key: value for key, value in answer.items() if key not in ("type", "field")}


def normalise(item: Any) -> dict[str, Any]:
    """Hidden fields, then each answer by its field's ref (id when a ref is missing)."""
    body = require_mapping(item, SENDER, "the body")
    response = require_mapping(body.get("form_response"), SENDER, "form_response")
    data: dict[str, Any] = dict(response.get("hidden") or {})
    for answer in response.get("answers") or []:
        if not isinstance(answer, dict) or not isinstance(answer.get("field"), dict):
            raise PayloadError(f"{SENDER} delivery: an answer has no field")
        name = answer["field"].get("ref") or answer["field"].get("id")
        if not name:
            raise PayloadError(f"{SENDER} delivery: an answer's field has neither ref nor id")
        data[str(name)] = _answer_value(answer)
    return data


def event_type(item: Any, headers: Headers) -> str:
    body = require_mapping(item, SENDER, "the body")
    return "form.partial" if body.get("event_type") == "form_response_partial" else "form.submitted"


def event_id(item: Any, headers: Headers) -> str:
    return text_field(require_mapping(item, SENDER, "the body"), "event_id", SENDER)


PRESET = Preset(
    name=SENDER,
    summary="Typeform webhooks (JSON, HMAC-SHA256 base64 in Typeform-Signature)",
    verify={
        "type": "hmac",
        "header": "Typeform-Signature",
        "algorithm": "sha256",
        "encoding": "base64",
        "prefix": "sha256=",
    },
    normalise=normalise,
    event_type=event_type,
    event_id=event_id,
)
