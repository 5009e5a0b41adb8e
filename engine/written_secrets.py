"""Secrets written into a workflow file: found before they are committed, stored with every run, and sent.

A workflow's definition is kept with each run and shown in the ops UI, so a
credential in it is a leak. Secrets come from the environment: connectors read
theirs from settings, and `core.http` names entries of CORE_HTTP_SECRETS
(`secret_headers`, `url_secret`). What counts as a credential is decided by
name, with the same rule the redaction of stored calls uses (engine.redact),
plus the header and query names APIs use bare (`key`, `sig`); a value is
written in when it is a non-empty literal (a template's value comes from the
event or an earlier step, not from the file).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from engine.issues import Issue
from engine.redact import is_secret_name
from schemas.workflow import StepSpec, WorkflowSpec

Loc = tuple[str | int, ...]
Locate = Callable[..., Issue]

# Credential names that engine.redact's rule does not catch because they are too short to match in a body.
BARE_NAMES = frozenset({"key", "x-key", "auth", "sig", "access_key", "accesskey", "access-key"})
# Hosts whose webhook URLs are themselves the credential (whoever has the URL can post).
URL_IS_SECRET = re.compile(
    r"^(hooks\.slack\.com|hooks\.zapier\.com|[\w-]+\.webhook\.office\.com|outlook\.office\.com"
    r"|(discord|discordapp)\.com)$",
    re.IGNORECASE,
)
_ENV_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")

CORE_HTTP_HINT = (
    "put the value in CORE_HTTP_SECRETS (an environment variable) and name its entry here instead, "
    "e.g. secret_headers: {Authorization: TEAMS_TOKEN}"
)
URL_HINT = "put the whole URL in CORE_HTTP_SECRETS (an environment variable) and write url_secret: <entry name>"
BODY_HINT = "core.http takes secrets only in headers (secret_headers) or the URL (url_secret), from CORE_HTTP_SECRETS"
STEP_HINT = "the workflow is stored with every run: take the value from the event ({{ event.data.… }}) or leave it out"
VARS_HINT = "vars are stored with every run; for core.http keep them in CORE_HTTP_SECRETS (secret_headers, url_secret)"


def detect_written_secrets(spec: WorkflowSpec, locate: Locate) -> list[Issue]:
    """Credentials written as literals in `with` (errors) and in `vars` (warnings: a name is only a guess)."""
    issues = [
        locate(at, _message(value, "written into the workflow"), hint)
        for loc, step in _steps(spec)
        for at, value, hint in _in_step(step, (*loc, "with"))
    ]
    issues += [
        locate(("vars", name), "this looks like a secret written into the workflow", VARS_HINT).warning()
        for name, value in spec.vars.items()
        if is_secret_name(name) and _written(value)
    ]
    return issues


def _steps(spec: WorkflowSpec) -> Iterator[tuple[Loc, StepSpec]]:
    for index, step in enumerate(spec.steps):
        yield ("steps", index), step
    for index, step in enumerate(spec.on_failure):
        yield ("on_failure", index), step


def _in_step(step: StepSpec, loc: Loc) -> Iterator[tuple[Loc, str, str]]:
    """(place, value, hint) of each credential written in one step's `with`."""
    given = step.with_
    if step.uses == "core.http":
        yield from _core_http(given, loc)
        given = {"json": given.get("json")}  # the rest are checked above, or hold entry names, not secrets
        hint = BODY_HINT
    else:
        hint = STEP_HINT
    for at, value in _credential_entries(given, loc):
        yield at, value, hint


def _core_http(given: dict[str, Any], loc: Loc) -> Iterator[tuple[Loc, str, str]]:
    for block in ("headers", "params"):
        entries = given.get(block)
        if isinstance(entries, dict):
            for name, value in entries.items():
                if (is_secret_name(name) or name.lower() in BARE_NAMES) and _written(value):
                    yield (*loc, block, name), value, CORE_HTTP_HINT if block == "headers" else URL_HINT
    url = given.get("url")
    if isinstance(url, str) and _url_carries_secret(url):
        yield (*loc, "url"), url, URL_HINT


def _credential_entries(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """Literal values under credential-like names, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and is_secret_name(key) and _written(item):
                yield (*loc, key), item
            else:
                yield from _credential_entries(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _credential_entries(item, (*loc, index))


def _url_carries_secret(url: str) -> bool:
    """A password in the URL, a credential-named query parameter with a literal value, or a webhook host."""
    try:
        parts = urlsplit(url)
        password, host = parts.password, parts.hostname or ""
    except ValueError:
        return False  # not a URL check can read; the step's own validation reports it
    if password and _written(password):
        return True
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if (is_secret_name(name) or name.lower() in BARE_NAMES) and _written(value):
            return True
    return bool(URL_IS_SECRET.match(host)) and "{{" not in url and "{%" not in url


def _written(value: Any) -> bool:
    """A non-empty literal: not a template (its value comes from the event or a step, not the file)."""
    return isinstance(value, str) and value.strip() != "" and "{{" not in value and "{%" not in value


def _message(value: str, where: str) -> str:
    if _ENV_REF.search(value):  # ${VAR} is filled in only in sources.yaml
        return f"a secret is {where} as ${{…}}, which a workflow does not fill in: it would be sent as written"
    return f"a secret is {where}"
