"""Lists beyond one page: `paginate: all` and `split_windows: true`.

Why here and not in the workflow: BigChange caps a page at 1000 items and a
creation-date window at 12 months, and says only `pageItemCount` (items on this
page) — no total. Following pages means: ask page after page until one comes
back short (fewer than pageSize), as VH3's own client does (reference notes
§2.4). Every such loop is bounded by `max_items`, and the output says
`truncated: true` when that bound, not the data, ended it.

Items are deduplicated by `id`: records created while we page can shift an item
onto the next page, and consecutive windows share their boundary instant (so that
nothing created exactly on it is missed, whatever precision BigChange keeps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.http import ApiClient
from engine.operations import Output
from handlers.bigchange.client import as_list, send
from schemas import bigchange as m


@dataclass
class Collected:
    """Items gathered across pages and windows, up to `limit`."""

    limit: int
    items: list[Any] = field(default_factory=list)
    seen: set[Any] = field(default_factory=set)
    pages: int = 0
    truncated: bool = False

    @property
    def full(self) -> bool:
        return len(self.items) >= self.limit

    def add(self, page: list[Any]) -> int:
        """Keep the items not seen before, up to the limit; return how many were new."""
        added = 0
        for item in page:
            key = item.get("id") if isinstance(item, dict) else None
            if isinstance(key, (int, str)):
                if key in self.seen:
                    continue
                self.seen.add(key)
            if self.full:
                self.truncated = True
                break
            self.items.append(item)
            added += 1
        return added

    def output(self, **extra: Any) -> Output:
        return {
            "items": self.items,
            "pageItemCount": len(self.items),
            "pages": self.pages,
            "truncated": self.truncated,
            **extra,
        }


def follow_pages(api: ApiClient, method: str, path: str, payload: dict[str, Any], collected: Collected) -> None:
    """Ask for pages from the payload's pageNumber (default 1) until a short page or the limit.

    pageSize defaults to the maximum, 1000, to make the fewest calls.
    """
    size = payload.get("pageSize", m.MAX_PAGE_SIZE)
    number = payload.get("pageNumber", 1)
    while True:
        page = as_list(send(api, method, path, {**payload, "pageNumber": number, "pageSize": size}))
        collected.pages += 1
        added = collected.add(page["items"])
        if not page["items"] or page["pageItemCount"] < size:
            return  # the last page
        if collected.full:
            collected.truncated = True  # a full page at the limit: there may be more
            return
        if added == 0:
            return  # a full page of items already seen: the API is not advancing; stop rather than loop
        number += 1


def windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Consecutive windows covering [start, end], each at most 12 calendar months.

    Each bound is counted from `start` (start + 12, + 24 … months) rather than from
    the previous bound, so month-end clamping (29 Feb -> 28 Feb) never accumulates.
    """
    spans = []
    low, step = start, 1
    while True:
        high = m.add_months(start, 12 * step)
        if high >= end:
            spans.append((low, end))
            return spans
        spans.append((low, high))
        low, step = high, step + 1


def list_call(method: str, path: str) -> Callable[[ApiClient, m.Paged], Output]:
    """The call of a list operation: one page, or every page (of every window)."""

    def call(api: ApiClient, inp: m.Paged) -> Output:
        payload = m.api_payload(inp)
        split = isinstance(inp, m.Window) and inp.split_windows
        if inp.paginate == "page" and not split:
            return as_list(send(api, method, path, payload))
        collected = Collected(inp.max_items)
        spans = _spans(inp) if split else [None]
        for index, span in enumerate(spans):
            body = payload if span is None else {**payload, **_bounds(*span)}
            follow_pages(api, method, path, body, collected)
            if collected.full:
                collected.truncated = collected.truncated or index < len(spans) - 1
                break
        return collected.output(**({"windows": len(spans)} if split else {}))

    return call


def _bounds(start: datetime, end: datetime) -> dict[str, str]:
    return {"createdAtFrom": m.utc_text(start), "createdAtTo": m.utc_text(end)}


def _spans(inp: m.Paged) -> list[tuple[datetime, datetime] | None]:
    """The windows to query, newest first when the list is sorted descending."""
    start, end = getattr(inp, "createdAtFrom", None), getattr(inp, "createdAtTo", None)
    if start is None or end is None:
        return [None]  # an open window has no 12-month limit to split for
    spans: list[tuple[datetime, datetime] | None] = list(windows(start, end))
    return spans[::-1] if inp.direction == "descending" else spans
