"""List filters: one value, a list, or the docs' comma-separated text, and how each is sent.

Why two wire forms: the vh3 jobs doc types `contactId` as a string ("Filter by
contact IDs (comma-separated)"), and `resourceId` and `status` as strings too,
while VH3's own client sends `typeId`, `vehicleId`, `reference` and the contact
list's filters as arrays (reference notes §2.8), and no doc shows them at all.
So the fields the docs type as strings are sent as the documented text
(`"12345,678"`), the others as arrays; in a workflow every filter takes whichever
is easiest to write: `12345`, `[12345, 678]` or `"12345,678"` (decision recorded
in docs/connectors/README.md).

Comma-separated text is split for ids and statuses only: a reference may itself
contain a comma, so a reference given as text is one reference.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer

MAX_FILTER_VALUES = 50


def _split_commas(value: Any) -> Any:
    """`"12345, 678"` -> `["12345", "678"]` (pydantic then checks each item); lists pass; a value becomes `[value]`."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")]
        if not any(parts):
            raise ValueError("is empty: give one or more values separated by commas, or leave the filter out")
        if not all(parts):
            raise ValueError(f"{value!r} has an empty value between commas; write e.g. 12345,678")
        return parts
    return value if isinstance(value, (list, tuple)) else [value]


def _one_or_list(value: Any) -> Any:
    """A single value (a number, or text taken whole) becomes a one-item list; lists pass."""
    return value if isinstance(value, (list, tuple)) else [value]


def _comma_text(values: list[Any]) -> str:
    return ",".join(str(value) for value in values)


def _hint(example: str) -> str:
    return f"One value, a list, or comma-separated text such as `{example}`"


def comma_separated(item: Any, *, example: str = "12345,678", max_items: int | None = MAX_FILTER_VALUES) -> Any:
    """A filter the docs type as a (comma-separated) string: sent to BigChange as `"a,b"`."""
    return Annotated[
        list[item],  # type: ignore[valid-type]
        BeforeValidator(_split_commas),
        Field(max_length=max_items, description=f"{_hint(example)}; sent to BigChange as comma-separated text."),
        PlainSerializer(_comma_text, return_type=str),
    ]


def id_list(item: Any, *, max_items: int = MAX_FILTER_VALUES) -> Any:
    """An id filter known only as an array (VH3's client): sent as a JSON array."""
    return Annotated[
        list[item],  # type: ignore[valid-type]
        BeforeValidator(_split_commas),
        Field(max_length=max_items, description=f"{_hint('12345,678')}; sent to BigChange as an array."),
    ]


def text_list(item: Any, *, max_items: int = MAX_FILTER_VALUES) -> Any:
    """A text filter (references): one text or a list, never split at commas; sent as an array."""
    return Annotated[
        list[item],  # type: ignore[valid-type]
        BeforeValidator(_one_or_list),
        Field(
            max_length=max_items,
            description="One value or a list (text is never split at commas); sent to BigChange as an array.",
        ),
    ]
