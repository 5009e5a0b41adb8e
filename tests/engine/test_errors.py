"""Where HTTP outcomes become Hookflow errors: the retry decision and `Retry-After`."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from engine.errors import (
    HookflowError,
    PermanentStepError,
    RenderError,
    SpecError,
    StepError,
    StepValidationError,
    TransientStepError,
    VerificationError,
    error_for_status,
    error_for_transport,
    parse_retry_after,
)

NOW = datetime(2026, 4, 20, 9, 0, 0, tzinfo=timezone.utc)

# --- The tree ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "parents"),
    [
        (SpecError, (HookflowError,)),
        (RenderError, (HookflowError,)),
        (VerificationError, (HookflowError,)),
        (TransientStepError, (StepError, HookflowError)),
        (PermanentStepError, (StepError, HookflowError)),
        (StepValidationError, (PermanentStepError, StepError, HookflowError)),
    ],
)
def test_the_error_tree(error: type[Exception], parents: tuple[type[Exception], ...]) -> None:
    assert all(issubclass(error, parent) for parent in parents)


def test_the_retry_decision_is_the_first_split_under_step_error() -> None:
    assert not issubclass(TransientStepError, PermanentStepError)
    assert not issubclass(PermanentStepError, TransientStepError)
    assert (TransientStepError.kind, PermanentStepError.kind, StepValidationError.kind) == (
        "transient",
        "permanent",
        "validation",
    )


# --- error_for_status -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 501, 502, 503, 504, 599])
def test_timeouts_rate_limits_and_5xx_are_transient(status: int) -> None:
    error = error_for_status(status, "busy")

    assert isinstance(error, TransientStepError)
    assert error.status == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 413, 422])
def test_other_4xx_are_permanent(status: int) -> None:
    error = error_for_status(status, "no")

    assert type(error) is PermanentStepError
    assert error.status == status
    assert error.outcome_unknown is False


@pytest.mark.parametrize(("status", "outcome_unknown"), [(408, False), (429, False), (500, True), (503, True)])
def test_only_a_5xx_leaves_the_outcome_unknown(status: int, outcome_unknown: bool) -> None:
    # A 5xx can come after the server committed the change; 408 and 429 mean it did nothing.
    assert error_for_status(status, "x").outcome_unknown is outcome_unknown


def test_the_message_names_the_status_and_the_apis_words() -> None:
    error = error_for_status(422, "description is required")

    assert error.message == "HTTP 422: description is required"
    assert str(error) == error.message


def test_a_transient_error_carries_retry_after() -> None:
    error = error_for_status(429, "slow down", retry_after=7.0)

    assert isinstance(error, TransientStepError)
    assert error.retry_after == 7.0


@pytest.mark.parametrize("status", [401, 403])
def test_an_auth_failure_carries_the_connectors_hint(status: int) -> None:
    error = error_for_status(status, "Invalid key", auth_hint="check BIGCHANGE_API_KEY")

    assert error.message == f"HTTP {status}: Invalid key (check BIGCHANGE_API_KEY)"


@pytest.mark.parametrize("status", [400, 404, 422, 429, 500])
def test_the_auth_hint_is_only_for_401_and_403(status: int) -> None:
    assert "BIGCHANGE_API_KEY" not in error_for_status(status, "x", auth_hint="check BIGCHANGE_API_KEY").message


def test_an_auth_failure_without_a_hint_is_still_permanent() -> None:
    error = error_for_status(401, "Invalid key")

    assert isinstance(error, PermanentStepError)
    assert error.message == "HTTP 401: Invalid key"


# --- error_for_transport ----------------------------------------------------------------------

REQUEST = httpx.Request("POST", "https://bc.test/contacts/create")


@pytest.mark.parametrize(
    ("exc_type", "outcome_unknown"),
    [
        # Never reached the server: retrying cannot duplicate anything.
        (httpx.ConnectError, False),
        (httpx.ConnectTimeout, False),
        (httpx.PoolTimeout, False),
        (httpx.UnsupportedProtocol, False),
        # Sent, then lost: the server may have acted.
        (httpx.ReadTimeout, True),
        (httpx.WriteTimeout, True),
        (httpx.ReadError, True),
        (httpx.WriteError, True),
        (httpx.RemoteProtocolError, True),
    ],
)
def test_a_transport_failure_is_transient_and_unknown_once_sent(
    exc_type: type[httpx.TransportError], outcome_unknown: bool
) -> None:
    error = error_for_transport(exc_type("boom", request=REQUEST))

    assert isinstance(error, TransientStepError)
    assert error.outcome_unknown is outcome_unknown
    assert error.status is None
    assert error.retry_after is None


def test_a_transport_failure_message_names_the_exception() -> None:
    assert error_for_transport(httpx.ReadTimeout("timed out", request=REQUEST)).message == "ReadTimeout: timed out"


def test_a_transport_failure_without_text_still_says_what_happened() -> None:
    assert error_for_transport(httpx.ConnectError("", request=REQUEST)).message == "ConnectError: ConnectError"


# --- parse_retry_after ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("120", 120.0),
        ("Mon, 20 Apr 2026 09:00:30 GMT", 30.0),  # IMF-fixdate
        ("Monday, 20-Apr-26 09:00:30 GMT", 30.0),  # obsolete RFC 850
        ("Mon Apr 20 09:00:30 2026", 30.0),  # obsolete asctime, read as UTC
        ("Mon, 20 Apr 2026 10:01:00 +0100", 60.0),  # an offset is honoured
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header: str, seconds: float) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_an_http_date_in_the_past_means_retry_now() -> None:
    assert parse_retry_after("Mon, 20 Apr 2026 08:00:00 GMT", now=NOW) == 0.0


@pytest.mark.parametrize("header", [None, "", "   ", "soon", "-1", "1.5", "7 seconds", "Mon, 32 Foo 2026"])
def test_an_absent_or_garbled_retry_after_is_none(header: str | None) -> None:
    assert parse_retry_after(header, now=NOW) is None


@pytest.mark.parametrize("header", ["\u00b2", "\u00b9\u00b2"])
def test_a_retry_after_of_non_ascii_digits_is_garbled_not_a_crash(header: str) -> None:
    assert parse_retry_after(header, now=NOW) is None
