"""Hookflow's error tree. The first split under StepError is the retry decision.

    HookflowError
    ├── SpecError                 a workflow or source definition is wrong
    ├── RenderError               a template failed (undefined name, bad syntax, sandbox refusal)
    ├── VerificationError         an inbound caller failed verification -> 401
    ├── StepDeferred              not an error: the step should run later (e.g. the request budget is spent)
    └── StepError                 a step could not complete
        ├── TransientStepError    worth retrying (timeouts, 408, 429, 5xx); carries retry_after
        └── PermanentStepError    retrying cannot help (other 4xx)
            └── StepValidationError   the step's input is wrong (template or model validation)

HTTP outcomes are mapped to this tree exactly once, where the response is read
(`error_for_status`, `error_for_transport`), so nothing downstream inspects
status codes or httpx exceptions.
"""

from __future__ import annotations

import email.utils
from datetime import datetime, timezone

import httpx

# Transport failures that prove the request never reached the server: retrying
# them cannot duplicate a create, so no reconciliation is needed afterwards.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class HookflowError(Exception):
    """Root of every error Hookflow raises on purpose."""


class SpecError(HookflowError):
    """A workflow or source definition cannot be used as written."""


class RenderError(HookflowError):
    """A template could not be rendered; the message names the template and the cause."""


class VerificationError(HookflowError):
    """An inbound request failed its source's verification; the web layer answers 401."""


class StepDeferred(HookflowError):
    """The step did not run and should run again after `delay` seconds; no attempt is used up.

    Raised before any request is sent (e.g. the shared request budget is spent),
    so there is nothing to reconcile.
    """

    def __init__(self, reason: str, *, delay: float, jitter: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay
        # Spread throttled steps out; a deliberate wait (core.wait) must keep its exact time.
        self.jitter = jitter


class StepError(HookflowError):
    """A step failed. `kind` is what the ledger records as the error class."""

    kind = "step"

    def __init__(self, message: str, *, status: int | None = None, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        # True when the remote side may have acted on the request anyway (read
        # timeout, 5xx, dropped connection, a create answered without an id): a
        # later attempt of a create must first look for what this one made.
        self.outcome_unknown = outcome_unknown


class TransientStepError(StepError):
    """Worth retrying later, after `retry_after` seconds if the server said so."""

    kind = "transient"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message, status=status, outcome_unknown=outcome_unknown)
        self.retry_after = retry_after


class PermanentStepError(StepError):
    """Retrying the same request cannot succeed; the run fails unless on_error says continue."""

    kind = "permanent"


class StepValidationError(PermanentStepError):
    """The step's rendered input does not satisfy the operation's input model."""

    kind = "validation"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent or garbled."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() alone accepts '²', which float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def error_for_status(
    status: int,
    message: str,
    *,
    retry_after: float | None = None,
    auth_hint: str | None = None,
) -> StepError:
    """Classify an HTTP error status: 408, 429 and 5xx are transient; 3xx and other 4xx permanent.

    A redirect is an error, not a success: the shared client does not follow
    redirects (a POST must not silently become a GET elsewhere), so a 3xx means
    the request was not carried out, usually because the base URL is wrong.
    """
    text = f"HTTP {status}: {message}"
    if status in (408, 429) or status >= 500:
        # A 5xx may come after the server committed the change; 408/429 mean it did nothing.
        return TransientStepError(text, status=status, retry_after=retry_after, outcome_unknown=status >= 500)
    if status in (401, 403) and auth_hint:
        text = f"{text} ({auth_hint})"
    return PermanentStepError(text, status=status)


def error_for_transport(exc: httpx.TransportError) -> TransientStepError:
    """Classify a failure to get any response at all; always transient."""
    sent = not isinstance(exc, _NOT_SENT)
    detail = str(exc) or type(exc).__name__
    return TransientStepError(f"{type(exc).__name__}: {detail}", outcome_unknown=sent)
