"""The one place outbound HTTP happens, and where its outcome is classified.

Every connector talks through an ApiClient: a shared, pooled httpx.Client (one
per worker process) plus the connector's base URL, auth headers and error
reader. Each call is written to the attempt's CallLog without headers, so API
keys and tokens never reach the ledger, the logs or the UI.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from engine.errors import error_for_status, error_for_transport, parse_retry_after
from engine.ratelimit import RequestBudget

MAX_LOGGED_BODY = 64 * 1024
REDACTED = "[redacted]"

ErrorReader = Callable[[httpx.Response], str]


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
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._calls = calls
        self._read_error = read_error
        self._auth_hint = auth_hint
        self._budget = budget
        # Credentials travel only in headers; their values must never be written anywhere.
        self._secrets = [value for value in self._headers.values() if len(value) >= 4]

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> Any:
        """Send one request; return the decoded JSON body (None when empty).

        Raises:
            StepDeferred: the shared request budget is spent for longer than a short wait.
            TransientStepError: no response, or 408/429/5xx.
            PermanentStepError: a 3xx or any other 4xx.
        """
        if self._budget is not None:
            self._budget.acquire()
        url = f"{self._base_url}{path}"
        started = time.perf_counter()
        record: dict[str, Any] = {
            "method": method,
            "url": url,
            "params": self._scrub(dict(params or {})),
            "body": self._scrub(_loggable(json_body)),
        }
        try:
            response = self._http.request(method, url, params=params, json=json_body, headers=self._headers)
        except httpx.TransportError as exc:
            error = error_for_transport(exc)
            self._calls.add(**record, status=None, response=None, error=self._scrub(error.message), ms=_ms(started))
            raise error from exc
        body = _decode(response)
        self._calls.add(**record, status=response.status_code, response=self._scrub(_loggable(body)), ms=_ms(started))
        if response.status_code >= 300:
            message = self._read_error(response)
            if 300 <= response.status_code < 400:
                message = f"unexpected redirect to {response.headers.get('location', '?')}; check the base URL"
            raise error_for_status(
                response.status_code,
                self._scrub(message),
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                auth_hint=self._auth_hint,
            )
        return body

    def _scrub(self, value: Any) -> Any:
        """Replace any credential this client sends wherever it appears (an API may echo it back)."""
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {key: self._scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._scrub(item) for item in value]
        return value


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
