"""Notes that keep an additiv contact create single across attempts.

A contact create with an external connection is three calls: look up, create, link.
additiv can find a contact only by an external connection (not by username or
details), so between the create and the link the contact is findable by nothing.
A note in Redis, keyed by the connection, bridges that gap for the next attempt:

- before the create: "creating", with the username and the step (run:step) that
  writes it. If the note is still there at the next attempt, the earlier create's
  outcome is unknown (its answer was lost, or the worker died): a UsernameNotUnique
  then almost certainly means that create landed (handlers.additiv.contacts);
- after the create: the new contact's id, so a retry after a failed link links the
  noted contact instead of creating another;
- after the link: nothing (the note is dropped).

Why Redis and not the ledger: the note must be written before a call and seen by
whichever worker runs the retry, including after this worker has died; the ledger
records an attempt only when it ends. The note is a hint: if Redis loses it (a flush
between attempts), the retry behaves as it would without it. Redis errors are logged
and otherwise ignored for the same reason: the step must not fail because a hint
could not be kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from schemas.additiv import ExternalConnection

log = logging.getLogger(__name__)

NOTE_TTL_SECONDS = 30 * 24 * 3600  # longer than any retry schedule or an operator's manual retry
KEY_PREFIX = "hookflow:additiv:unlinked:"


class LinkNotes:
    """Notes per (tenant, system, externalId); the tenant is the base URL, so sandboxes never collide."""

    def __init__(self, redis: Redis | None, tenant: str) -> None:
        self._redis = redis
        self._tenant = tenant

    def key(self, link: ExternalConnection) -> str:
        digest = hashlib.sha256("\0".join((self._tenant, link.system, link.externalId)).encode()).hexdigest()
        return KEY_PREFIX + digest

    def creating(self, link: ExternalConnection, username: str | None, owner: str) -> None:
        """Before the create: an attempt of `owner` (run:step) is creating a contact for `link`."""
        self._write(link, {"creating": True, "username": username, "owner": owner})

    def pending(self, link: ExternalConnection) -> dict[str, Any] | None:
        """The "creating" note of a create whose outcome nobody has learnt, if there is one."""
        note = self.read(link)
        return note if note is not None and note.get("creating") is True else None

    def note(self, link: ExternalConnection, contact: dict[str, Any]) -> None:
        """After the create: the contact made for `link`, to be linked."""
        self._write(link, contact)

    def noted(self, link: ExternalConnection) -> dict[str, Any] | None:
        """The contact created for `link` but not yet linked, if one was noted."""
        note = self.read(link)
        return note if note is not None and note.get("id") is not None else None

    def forget(self, link: ExternalConnection) -> None:
        if self._redis is None:
            return
        try:
            self._redis.delete(self.key(link))
        except RedisError as exc:
            log.warning("additiv: could not drop the note for %s (%s)", link.system, exc)

    def _write(self, link: ExternalConnection, note: dict[str, Any]) -> None:
        if self._redis is None:
            return
        try:
            self._redis.set(self.key(link), json.dumps(note), ex=NOTE_TTL_SECONDS)
        except RedisError as exc:
            log.warning("additiv: could not write the note for %s (%s)", link.system, exc)

    def read(self, link: ExternalConnection) -> dict[str, Any] | None:
        """Whatever note there is for `link` ("creating", or a contact to link), or None."""
        if self._redis is None:
            return None
        try:
            raw = self._redis.get(self.key(link))
        except RedisError as exc:
            log.warning("additiv: could not read the note for %s (%s)", link.system, exc)
            return None
        if raw is None:
            return None
        try:
            note = json.loads(raw)
        except ValueError:
            return None
        return note if isinstance(note, dict) else None
