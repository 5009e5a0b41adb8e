"""The one place outbound HTTP happens, and where its outcome is classified.

Every connector talks through an ApiClient: a shared, pooled httpx.Client (one
per worker process) plus the connector's base URL, auth headers and error
reader. Each call is written to the attempt's CallLog without headers, so API
keys and tokens never reach the ledger, the logs or the UI.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from http.cookiejar import Cookie, CookieJar
from typing import Any

import httpx

from engine.errors import TransientStepError, error_for_status, error_for_transport, parse_retry_after
from engine.ratelimit import RequestBudget
from engine.redact import REDACTED, is_secret_name, redact_secret_fields

MAX_LOGGED_BODY = 64 * 1024

ErrorReader = Callable[[httpx.Response], str]


class _KeepNothing(CookieJar):
    """The jar behind NoCookies: `Cookies.set` and friends store nothing either."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None


class NoCookies(httpx.Cookies):
    """Cookies that keep nothing, for the process's shared client.

    httpx keeps every cookie a response sets and sends it with later requests to
    that host. One client serves every run, step and credential of a worker
    process, so a session cookie set by one call would ride along on the calls
    of unrelated runs (and, for an API reached with several credentials, across
    them). Our APIs authenticate with a header on every request; none needs
    cookies. `extract_cookies` returns at once: httpx's would first build a
    urllib request and response around each exchange for the jar to read
    (about 3% of a worker's CPU in `make bench`'s profile).
    """

    def __init__(self) -> None:
        super().__init__(_KeepNothing())

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class SharedClient(httpx.Client):
    """The worker process's one httpx.Client (engine.services), which keeps no cookies (see NoCookies)."""

    _no_cookies = NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("the shared client keeps no cookies (engine.http.NoCookies)")


class CallLog:
    """The HTTP exchanges of one step attempt, as stored in the ledger."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def add(self, **call: Any) -> None:
        self.calls.append(call)


class ApiClient:
    """A connector's client for one attempt."""

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        headers: Mapping[str, str],
        calls: CallLog,
        *,
        read_error: ErrorReader,
        auth_hint: str,
        budget: RequestBudget | None = None,
        deadline: float | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._calls = calls
        self._read_error = read_error
        self._auth_hint = auth_hint
        self._budget = budget
        self._deadline = deadline
        # Credential values must never be written anywhere, even when an API echoes them back: the values of
        # credential headers (by name: Authorization, X-API-Key, key…) and any the connector names itself
        # (a password that only travels base64-encoded, the bare token inside "Bearer <token>").
        credentials = [value for name, value in self._headers.items() if is_secret_name(name) or name.lower() == "key"]
        self._secrets = [value for value in (*credentials, *secrets) if len(value) >= 4]

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, Any] | None = None,
        text: str | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON body (None when empty, the text when not JSON).

        The body is `json_body` (JSON), `form` (application/x-www-form-urlencoded) or
        `text` (text/plain): at most one of them.

        Raises:
            StepDeferred: the shared request budget is spent for longer than a short wait.
            TransientStepError: no response, or 408/429/5xx.
            PermanentStepError: a 3xx or any other 4xx.
        """
        content = _content(json_body, form, text, self._headers)
        timeout = self._remaining_time()
        waited = self._budget.acquire() if self._budget is not None else 0.0
        url = f"{self._base_url}{path}"
        started = time.perf_counter()
        sent = json_body if form is None and text is None else (dict(form) if form is not None else text)
        record: dict[str, Any] = {
            "method": method,
            "url": self.scrub(url),  # a secret URL (e.g. a Slack webhook) is itself a credential
            "params": self.scrub(dict(params or {})),
            "body": self.scrub(_loggable(sent)),
            "waited_ms": round(waited * 1000, 1),  # time spent waiting for the shared request budget
        }
        try:
            response = self._http.request(method, url, params=params, **content, **timeout)
        except httpx.TransportError as exc:
            error = error_for_transport(exc)
            self._calls.add(**record, status=None, response=None, error=self.scrub(error.message), ms=_ms(started))
            raise error from exc
        body = _decode(response)
        self._calls.add(**record, status=response.status_code, response=self.scrub(_loggable(body)), ms=_ms(started))
        if response.status_code >= 300:
            message = self._read_error(response)
            if 300 <= response.status_code < 400:
                message = f"unexpected redirect to {response.headers.get('location', '?')}; check the base URL"
            raise error_for_status(
                response.status_code,
                self.scrub(message),
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                auth_hint=self._auth_hint,
            )
        return body

    def _remaining_time(self) -> dict[str, float]:
        """The step's `timeout:` as an httpx timeout for this call; past it, nothing more is sent."""
        if self._deadline is None:
            return {}
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TransientStepError("the step's timeout ran out before this call was sent")
        return {"timeout": min(remaining, self._http.timeout.read or remaining)}

    def scrub(self, value: Any) -> Any:
        """Replace credentials wherever they appear: under credential-like names, and as this client's values.

        Connectors use it for errors they raise from a body they read (e.g. an envelope's message).
        """
        return self._scrub_values(redact_secret_fields(value))

    def _scrub_values(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {key: self._scrub_values(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._scrub_values(item) for item in value]
        return value


def _content(
    json_body: Any, form: Mapping[str, Any] | None, text: str | None, headers: Mapping[str, str]
) -> dict[str, Any]:
    """httpx keyword arguments for the one body given (and the headers that go with it)."""
    given = [name for name, value in (("json_body", json_body), ("form", form), ("text", text)) if value is not None]
    if len(given) > 1:
        raise ValueError(f"give one request body, not {' and '.join(given)}")
    if form is not None:
        return {"data": dict(form), "headers": dict(headers)}
    if text is not None:
        return {"content": text.encode(), "headers": {**headers, "Content-Type": "text/plain; charset=utf-8"}}
    return {"json": json_body, "headers": dict(headers)}


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text


def _loggable(body: Any) -> Any:
    """The body as stored in the ledger: itself, or a truncated head if it is huge."""
    if body is None:
        return None
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    if len(text) <= MAX_LOGGED_BODY:
        return body
    return {"truncated": True, "chars": len(text), "head": text[:MAX_LOGGED_BODY]}


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
