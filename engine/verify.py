"""Inbound verification: one small verifier per `verify.type`, each failing closed.

Every verifier raises only VerificationError (the web layer answers 401), compares
in constant time, and checks the raw body bytes exactly as received. Malformed
signature headers are VerificationErrors, never 500s. Each scheme has a public
`sign_*` that builds what a correct sender sends, for tests and the docs.

Standard Webhooks is implemented here from its spec (reference §1) rather than
by the `standardwebhooks` package: it is thirty lines, and the package raises
more than one error type on malformed headers (STYLE.md §10).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr

from engine.errors import VerificationError
from schemas.sources import (
    BasicVerify,
    HmacVerify,
    IntuitVerify,
    NoVerify,
    SourceSpec,
    StandardWebhooksVerify,
    TokenVerify,
    XeroVerify,
    whsec_key,
)

Headers = Mapping[str, str]
OUTSIDE_TOLERANCE = "timestamp outside tolerance"


def verify_request(
    source: SourceSpec, body: bytes, headers: Headers, query: Mapping[str, str], *, now: float | None = None
) -> None:
    """Raise VerificationError unless the request is authentic for `source`.

    Args:
        headers: request headers with lower-cased names.
        query: query parameters (first value of each).
        now: the clock, in Unix seconds (tests pass one; default the system clock).
    """
    spec = source.verify
    clock = time.time() if now is None else now
    verifier = _VERIFIERS.get(type(spec))
    if verifier is None:  # a verify type without a verifier must never mean "allow"
        raise VerificationError(f"verify type {spec.type!r} is not supported")
    verifier(spec, body, headers, query, clock)


def _text(secret: SecretStr | str) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret


def _matches_any(given: bytes, secrets: list[bytes]) -> bool:
    # Check every candidate (no early exit) so timing reveals nothing about which matched.
    result = False
    for expected in secrets:
        result |= hmac.compare_digest(given, expected)
    return result


def _b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise VerificationError(f"malformed signature: {what} is not base64") from None


def _required(headers: Headers, name: str, what: str = "signature") -> str:
    value = headers.get(name.lower())
    if not value:
        raise VerificationError(f"missing {what}: the {name} header is required")
    return value


def _check_timestamp(raw: str, header: str, unit_seconds: float, tolerance: int, now: float) -> None:
    digits = raw.strip()
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 16):
        raise VerificationError(f"malformed timestamp: {header} must be an integer")
    sent = int(digits) * unit_seconds
    if abs(now - sent) > tolerance:
        raise VerificationError(f"{OUTSIDE_TOLERANCE}: {header} is more than {tolerance} s from this server's clock")


# --- token and basic ----------------------------------------------------------------------------


def verify_token(spec: TokenVerify, body: bytes, headers: Headers, query: Mapping[str, str], now: float) -> None:
    given = headers.get(spec.header.lower())
    if given is None and spec.query_param:
        given = query.get(spec.query_param)
    if not given:
        where = f"the {spec.header} header" + (f" or the ?{spec.query_param}= parameter" if spec.query_param else "")
        raise VerificationError(f"missing token: send it in {where}")
    if not _matches_any(given.encode(), [_text(s).encode() for s in spec.secret]):
        raise VerificationError("invalid token")


def sign_basic(username: str, password: SecretStr | str) -> str:
    """The Authorization header value of a correct caller."""
    return "Basic " + base64.b64encode(f"{username}:{_text(password)}".encode()).decode()


def verify_basic(spec: BasicVerify, body: bytes, headers: Headers, query: Mapping[str, str], now: float) -> None:
    scheme, _, encoded = _required(headers, "Authorization", "credentials").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise VerificationError("missing credentials: send Authorization: Basic <base64 of user:password>")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (ValueError, binascii.Error):
        raise VerificationError(
            "malformed credentials: Authorization: Basic must carry base64 of user:password"
        ) from None
    username, separator, password = decoded.partition(":")
    user_ok = hmac.compare_digest(username.encode(), spec.username.encode())
    password_ok = _matches_any(password.encode(), [_text(s).encode() for s in spec.password])
    if not (separator and user_ok and password_ok):
        raise VerificationError("invalid username or password")


# --- HMAC of the body (generic, Xero, Intuit) -------------------------------------------------


def _digest(key: bytes, content: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, content, getattr(hashlib, algorithm)).digest()


def _signed_content(spec: HmacVerify, body: bytes, timestamp: str | None) -> bytes:
    head, _, tail = spec.payload_template.partition("{body}")
    stamp = timestamp or ""
    return head.replace("{timestamp}", stamp).encode() + body + tail.replace("{timestamp}", stamp).encode()


def sign_hmac(spec: HmacVerify, body: bytes, secret: SecretStr | str, timestamp: str | None = None) -> str:
    """The signature header value a correct sender would send; used by tests and the docs' examples."""
    digest = _digest(_text(secret).encode(), _signed_content(spec, body, timestamp), spec.algorithm)
    encoded = digest.hex() if spec.encoding == "hex" else base64.b64encode(digest).decode()
    return spec.prefix + encoded


