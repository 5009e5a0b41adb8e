"""Inbound verification: one small verifier per `verify.type`, each failing closed.

Every verifier raises only VerificationError (the web layer answers 401), compares
in constant time, and checks the raw body bytes exactly as received. Malformed
signature headers are VerificationErrors, never 500s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping

from pydantic import SecretStr

from engine.errors import VerificationError
from schemas.sources import HmacVerify, NoVerify, SourceSpec, TokenVerify

Verifier = Callable[[object, bytes, Mapping[str, str], Mapping[str, str]], None]


def verify_request(source: SourceSpec, body: bytes, headers: Mapping[str, str], query: Mapping[str, str]) -> None:
    """Raise VerificationError unless the request is authentic for `source`.

    Args:
        headers: request headers with lower-cased names.
        query: query parameters (first value of each).
    """
    spec = source.verify
    if isinstance(spec, TokenVerify):
        verify_token(spec, headers, query)
    elif isinstance(spec, HmacVerify):
        verify_hmac(spec, body, headers)
    elif not isinstance(spec, NoVerify):  # a verify type without a verifier must never mean "allow"
        raise VerificationError(f"verify type {spec.type!r} is not supported")


def _matches_any(given: bytes, secrets: list[bytes]) -> bool:
    # Check every candidate (no early exit) so timing reveals nothing about which matched.
    result = False
    for expected in secrets:
        result |= hmac.compare_digest(given, expected)
    return result


def verify_token(spec: TokenVerify, headers: Mapping[str, str], query: Mapping[str, str]) -> None:
    given = headers.get(spec.header.lower())
    if given is None and spec.query_param:
        given = query.get(spec.query_param)
    if not given:
        where = f"the {spec.header} header" + (f" or the ?{spec.query_param}= parameter" if spec.query_param else "")
        raise VerificationError(f"missing token: send it in {where}")
    if not _matches_any(given.encode(), [s.get_secret_value().encode() for s in spec.secret]):
        raise VerificationError("invalid token")


def sign_hmac(spec: HmacVerify, body: bytes, secret: SecretStr | str) -> str:
    """The header value a correct sender would send; used by tests and the docs' examples."""
    key = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    digest = hmac.new(key.encode(), body, getattr(hashlib, spec.algorithm)).digest()
    encoded = digest.hex() if spec.encoding == "hex" else base64.b64encode(digest).decode()
    return spec.prefix + encoded


def verify_hmac(spec: HmacVerify, body: bytes, headers: Mapping[str, str]) -> None:
    given = headers.get(spec.header.lower())
    if not given:
        raise VerificationError(f"missing signature: the {spec.header} header is required")
    if spec.prefix:
        if not given.startswith(spec.prefix):
            raise VerificationError(f"malformed signature: {spec.header} must start with {spec.prefix!r}")
        given = given[len(spec.prefix) :]
    try:
        given_digest = bytes.fromhex(given) if spec.encoding == "hex" else base64.b64decode(given, validate=True)
    except (ValueError, binascii.Error):
        raise VerificationError(f"malformed signature: {spec.header} is not {spec.encoding}") from None
    expected = [
        hmac.new(s.get_secret_value().encode(), body, getattr(hashlib, spec.algorithm)).digest() for s in spec.secret
    ]
    if not _matches_any(given_digest, expected):
        raise VerificationError("signature does not match the body")
