"""What a parsed body may hold before it becomes an event: bounded nesting, and only storable values.

Two kinds of input parse fine in Python yet must not reach the ledger:

- **Deep nesting.** No sender nests a webhook 64 levels deep; a body that does is
  an attack on every recursive reader after us (templates, JSON encoders), so it
  is refused with a clear message instead of relying on RecursionError.
- **Values PostgreSQL refuses.** JSONB cannot hold U+0000 (NUL) nor a lone UTF-16
  surrogate (`"\\ud800"`, which json.loads accepts), nor NaN/Infinity; TEXT
  columns cannot hold NUL either. SQLite takes all of them, so without this check
  the same request would be stored on one backend and fail the write — a 503 the
  sender retries forever — on the other. They are refused on both (docs/inbound.md,
  "Text the ledger cannot store"): silently rewriting a sender's data is worse than
  telling it, and the rejected event keeps the raw bytes for inspection.

Metadata that is not the event's data (header and query values) is made storable
instead (`storable_text`): it is shown to people, never matched on.
"""

from __future__ import annotations

import math
import re
from typing import Any

# Deeper than any real sender's payload (Typeform's nests 5), far below Python's recursion limit.
MAX_JSON_DEPTH = 64

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_REPLACEMENT = "\ufffd"

Path = tuple[str | int, ...]


class PayloadRefused(ValueError):
    """A parsed payload nests too deeply or holds a value the ledger cannot store; the message names where."""


def where(path: Path) -> str:
    """A field's path as workflows spell it: `events[0].resourceId` (quoted by the caller)."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _field(path: Path) -> str:
    return f"field {where(path)!r}" if path else "the body"


def _refusal(found: re.Match[str], at: str) -> PayloadRefused:
    char = found.group()
    if char == "\x00":
        return PayloadRefused(f"{at} contains a NUL character (U+0000), which cannot be stored; remove it")
    return PayloadRefused(f"{at} contains a lone surrogate (U+{ord(char):04X}), which is not valid Unicode")


def check(value: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse nesting deeper than `max_depth` and values the ledger cannot store.

    Iterative, so it cannot itself overflow the stack; one pass over the payload.

    Raises:
        PayloadRefused: naming the first offending field's path.
    """
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if found := _UNSTORABLE.search(node):
                raise _refusal(found, _field(path))
        elif isinstance(node, dict):
            if len(path) >= max_depth:
                raise PayloadRefused(f"body nests deeper than {max_depth} levels; flatten it")
            for key, child in node.items():
                if isinstance(key, str) and (found := _UNSTORABLE.search(key)):
                    raise _refusal(found, f"the field name {where((*path, key))!r}")
                stack.append((child, (*path, key)))
        elif isinstance(node, list):
            if len(path) >= max_depth:
                raise PayloadRefused(f"body nests deeper than {max_depth} levels; flatten it")
            stack.extend((child, (*path, index)) for index, child in enumerate(node))
        elif isinstance(node, float) and not math.isfinite(node):
            raise PayloadRefused(f"{_field(path)} is {node!r}, not a JSON number (NaN, Infinity or out of range)")


def check_text(value: str, what: str) -> None:
    """Refuse one string (an event type, a dedupe key) the ledger cannot store.

    Raises:
        PayloadRefused: it holds a NUL or a lone surrogate.
    """
    if found := _UNSTORABLE.search(value):
        raise _refusal(found, what)


def storable_text(value: str) -> str:
    """`value` with NULs and lone surrogates replaced by U+FFFD, for metadata shown to people."""
    return _UNSTORABLE.sub(_REPLACEMENT, value) if _UNSTORABLE.search(value) else value
