"""Notes that keep an additiv contact create single across attempts.

A contact create with an external connection is three calls: look up, create, link.
If the link fails (or the worker dies) after the create, the contact exists but
cannot be found by its connection, and a plain retry would create a second one.
So between the create and the link the new contact's id is noted in Redis under
the connection, and the retry links the noted contact instead of creating another.

Why Redis and not the ledger: the note must be written before the link call and
seen by whichever worker runs the retry, including after this worker has died;
the ledger records an attempt only when it ends. The note is a hint: if Redis
loses it (a flush between the failed link and the retry), the retry behaves as
it would without it. Redis errors are logged and otherwise ignored for the same
reason: the step must not fail because a hint could not be kept.
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

    def note(self, link: ExternalConnection, contact: dict[str, Any]) -> None:
        if self._redis is None:
            return
        try:
            self._redis.set(self.key(link), json.dumps(contact), ex=NOTE_TTL_SECONDS)
        except RedisError as exc:
            log.warning("additiv: could not note contact %s for %s (%s)", contact.get("id"), link.system, exc)

    def noted(self, link: ExternalConnection) -> dict[str, Any] | None:
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
            contact = json.loads(raw)
        except ValueError:
            return None
        return contact if isinstance(contact, dict) and contact.get("id") is not None else None

    def forget(self, link: ExternalConnection) -> None:
        if self._redis is None:
            return
        try:
            self._redis.delete(self.key(link))
        except RedisError as exc:
            log.warning("additiv: could not drop the note for %s (%s)", link.system, exc)
