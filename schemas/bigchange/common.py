"""Building blocks shared by the BigChange vh3 input models.

Field names are exactly as the docs spell them (shared/api-docs/bigchange-vh3-*.txt);
what the docs leave open comes from shared/reference/bigchange-api.md §2.4-2.8.
Unknown fields are refused so a misspelt `contactID` fails validation instead of
being dropped on the way to the API.

Some fields are Hookflow *options* (paginate, max_items, split_windows, upsert):
they steer the connector and are never sent to BigChange. They are declared with
`option()`, so the connector (`api_payload`) and the generated docs tell them apart
from API fields by looking at the model, not at a hand-kept list.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

OPTION_MARK = "hookflow_option"
DEFAULT_MAX_ITEMS = 10_000
MAX_PAGE_SIZE = 1000

Id = Annotated[int, Field(ge=1)]
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE, description="Items per page; BigChange's maximum is 1000.")]
PageNumber = Annotated[int, Field(ge=1, description="1-based page index.")]
Direction = Literal["ascending", "descending"]


def option(default: Any, description: str, **constraints: Any) -> Any:
    """A Hookflow option: validated like any field, documented as such, never sent to the API."""
    return Field(
        default,
        description=f"Hookflow option, not sent to BigChange: {description}",
        json_schema_extra={OPTION_MARK: True},
        **constraints,
    )


def option_names(model: type[BaseModel]) -> frozenset[str]:
    """The fields of `model` that are Hookflow options rather than API fields."""
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get(OPTION_MARK)
    )


def api_payload(inp: BaseModel, **overrides: Any) -> dict[str, Any]:
    """What BigChange receives for `inp`: its API fields as JSON, without nulls or options."""
    payload = inp.model_dump(mode="json", exclude_none=True, exclude=set(option_names(type(inp))))
    payload.update(overrides)
    return payload


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
        raise ValueError(f"{value.isoformat()} has no timezone; BigChange wants UTC, e.g. append Z")
    return value.astimezone(timezone.utc)


def utc_text(moment: datetime) -> str:
    """BigChange's strict format: seconds precision, Z suffix (reference notes §2.5)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


UtcDateTime = Annotated[datetime, BeforeValidator(parse_utc), PlainSerializer(utc_text, return_type=str)]


def add_months(moment: datetime, months: int) -> datetime:
    """The same day-of-month `months` later, clamped to the month's end (29 Feb + 12 months = 28 Feb)."""
    year, month_index = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month_index + 1)[1])
    return moment.replace(year=year, month=month_index + 1, day=day)


def months_apart(start: datetime, end: datetime) -> bool:
    """True when `end` is more than twelve calendar months after `start`."""
    return end > add_months(start, 12)


class In(BaseModel):
    """Base of every input model: frozen, and unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Paged(In):
    """The shared list parameters (jobs doc, "Shared parameters") and the paging options."""

    pageNumber: PageNumber | None = None
    pageSize: PageSize | None = None
    sortBy: str | None = Field(None, description="Sort field; which ones is endpoint-specific.")
    direction: Direction | None = None
    paginate: Literal["page", "all"] = option(
        "page",
        "`page` returns the one page asked for; `all` follows pages (from pageNumber, pageSize default 1000) "
        "until a short page, and returns every item, deduplicated by id",
    )
    max_items: int = option(
        DEFAULT_MAX_ITEMS,
        "with paginate: all or split_windows, stop after this many items; the output then says truncated: true",
        ge=1,
        le=100_000,
    )


class Window(Paged):
    """A creation-date window, held to BigChange's 12-month rule unless split_windows asks to split it."""

    createdAtFrom: UtcDateTime | None = None
    createdAtTo: UtcDateTime | None = None
    split_windows: bool = option(
        False,
        "a createdAtFrom-createdAtTo range longer than 12 months is split into consecutive windows of at most "
        "12 months, each followed to its last page, and the items merged (deduplicated by id)",
    )

    @model_validator(mode="after")
    def _twelve_months(self) -> Window:
        if self.createdAtFrom and self.createdAtTo:
            if self.createdAtTo < self.createdAtFrom:
                raise ValueError("createdAtTo is before createdAtFrom")
            if not self.split_windows and months_apart(self.createdAtFrom, self.createdAtTo):
                raise ValueError(
                    "createdAtFrom and createdAtTo are more than 12 months apart; BigChange allows 12 "
                    "(narrow the window, or set split_windows: true to query it in 12-month windows)"
                )
        return self


class Location(In):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class CustomField(In):
    definitionId: Id
    value: Any
