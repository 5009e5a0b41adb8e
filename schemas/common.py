"""Field types shared by every model that talks about time."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer


def parse_utc(value: Any) -> datetime:
    """ISO 8601 with an explicit offset, converted to UTC. Naive times are refused: whose clock?"""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time such as 2026-04-20T09:00:00Z") from None
    if not isinstance(value, datetime):
        raise ValueError("expected an ISO 8601 UTC date-time such as 2026-04-20T09:00:00Z")
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no timezone; write it in UTC, e.g. append Z")
    return value.astimezone(timezone.utc)


UtcDateTime = Annotated[
    datetime,
    BeforeValidator(parse_utc),
    # Seconds precision with a Z suffix: the strictest format the APIs we call accept.
    PlainSerializer(lambda v: v.strftime("%Y-%m-%dT%H:%M:%SZ"), return_type=str),
]
