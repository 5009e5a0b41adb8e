"""What a sender preset is: how one real sender's deliveries become Hookflow events.

A preset bundles what an ops person would otherwise have to work out from the
sender's documentation (../shared/reference/inbound-webhook-formats.md): how
the sender signs, what it expects back, how many events one delivery carries,
which field is its idempotency key, and how to turn its payload into a flat
`event.data` of the form's fields by name (the original stays as `event.raw`).

Presets are plain data plus pure functions over parsed bodies, so they import
nothing from the rest of Hookflow and schemas/sources.py can read their
defaults while validating sources.yaml.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Headers = Mapping[str, str]


class PayloadError(Exception):
    """The delivery is not shaped the way this sender sends it; the message says what is missing."""


# Every preset's default `rate_limit`: far above what any form or accounting sender sends (a few a
# second at most), low enough that one misbehaving sender cannot flood the workers and starve the others.
RATE_LIMIT = {"per_second": 10, "burst": 100}


def one_item(parsed: Any) -> list[Any]:
    """Most senders: one delivery is one event."""
    return [parsed]


def unchanged(item: Any) -> Any:
    return item


def no_default(item: Any, headers: Headers) -> str | None:
    return None


@dataclass(frozen=True)
class Preset:
    """One sender's conventions; every callable is pure.

    Attributes:
        verify: the sources.yaml `verify:` mapping this sender needs, minus the secret, which
            comes from the source's own `secret:`.
        source: defaults for other source keys (ack, max_body_bytes, sniff_json), as sources.yaml spells
            them; every preset also gets RATE_LIMIT (schemas/sources.py).
        items: a parsed delivery -> the events it carries (a batch is split, a handshake carries none).
        normalise: one item -> `event.data` (flat fields by name).
        event_type / event_id: defaults used when sources.yaml gives no template.
        batched: one delivery carries many independent events, each deduplicated on its own
            and answered in one list.
        wrap: for a batched sender, one element -> a delivery of just that element, as the sender
            would send it. It is each event's stored raw body, so a replay re-reads it like any
            delivery (and storage stays linear in the batch size).
    """

    name: str
    summary: str
    verify: dict[str, Any]
    source: dict[str, Any] = field(default_factory=dict)
    items: Callable[[Any], list[Any]] = one_item
    normalise: Callable[[Any], Any] = unchanged
    event_type: Callable[[Any, Headers], str | None] = no_default
    event_id: Callable[[Any, Headers], str | None] = no_default
    batched: bool = False
    wrap: Callable[[Any], Any] = unchanged


def require_mapping(value: Any, sender: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{sender} delivery: {what} is not a JSON object")
    return value


def text_field(item: Mapping[str, Any], key: str, sender: str) -> str:
    """A required scalar field as text (ids may arrive as numbers)."""
    value = item.get(key)
    if value is None or value == "" or isinstance(value, (dict, list)):
        raise PayloadError(f"{sender} delivery has no {key}")
    return str(value)
