"""What must never be stored or shown: credentials, recognised by where they sit.

One rule for every place Hookflow keeps what it saw (inbound headers and query
strings, outbound request and response bodies, step inputs): a value under a
name that says it is a credential is replaced by REDACTED. Connectors add the
exact credential values they send (an API may echo them back anywhere); see
ApiClient.scrub.
"""

from __future__ import annotations

import functools
import re
from typing import Any

REDACTED = "[redacted]"
# Header and field names that carry credentials, whatever the system.
SECRET_NAME = re.compile(r"authorization|cookie|token|secret|signature|api[-_]?key|password|passwd", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Cached: the same few dozen names (headers, body fields, log fields) are asked about on every
    request, call and log line; a cache hit costs ~60 ns against the search's ~500."""
    return bool(SECRET_NAME.search(name))


def redact_secret_fields(value: Any) -> Any:
    """`value` with every mapping entry under a credential-like name replaced, at any depth."""
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_name(key) else redact_secret_fields(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_secret_fields(item) for item in value]
    return value
