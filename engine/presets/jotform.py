"""Jotform: multipart/form-data, one POST per submission, unsigned (reference §7).

The answers are not the form parts: they sit in `rawRequest`, a JSON object
serialised as a string, keyed `q<questionId>_<uniqueName>`. The items step
decodes it (so `event.raw.rawRequest.slug` works); the normaliser keeps only the
question keys, named by their unique name. Compound widgets (name, address,
date) stay objects. Jotform cannot sign, so the preset checks a token in the
webhook URL (`?token=`), which is all Jotform lets you configure.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engine.presets.base import Headers, PayloadError, Preset, require_mapping, text_field

SENDER = "jotform"
_QUESTION = re.compile(r"^q\d+_(.+)$")


def items(parsed: Any) -> list[Any]:
    parts = require_mapping(parsed, SENDER, "the form")
    raw = parts.get("rawRequest")
    if not isinstance(raw, str):
        raise PayloadError(f"{SENDER} delivery has no rawRequest part")
    try:
        answers = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"{SENDER} delivery: rawRequest is not JSON ({exc.msg})") from None
    except (RecursionError, ValueError):  # nested past the recursion limit, or a number past the digit limit
        raise PayloadError(f"{SENDER} delivery: rawRequest is not JSON a form would send") from None
    return [{**parts, "rawRequest": require_mapping(answers, SENDER, "rawRequest")}]


def normalise(item: Any) -> dict[str, Any]:
    answers = item["rawRequest"]
    data = {}
    for key, value in answers.items():
        match = _QUESTION.match(key)
        if match:
            data[match.group(1)] = value
    return data


def event_type(item: Any, headers: Headers) -> str:
    return "form.preview" if str(item["rawRequest"].get("preview", "")).lower() == "true" else "form.submitted"


def event_id(item: Any, headers: Headers) -> str:
    return text_field(item, "submissionID", SENDER)


PRESET = Preset(
    name=SENDER,
    summary="Jotform webhooks (multipart with rawRequest; unsigned, so a ?token= in the URL)",
    verify={"type": "token", "header": "X-Hook-Token", "query_param": "token"},
    source={"ack": {"status": 200}},
    items=items,
    normalise=normalise,
    event_type=event_type,
    event_id=event_id,
)