def verify_hmac(spec: HmacVerify, body: bytes, headers: Headers, query: Mapping[str, str], now: float) -> None:
    given = _required(headers, spec.header)
    if spec.prefix:
        if not given.startswith(spec.prefix):
            raise VerificationError(f"malformed signature: {spec.header} must start with {spec.prefix!r}")
        given = given[len(spec.prefix) :]
    try:
        given_digest = bytes.fromhex(given) if spec.encoding == "hex" else base64.b64decode(given, validate=True)
    except (ValueError, binascii.Error):
        raise VerificationError(f"malformed signature: {spec.header} is not {spec.encoding}") from None
    timestamp = None
    if spec.timestamp_header:
        timestamp = _required(headers, spec.timestamp_header, "timestamp")
        unit = 0.001 if spec.timestamp_unit == "ms" else 1.0
        _check_timestamp(timestamp, spec.timestamp_header, unit, spec.tolerance_seconds, now)
    content = _signed_content(spec, body, timestamp)
    expected = [_digest(_text(s).encode(), content, spec.algorithm) for s in spec.secret]
    if not _matches_any(given_digest, expected):
        raise VerificationError("signature does not match the body")


def sign_body_base64(body: bytes, secret: SecretStr | str) -> str:
    """base64(HMAC-SHA256(secret, body)): the x-xero-signature and intuit-signature value."""
    return base64.b64encode(_digest(_text(secret).encode(), body)).decode()


def _verify_body_base64(header: str, secrets: list[SecretStr], body: bytes, headers: Headers) -> None:
    given = _b64decode(_required(headers, header).strip(), header)
    if not _matches_any(given, [_digest(_text(s).encode(), body) for s in secrets]):
        raise VerificationError("signature does not match the body")


def verify_xero(spec: XeroVerify, body: bytes, headers: Headers, query: Mapping[str, str], now: float) -> None:
    # No timestamp is signed: Xero retries one delivery for up to 24 hours with the same signature.
    _verify_body_base64("x-xero-signature", spec.secret, body, headers)


def verify_intuit(spec: IntuitVerify, body: bytes, headers: Headers, query: Mapping[str, str], now: float) -> None:
    _verify_body_base64("intuit-signature", spec.secret, body, headers)


# --- Standard Webhooks ------------------------------------------------------------------------


def _standard_header(headers: Headers, name: str) -> str:
    # Svix, the reference sender, spells the same headers svix-*.
    value = headers.get(f"webhook-{name}") or headers.get(f"svix-{name}")
    if not value:
        raise VerificationError(f"missing {name}: the webhook-{name} header is required")
    return value


def sign_standard(secret: SecretStr | str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature value (`v1,<base64>`) a Standard Webhooks sender would send."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(_digest(whsec_key(_text(secret)), content)).decode()


def verify_standard(
    spec: StandardWebhooksVerify, body: bytes, headers: Headers, query: Mapping[str, str], now: float
) -> None:
    msg_id = _standard_header(headers, "id")
    timestamp = _standard_header(headers, "timestamp")
    signatures = _standard_header(headers, "signature")
    _check_timestamp(timestamp, "webhook-timestamp", 1.0, spec.tolerance_seconds, now)
    content = f"{msg_id}.{timestamp.strip()}.".encode() + body
    expected = [_digest(whsec_key(_text(s)), content) for s in spec.secret]
    matched = False
    for candidate in signatures.split():  # several, space-separated: rotation, or v1 beside v1a
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue  # other schemes (v1a: ed25519) are not ours to check
        try:
            given = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            continue  # one malformed entry must not hide a valid one beside it
        matched |= _matches_any(given, expected)
    if not matched:
        raise VerificationError("no webhook-signature matches the body")


def verify_none(spec: NoVerify, body: bytes, headers: Headers, query: Mapping[str, str], now: float) -> None:
    """`verify: none`, written out in sources.yaml."""


_VERIFIERS: dict[type, Callable[[Any, bytes, Headers, Mapping[str, str], float], None]] = {
    TokenVerify: verify_token,
    HmacVerify: verify_hmac,
    StandardWebhooksVerify: verify_standard,
    XeroVerify: verify_xero,
    IntuitVerify: verify_intuit,
    BasicVerify: verify_basic,
    NoVerify: verify_none,
}
