"""Built-in operations under `xref.`: a stored mapping between ids in two systems.

Why: an accounting system's alert names *its* customer ("ACME-01"), BigChange
needs *its* contactId (1001). A workflow that creates the contact saves the
pair (`xref.save`); the credit-hold workflow looks it up (`xref.lookup`).
Mappings live in the ledger database, so they survive everything runs do.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine import store
from engine.errors import PermanentStepError
from engine.models import Xref
from engine.operations import ConnectorContext, Operation, Output


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Name = Field(
    min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$", description="Which mapping, e.g. account_to_contact."
)
Key = Field(description="The id in the first system (stored as text).")


class SaveIn(_In):
    """Remember that `key` maps to `value` in mapping `map` (replacing any earlier value)."""

    map: str = Name
    key: str | int = Key
    value: Any = Field(description="The id in the second system (any JSON value).")


class LookupIn(_In):
    """The value stored for `key`; without `default`, a missing key fails the step with a clear message."""

    map: str = Name
    key: str | int = Key
    default: Any = Field(None, description="Returned (with found: false) instead of failing when absent.")


def _context(ctx: ConnectorContext) -> ConnectorContext:
    return ctx


def save(ctx: ConnectorContext, inp: SaveIn) -> Output:
    """Upsert; safe to repeat (a retried save writes the same pair)."""
    key = str(inp.key)
    for _ in range(2):  # a concurrent first insert of the same key: the second try updates
        with ctx.db.session() as session:
            row = session.scalar(select(Xref).where(Xref.map == inp.map, Xref.key == key).with_for_update())
            now = store.utcnow()
            created = row is None
            if row is None:
                row = Xref(map=inp.map, key=key, created_at=now)
                session.add(row)
            row.value, row.updated_at = inp.value, now
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                continue
            return {"map": inp.map, "key": key, "value": inp.value, "created": created}
    raise PermanentStepError(f"xref.save could not store {inp.map}[{key!r}]: it kept changing underneath")


def lookup(ctx: ConnectorContext, inp: LookupIn) -> Output:
    key = str(inp.key)
    with ctx.db.session() as session:
        row = session.scalar(select(Xref).where(Xref.map == inp.map, Xref.key == key))
    if row is not None:
        return {"found": True, "value": row.value}
    if "default" in inp.model_fields_set:  # `default: null` is a default too
        return {"found": False, "value": inp.default}
    raise PermanentStepError(
        f"no {inp.map} mapping for {key!r}: save one first (xref.save), or give this lookup a default"
    )


OPERATIONS = [
    Operation(
        "xref.save",
        SaveIn,
        save,
        _context,
        summary="store an id mapping",
        outputs=frozenset({"map", "key", "value", "created"}),
    ),
    Operation(
        "xref.lookup", LookupIn, lookup, _context, summary="read an id mapping", outputs=frozenset({"found", "value"})
    ),
]
