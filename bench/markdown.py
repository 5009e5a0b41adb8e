"""Markdown building blocks for the report: number formatting, tables, safe lookups in results."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def get(data: Any, *path: Any) -> Any:
    """`data[path[0]][path[1]]…`, or None where any step is missing (old results lack newer keys)."""
    for key in path:
        if data is None:
            return None
        data = data.get(key) if isinstance(data, dict) else (data[key] if len(data) > key else None)
    return data
