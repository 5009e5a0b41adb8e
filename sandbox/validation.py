"""Declarative request-field checks shared by the simulators.

Why not pydantic here: a simulator must answer in the *simulated* API's words, one
field at a time, the way its gateway does ("Missing param: name" with
`payload.param`), and it must be as strict as the real, typed API (a numeric
string is not an integer). A tiny vocabulary of checks keeps each endpoint's
contract a readable tuple of `Field`s and puts all wording in one place.

A check is a callable `(value, param) -> cleaned value` that raises `InputError`.
`null` is treated like an absent field: gateways of this kind do the same, and it
means "optional" has a single meaning.
"""

from __future__ import annotations

import calendar
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

_ABSENT: Any = object()
_INT_TEXT = re.compile(r"-?\d+")
_HH_MM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
# Seconds are mandatory and the offset must say UTC: the vh3 client normalises to
# exactly this shape and calls it "the strict UTC format the API expects".
_UTC_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|\+00:00)")


class InputError(ValueError):
    """A request field is missing or malformed; simulators answer 400 with `param`."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def missing(param: str) -> InputError:
    return InputError(param, f"Missing param: {param}")


def invalid(param: str, why: str) -> InputError:
    return InputError(param, f"Invalid param: {param} {why}")


class Check(Protocol):
    def __call__(self, value: Any, param: str) -> Any: ...


@dataclass(frozen=True)
class Integer:
    minimum: int | None = None
    maximum: int | None = None

    def __call__(self, value: Any, param: str) -> int:
        # bool is an int subclass in Python, but `true` is not an integer in JSON.
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(param, f"must be an integer, got {_json_type(value)}")
        if self.minimum is not None and value < self.minimum:
            raise invalid(param, f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise invalid(param, f"must be at most {self.maximum}")
        return value


@dataclass(frozen=True)
class Number:
    minimum: float
    maximum: float

    def __call__(self, value: Any, param: str) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise invalid(param, f"must be a number, got {_json_type(value)}")
        if not self.minimum <= value <= self.maximum:
            raise invalid(param, f"must be between {self.minimum:g} and {self.maximum:g}")
        return value


@dataclass(frozen=True)
class PositiveNumber:
    """A number above zero (a quantity: 1 unit, 1.5 metres)."""

    def __call__(self, value: Any, param: str) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise invalid(param, f"must be a number, got {_json_type(value)}")
        if value <= 0:
            raise invalid(param, "must be greater than 0")
        return value


@dataclass(frozen=True)
class Boolean:
    def __call__(self, value: Any, param: str) -> bool:
        if not isinstance(value, bool):
            raise invalid(param, f"must be true or false, got {_json_type(value)}")
        return value


@dataclass(frozen=True)
class HhMm:
    """A 24-hour time of day, `HH:MM` (site access hours)."""

    def __call__(self, value: Any, param: str) -> str:
        if not isinstance(value, str) or not _HH_MM.fullmatch(value):
            raise invalid(param, "must be a 24-hour time HH:MM such as 08:00")
        return value


@dataclass(frozen=True)
class Text:
    max_length: int | None = None
    non_empty: bool = False

    def __call__(self, value: Any, param: str) -> str:
        if not isinstance(value, str):
            raise invalid(param, f"must be a string, got {_json_type(value)}")
        if self.non_empty and not value.strip():
            raise invalid(param, "must not be empty")
        if self.max_length is not None and len(value) > self.max_length:
            raise invalid(param, f"must be at most {self.max_length} characters")
        return value


@dataclass(frozen=True)
class OneOf:
    values: tuple[str, ...]

    def __call__(self, value: Any, param: str) -> str:
        if value not in self.values:
            raise invalid(param, f"must be one of: {', '.join(self.values)} (got {value!r})")
        return value


@dataclass(frozen=True)
class Uuid:
    def __call__(self, value: Any, param: str) -> str:
        if not isinstance(value, str):
            raise invalid(param, f"must be a UUID string, got {_json_type(value)}")
        try:
            uuid.UUID(value)
        except ValueError as exc:
            raise invalid(param, "must be a UUID string") from exc
        return value


@dataclass(frozen=True)
class UtcDateTime:
    """ISO 8601 in UTC; returns an aware datetime so callers can compare windows."""

    def __call__(self, value: Any, param: str) -> datetime:
        if not isinstance(value, str) or not _UTC_DATETIME.fullmatch(value):
            raise invalid(param, "must be an ISO 8601 UTC date-time such as 2026-01-01T00:00:00Z")
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:  # e.g. 2026-02-30
            raise invalid(param, f"is not a valid date-time: {exc}") from exc


@dataclass(frozen=True)
class Scalar:
    """Any JSON string, number or boolean (custom-field values are loosely typed)."""

    def __call__(self, value: Any, param: str) -> Any:
        if not isinstance(value, (str, int, float, bool)):
            raise invalid(param, f"must be a string, number or boolean, got {_json_type(value)}")
        return value


@dataclass(frozen=True)
class ListOf:
    item: Check
    max_items: int | None = None

    def __call__(self, value: Any, param: str) -> list[Any]:
        if not isinstance(value, list):
            raise invalid(param, f"must be an array, got {_json_type(value)}")
        if self.max_items is not None and len(value) > self.max_items:
            raise invalid(param, f"must have at most {self.max_items} items")
        return [self.item(v, f"{param}[{i}]") for i, v in enumerate(value)]


@dataclass(frozen=True)
class OneOrMany:
    """A single value or an array of them (docs disagree on which); always returns a list.

    With `comma_text`, a string is the docs' comma-separated form (`"12345,678"`,
    what the jobs doc gives for `contactId`): each piece is checked as an item,
    integer text counting as an integer there, as the gateway parses its text input.
    """

    item: Check
    max_items: int = 50
    comma_text: bool = False

    def __call__(self, value: Any, param: str) -> list[Any]:
        if isinstance(value, list):
            return ListOf(self.item, self.max_items)(value, param)
        if self.comma_text and isinstance(value, str):
            return self._split(value, param)
        return [self.item(value, param)]

    def _split(self, text: str, param: str) -> list[Any]:
        pieces = [piece.strip() for piece in text.split(",")]
        if not all(pieces):
            raise invalid(param, f"must be comma-separated values without empty ones, got {text!r}")
        if len(pieces) > self.max_items:
            raise invalid(param, f"must have at most {self.max_items} items")
        if isinstance(self.item, Integer):
            if not all(_INT_TEXT.fullmatch(piece) for piece in pieces):
                raise invalid(param, f"must be comma-separated integers, got {text!r}")
            return [self.item(int(piece), param) for piece in pieces]
        return [self.item(piece, param) for piece in pieces]


@dataclass(frozen=True)
class Object:
    fields: tuple[Field, ...]

    def __call__(self, value: Any, param: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid(param, f"must be an object, got {_json_type(value)}")
        return validate(value, self.fields, prefix=f"{param}.")


@dataclass(frozen=True)
class Field:
    """One request field. Absent optional fields without a default are left out."""

    name: str
    check: Check
    required: bool = False
    default: Any = _ABSENT
    aliases: tuple[str, ...] = field(default=())


def validate(data: Mapping[str, Any], fields: Sequence[Field], prefix: str = "") -> dict[str, Any]:
    """Check `data` against `fields`, stopping at the first problem like the real gateway.

    Unknown keys are ignored, as real APIs usually do.

    Raises:
        InputError: naming the first missing or malformed field.
    Returns:
        The cleaned values, keyed by canonical field name (aliases resolved).
    """
    cleaned: dict[str, Any] = {}
    for spec in fields:
        value = data.get(spec.name)
        for alias in spec.aliases:
            value = data.get(alias) if value is None else value
        param = prefix + spec.name
        if value is None:
            if spec.required:
                raise missing(param)
            if spec.default is not _ABSENT:
                cleaned[spec.name] = spec.default
            continue
        cleaned[spec.name] = spec.check(value, param)
    return cleaned


def from_query(args: Mapping[str, str], fields: Sequence[Field]) -> dict[str, Any]:
    """Turn query-string text into JSON-like values: integer fields get ints when they parse.

    Text that does not parse is passed through so the `Integer` check rejects it with
    the usual message.
    """
    values: dict[str, Any] = dict(args)
    for spec in fields:
        if not isinstance(spec.check, Integer):
            continue
        for key in (spec.name, *spec.aliases):
            raw = values.get(key)
            if isinstance(raw, str) and _INT_TEXT.fullmatch(raw.strip()):
                values[key] = int(raw)
    return values


def add_months(moment: datetime, months: int) -> datetime:
    """Same day-of-month `months` later, clamped to the month's end (Feb 29 -> Feb 28)."""
    year, month_index = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month_index + 1)[1])
    return moment.replace(year=year, month=month_index + 1, day=day)


def exceeds_months(start: datetime, end: datetime, months: int) -> bool:
    """True when `end` is later than `start` plus `months` calendar months."""
    return end > add_months(start, months)


def utc_text(moment: datetime) -> str:
    """The wire format the API emits: `YYYY-MM-DDTHH:MM:SSZ`, no fractional seconds."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc_text(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def page_of(items: Sequence[Any], page_number: int, page_size: int) -> list[Any]:
    start = (page_number - 1) * page_size
    return list(items[start : start + page_size])


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
