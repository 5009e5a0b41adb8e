"""BigChange's legacy web service (JobWatch services.ashx).

Auth: HTTP Basic (BIGCHANGE_WEBSERVICE_USERNAME / _PASSWORD) plus a header named
`key` (BIGCHANGE_WEBSERVICE_KEY), the documented form (reference notes §5.1);
credentials travel only in headers, so the call log, which records no headers,
never holds them. URL: BIGCHANGE_WEBSERVICE_URL (the full services.ashx URL).
Docs: shared/api-docs/bigchange-webservice-contactsave.txt and
shared/reference/bigchange-api.md §5. Calls share the request budget settings of
the vh3 connector (BIGCHANGE_REQUESTS_PER_SECOND, BIGCHANGE_BURST) in a bucket of
their own, keyed by the web service key.

Every answer is HTTP 200 with `{"Code": n, "Result": …}`: Code 0 is success
(`Result` is the contact's id; the output is `{id}`); any other Code is a
permanent failure carrying `Result` as the message. The reference's claim that
Code 3 is transient is UNCONFIRMED, and retrying a save whose meaning is unknown
could repeat it, so it fails like the rest (retry the run by hand if it was).
HTTP errors are classified as for every connector (401/403 point at the
credentials, 5xx and timeouts are retried).

Phone numbers are sent as BigChange requires, international without spaces:
`07932 883112` becomes `+447932883112`, a national number being read in the
step's `phone_region` (default GB); a number that is not valid there is a
validation error, never sent.

A save retried after an attempt whose outcome is unknown is sent again with
`ContactReplaceSameRef=1`, so BigChange replaces the contact that attempt may
have made (same ContactReference) instead of adding a second. Without a
ContactReference (and without ContactId, which makes the save an update anyway)
it cannot be reconciled: give every save a reference.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

from engine.errors import PermanentStepError
from engine.http import ApiClient
from engine.inspect import output_fields
from engine.operations import ConnectorContext, Operation, Output
from engine.ratelimit import RateLimit, RequestBudget
from handlers.bigchange import client as vh3
from schemas.bigchange_webservice import ContactSave

AUTH_HINT = "check BIGCHANGE_WEBSERVICE_USERNAME, BIGCHANGE_WEBSERVICE_PASSWORD and BIGCHANGE_WEBSERVICE_KEY"
# BigChange's word for "this user may not do that" (reference notes §5.2).
NO_RIGHT = "misc_noRight"


def connect(ctx: ConnectorContext) -> ApiClient:
    """The attempt's client, authenticating with Basic auth and the `key` header.

    The password only travels base64-encoded inside the Basic header, so it is
    named as a secret too: an echo of it is scrubbed like the header values.
    """
    settings = ctx.settings
    password, key = settings.bigchange_webservice_password, settings.bigchange_webservice_key
    missing = [
        name
        for name, value in (
            ("BIGCHANGE_WEBSERVICE_USERNAME", settings.bigchange_webservice_username),
            ("BIGCHANGE_WEBSERVICE_PASSWORD", password.get_secret_value() if password else None),
            ("BIGCHANGE_WEBSERVICE_KEY", key.get_secret_value() if key else None),
        )
        if not value
    ]
    if missing or password is None or key is None:
        raise PermanentStepError(f"{', '.join(missing)} not set; the legacy web service needs all three")
    basic = base64.b64encode(f"{settings.bigchange_webservice_username}:{password.get_secret_value()}".encode())
    budget = None
    if settings.bigchange_requests_per_second > 0:
        limit = RateLimit(
            settings.bigchange_requests_per_second, settings.bigchange_burst, settings.rate_limit_max_wait_seconds
        )
        budget = RequestBudget(ctx.redis, "bigchange-webservice", key.get_secret_value(), limit)
    return ApiClient(
        ctx.http,
        settings.bigchange_webservice_url,
        {"Authorization": f"Basic {basic.decode()}", "key": key.get_secret_value()},
        ctx.calls,
        read_error=read_error,
        auth_hint=AUTH_HINT,
        budget=budget,
        deadline=ctx.deadline,
        secrets=(password.get_secret_value(),),
    )


def read_error(response: httpx.Response) -> str:
    """The envelope's `Result` text when an HTTP error carries one, else what the vh3 reader finds."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("Result"), str) and body["Result"]:
        return body["Result"]
    return vh3.read_error(response)


def _save(api: ApiClient, params: dict[str, str]) -> Output:
    body = api.request("GET", "", params={"action": "ContactSave", **params})
    return saved_id(api.scrub(body))  # its message may echo a credential; the id never is one


def contact_save(api: ApiClient, inp: ContactSave) -> Output:
    return _save(api, inp.query())


def reconcile_contact_save(api: ApiClient, inp: ContactSave) -> Output | None:
    """Save again, replacing whatever has the same reference: the contact a lost attempt made, if any."""
    if not inp.ContactReference or inp.ContactId is not None:
        return None  # nothing to match on (or an update by id, which is safe to repeat as it is)
    return _save(api, {**inp.query(), "ContactReplaceSameRef": "1"})


def saved_id(body: Any) -> Output:
    """The contact id from the `{Code, Result}` envelope, or the failure it reports."""
    if not isinstance(body, dict) or "Code" not in body:
        # HTTP 200 but not the envelope (a login page, a proxy's answer): we cannot tell whether it saved.
        raise PermanentStepError(f"the web service answered without a Code: {str(body)[:300]}", outcome_unknown=True)
    code, result = body.get("Code"), body.get("Result")
    if code != 0:
        message = f"ContactSave failed (Code {code}): {result}"
        if result == NO_RIGHT:
            message += " (the web service user lacks the right to save contacts; check its BigChange permissions)"
        raise PermanentStepError(message)
    if isinstance(result, bool) or not isinstance(result, (int, str)) or not str(result).strip().isdigit():
        raise PermanentStepError(f"ContactSave succeeded without a contact id: {result!r}", outcome_unknown=True)
    return {"id": int(result)}


OPERATIONS = [
    Operation(
        name="bigchange_webservice.contact_save",
        input=ContactSave,
        call=contact_save,
        connect=connect,
        find_existing=reconcile_contact_save,
        natural_key=("ContactReference",),
        summary="GET services.ashx?action=ContactSave",
        outputs=output_fields("id"),  # `Result` is the contact's id and nothing else (reference notes §5.3)
    )
]
