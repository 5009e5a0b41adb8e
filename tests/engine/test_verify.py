"""Inbound verification: token and HMAC, constant-time, failing closed on anything malformed."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from engine.errors import VerificationError
from engine.verify import sign_hmac, verify_request
from schemas.sources import HmacVerify, SourceSpec

BODY = b'{"id": "alert-1", "event": "credit_limit.exceeded"}'


def token_source(*secrets: str, **verify: object) -> SourceSpec:
    return SourceSpec.model_validate({"verify": {"type": "token", "secret": list(secrets), **verify}})


def hmac_source(*secrets: str, **verify: object) -> SourceSpec:
    spec = {"type": "hmac", "header": "X-Signature", "prefix": "sha256=", "secret": list(secrets), **verify}
    return SourceSpec.model_validate({"verify": spec})


class TestToken:
    def test_accepts_the_token_in_its_header(self) -> None:
        verify_request(token_source("s3cret"), BODY, {"x-hook-token": "s3cret"}, {})

    def test_accepts_the_token_as_a_query_parameter_for_senders_without_headers(self) -> None:
        verify_request(token_source("s3cret"), BODY, {}, {"token": "s3cret"})

    def test_any_of_several_secrets_is_accepted_for_rotation(self) -> None:
        source = token_source("old", "new")
        verify_request(source, BODY, {"x-hook-token": "old"}, {})
        verify_request(source, BODY, {"x-hook-token": "new"}, {})

    @pytest.mark.parametrize(
        ("headers", "query", "message"),
        [
            ({}, {}, "missing token"),
            ({"x-hook-token": ""}, {}, "missing token"),
            ({"x-hook-token": "wrong"}, {}, "invalid token"),
            ({}, {"token": "s3cre"}, "invalid token"),
            ({"x-hook-token": "s3cret-and-more"}, {}, "invalid token"),
        ],
    )
    def test_refuses(self, headers: dict[str, str], query: dict[str, str], message: str) -> None:
        with pytest.raises(VerificationError, match=message):
            verify_request(token_source("s3cret"), BODY, headers, query)

    def test_the_query_parameter_can_be_switched_off(self) -> None:
        with pytest.raises(VerificationError, match="missing token"):
            verify_request(token_source("s3cret", query_param=None), BODY, {}, {"token": "s3cret"})

    def test_an_empty_secret_cannot_be_configured(self) -> None:
        with pytest.raises(ValueError, match="empty secret"):
            token_source("")


class TestHmac:
    def test_accepts_a_correct_signature(self) -> None:
        expected = "sha256=" + hmac.new(b"k3y", BODY, hashlib.sha256).hexdigest()
        source = hmac_source("k3y")
        assert sign_hmac(source.verify, BODY, "k3y") == expected  # type: ignore[arg-type]
        verify_request(source, BODY, {"x-signature": expected}, {})

    @pytest.mark.parametrize(
        ("algorithm", "encoding"), [("sha1", "hex"), ("sha256", "base64"), ("sha512", "hex"), ("sha512", "base64")]
    )
    def test_algorithm_and_encoding_are_configurable(self, algorithm: str, encoding: str) -> None:
        source = hmac_source("k3y", algorithm=algorithm, encoding=encoding, prefix="")
        digest = hmac.new(b"k3y", BODY, algorithm).digest()
        given = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
        verify_request(source, BODY, {"x-signature": given}, {})

    def test_rotation_accepts_any_configured_secret(self) -> None:
        source = hmac_source("old", "new")
        assert isinstance(source.verify, HmacVerify)
        for secret in ("old", "new"):
            verify_request(source, BODY, {"x-signature": sign_hmac(source.verify, BODY, secret)}, {})

    def test_a_tampered_body_is_refused(self) -> None:
        source = hmac_source("k3y")
        signature = sign_hmac(source.verify, BODY, "k3y")  # type: ignore[arg-type]
        with pytest.raises(VerificationError, match="does not match"):
            verify_request(source, BODY.replace(b"alert-1", b"alert-2"), {"x-signature": signature}, {})

    def test_the_wrong_secret_is_refused(self) -> None:
        source = hmac_source("k3y")
        signature = sign_hmac(source.verify, BODY, "other")  # type: ignore[arg-type]
        with pytest.raises(VerificationError, match="does not match"):
            verify_request(source, BODY, {"x-signature": signature}, {})

    @pytest.mark.parametrize(
        ("header", "message"),
        [
            (None, "missing signature"),
            ("", "missing signature"),
            ("md5=abcd", "must start with 'sha256='"),
            ("sha256=not-hex!", "not hex"),
            ("sha256=abc", "not hex"),  # odd length
        ],
    )
    def test_malformed_signatures_are_401_material_never_crashes(self, header: str | None, message: str) -> None:
        headers = {} if header is None else {"x-signature": header}
        with pytest.raises(VerificationError, match=message):
            verify_request(hmac_source("k3y"), BODY, headers, {})

    def test_malformed_base64_is_refused(self) -> None:
        source = hmac_source("k3y", encoding="base64", prefix="")
        with pytest.raises(VerificationError, match="not base64"):
            verify_request(source, BODY, {"x-signature": "***"}, {})


def test_verify_none_lets_anyone_in_only_when_written_out() -> None:
    verify_request(SourceSpec.model_validate({"verify": "none"}), BODY, {}, {})
