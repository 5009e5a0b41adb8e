"""Stateful simulator of the BigChange "vh3 connect" REST proxy.

Follows shared/api-docs/bigchange-vh3-contacts.txt, bigchange-vh3-jobs.txt and
shared/reference/bigchange-api.md sections 2-3: every documented path and method,
`X-API-Key` auth, typed validation (required fields, enums, pageSize <= 1000, the
12-month window, HH:MM times, ISO 8601 UTC), and both error shapes the proxy is
known to mix, so the connector has to cope with each:

* gateway errors (auth, input): `{"code": "ERROR_CODE_INPUT_ERROR", "message": ..., "payload": {"param": ...}}`
* BigChange errors, RFC 7807: 404 for an unknown referenced record, 422 for business rules.

List envelopes vary on purpose too: `/jobs/list` wraps its page in `{"result": {...}}`,
the other lists answer `{"items": [...], "pageItemCount": n}` bare.

State hangs together: a job needs an existing contact that is not on stop, an
existing job type and (if given) job group; constraints and stock lines belong to
a job and show on it; stop status shows on the contact; site access hours belong
to a contact; job groups list their jobs; jobs and groups keep a status history.

Decisions where the docs are silent (the reference marks these UNCONFIRMED):
* `/jobs/constraints/create` requires `type` (the docs example sends only `jobId`,
  which the reference expects to fail for real), `constraintAt` for the date types
  and `entityId` for the entity types.
* `/contacts/unstop` clears both stop flavours; `contactAndChildren` reaches direct children.
* `null` counts as an absent field, so an edit cannot clear a field.
* Routing precedes auth: an unknown path is 404 with or without a key; a wrong method is 405.
* Names and references are not unique (contacts, contact groups, job groups).
* Lifecycle and stock rules: see `jobs`, `stock` and `job_groups`. Resource and vehicle
  groups, skills and attributes are not modelled; their ids are accepted unchecked.

Operator routes under `/__sandbox__/` need no key: `GET state`, `GET|DELETE calls`
(each call with `at`, its arrival time in epoch seconds), `POST reset`, plus
`faults` and `latency` from `sandbox.faults`.

Modules: `state` (tenant, seed, error shapes), `contracts` (request fields),
`contacts`, `jobs`, `stock`, `job_groups` (handlers), `app` (Flask). To add an
endpoint: a contract in `contracts`, a handler `(sim, params) -> (status, body)`
and a row in `app.ENDPOINTS`.
"""

from __future__ import annotations

from sandbox.bigchange.app import ENDPOINTS, EXTENSION_KEY, create_app

__all__ = ["ENDPOINTS", "EXTENSION_KEY", "create_app"]
