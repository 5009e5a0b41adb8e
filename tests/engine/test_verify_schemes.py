"""Every verify type against requests signed as its real sender signs them.

For each: valid, tampered body, wrong secret, missing header, malformed header
and — where the scheme signs a time — a stale (and a future) timestamp. Schemes
that sign no time are shown to accept a late redelivery, since their senders
retry one delivery for hours with the same signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import pytest

from engine.errors import VerificationError
from engine.verify import OUTSIDE_TOLERANCE, sign_basic, sign_body_base64, sign_hmac, sign_standard, verify_request
from schemas.sources import HmacVerify, SourceSpec

BODY = b'{"type": "customer.credit_limit.exceeded", "data": {"account_ref": "ACME-01"}}'
WHSEC = "whsec_" + base64.b64encode(b"a-24-byte-random-key-abc").decode()
OTHER_WHSEC = "whsec_" + base64.b64encode(b"another-random-key-xyz12").decode()
NOW = 1_795_000_000.0  # a fixed clock: every timestamp below is relative to it


def source(**verify: Any) -> SourceSpec:
    return SourceSpec.model_validate({"verify": verify})


def check(spec: SourceSpec, headers: dict[str, str], body: bytes = BODY, query: dict[str, str] | None = None) -> None:
    verify_request(spec, body, headers, query or {}, now=NOW)


def refused(spec: SourceSpec, headers: dict[str, str], message: str, body: bytes = BODY) -> None:
    with pytest.raises(VerificationError, match=message):
        check(spec, headers, body)


class TestStandardWebhooks:
    spec = source(type="standard-webhooks", secret=WHSEC)

    def headers(self, secret: str = WHSEC, *, at: float = NOW, msg_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W") -> dict:
        stamp = int(at)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_standard(secret, msg_id, stamp, BODY),
        }

    def test_the_signature_is_the_specs_hmac_of_id_timestamp_and_body(self) -> None:
        key = base64.b64decode(WHSEC.removeprefix("whsec_"))
        digest = hmac.new(key, b"msg_1.1795000000." + BODY, hashlib.sha256).digest()
        assert sign_standard(WHSEC, "msg_1", 1795000000, BODY) == "v1," + base64.b64encode(digest).decode()

    def test_a_valid_delivery_passes(self) -> None:
        check(self.spec, self.headers())

    def test_svix_spelled_headers_pass(self) -> None:
        check(self.spec, {name.replace("webhook-", "svix-"): value for name, value in self.headers().items()})

    def test_a_tampered_body_is_refused(self) -> None:
        refused(self.spec, self.headers(), "no webhook-signature matches", BODY.replace(b"ACME", b"EVIL"))

    def test_the_wrong_secret_is_refused(self) -> None:
        refused(self.spec, self.headers(OTHER_WHSEC), "no webhook-signature matches")

    def test_a_changed_message_id_is_refused(self) -> None:
        headers = {**self.headers(), "webhook-id": "msg_other"}
        refused(self.spec, headers, "no webhook-signature matches")

    @pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
    def test_each_header_is_required(self, missing: str) -> None:
        headers = self.headers()
        del headers[missing]
        refused(self.spec, headers, f"missing {missing.removeprefix('webhook-')}")

    @pytest.mark.parametrize("offset", [-301, 301, -86400])
    def test_a_timestamp_more_than_five_minutes_away_either_way_is_refused(self, offset: int) -> None:
        refused(self.spec, self.headers(at=NOW + offset), OUTSIDE_TOLERANCE)

    def test_a_timestamp_within_five_minutes_passes(self) -> None:
        check(self.spec, self.headers(at=NOW - 299))
        check(self.spec, self.headers(at=NOW + 299))

    def test_several_signatures_pass_if_any_matches_for_rotation_and_other_schemes(self) -> None:
        good = self.headers()
        other = sign_standard(OTHER_WHSEC, good["webhook-id"], int(NOW), BODY)
        good["webhook-signature"] = f"v1a,c29tZWVkMjU1MTk= {other} v1,!!not-base64!! {good['webhook-signature']}"
        check(self.spec, good)

    def test_rotation_accepts_either_configured_secret(self) -> None:
        rotated = source(type="standard-webhooks", secret=[OTHER_WHSEC, WHSEC])
        check(rotated, self.headers(WHSEC))
        check(rotated, self.headers(OTHER_WHSEC))

    @pytest.mark.parametrize(
        ("header", "value", "message"),
        [
            ("webhook-timestamp", "yesterday", "malformed timestamp"),
            ("webhook-timestamp", "9" * 5000, "malformed timestamp"),
            ("webhook-timestamp", "1.5e9", "malformed timestamp"),
            ("webhook-signature", "v1,@@@", "no webhook-signature matches"),
            ("webhook-signature", "garbage", "no webhook-signature matches"),
        ],
    )
    def test_malformed_headers_are_refusals_never_crashes(self, header: str, value: str, message: str) -> None:
        refused(self.spec, {**self.headers(), header: value}, message)

    def test_a_secret_that_is_not_base64_cannot_be_configured(self) -> None:
        with pytest.raises(ValueError, match="whsec_ followed by base64"):
            source(type="standard-webhooks", secret="whsec_not base64!")

    def test_a_secret_without_the_whsec_prefix_is_read_as_base64(self) -> None:
        bare = source(type="standard-webhooks", secret=WHSEC.removeprefix("whsec_"))
        check(bare, self.headers())


class TestHmacWithTimestamp:
    """Webflow's scheme, spelled out with the generic hmac type."""

    spec = source(
        type="hmac",
        header="X-Webflow-Signature",
        timestamp_header="X-Webflow-Timestamp",
        timestamp_unit="ms",
        signed_payload="{timestamp}:{body}",
        secret="client-secret",
    )

    def headers(self, secret: str = "client-secret", *, at: float = NOW) -> dict[str, str]:
        stamp = str(int(at * 1000))
        verify = self.spec.verify
        assert isinstance(verify, HmacVerify)
        return {"x-webflow-timestamp": stamp, "x-webflow-signature": sign_hmac(verify, BODY, secret, stamp)}

    def test_the_signature_covers_timestamp_colon_body(self) -> None:
        stamp = str(int(NOW * 1000))
        expected = hmac.new(b"client-secret", f"{stamp}:".encode() + BODY, hashlib.sha256).hexdigest()
        assert self.headers()["x-webflow-signature"] == expected

    def test_valid(self) -> None:
        check(self.spec, self.headers())

    def test_tampered_body(self) -> None:
        refused(self.spec, self.headers(), "does not match", BODY + b" ")

    def test_wrong_secret(self) -> None:
        refused(self.spec, self.headers("other"), "does not match")

    def test_a_replayed_signature_with_a_new_timestamp_is_refused(self) -> None:
        headers = {**self.headers(), "x-webflow-timestamp": str(int(NOW * 1000) + 1)}
        refused(self.spec, headers, "does not match")

    @pytest.mark.parametrize("missing", ["x-webflow-timestamp", "x-webflow-signature"])
    def test_missing_header(self, missing: str) -> None:
        headers = self.headers()
        del headers[missing]
        refused(self.spec, headers, "missing")

    @pytest.mark.parametrize("offset", [-301, 301])
    def test_stale_or_future_timestamp(self, offset: int) -> None:
        refused(self.spec, self.headers(at=NOW + offset), OUTSIDE_TOLERANCE)

    def test_seconds_and_a_dot_are_the_defaults(self) -> None:
        spec = source(type="hmac", timestamp_header="X-Timestamp", secret="k")
        content = b"1795000000." + BODY
        signature = hmac.new(b"k", content, hashlib.sha256).hexdigest()
        check(spec, {"x-timestamp": "1795000000", "x-signature": signature})

    @pytest.mark.parametrize(
        ("verify", "message"),
        [
            ({"signed_payload": "{timestamp}"}, "must contain {body}"),
            ({"signed_payload": "{body}{nonce}"}, "must contain {body}"),
            ({"signed_payload": "{timestamp}.{body}"}, "timestamp_header"),
        ],
    )
    def test_signed_payload_is_checked_when_loaded(self, verify: dict[str, str], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            source(type="hmac", secret="k", **verify)


@pytest.mark.parametrize(("kind", "header"), [("xero", "x-xero-signature"), ("intuit", "intuit-signature")])
class TestBase64BodySignatures:
    """Xero (webhook key) and Intuit (verifier token): base64 HMAC-SHA256 of the raw body, nothing else."""

    def test_the_signature_is_base64_hmac_sha256_of_the_body(self, kind: str, header: str) -> None:
        expected = base64.b64encode(hmac.new(b"key", BODY, hashlib.sha256).digest()).decode()
        assert sign_body_base64(BODY, "key") == expected

    def test_valid(self, kind: str, header: str) -> None:
        check(source(type=kind, secret="key"), {header: sign_body_base64(BODY, "key")})

    def test_tampered_body(self, kind: str, header: str) -> None:
        refused(source(type=kind, secret="key"), {header: sign_body_base64(BODY, "key")}, "does not match", b"{}")

    def test_wrong_secret(self, kind: str, header: str) -> None:
        refused(source(type=kind, secret="key"), {header: sign_body_base64(BODY, "other")}, "does not match")

    def test_missing_header(self, kind: str, header: str) -> None:
        refused(source(type=kind, secret="key"), {}, f"missing signature: the {header} header")

    def test_malformed_header(self, kind: str, header: str) -> None:
        refused(source(type=kind, secret="key"), {header: "not base64!"}, "not base64")

    def test_no_timestamp_is_signed_so_a_redelivery_hours_later_passes(self, kind: str, header: str) -> None:
        signature = sign_body_base64(BODY, "key")
        verify_request(source(type=kind, secret="key"), BODY, {header: signature}, {}, now=NOW + 23 * 3600)

    def test_rotation(self, kind: str, header: str) -> None:
        spec = source(type=kind, secret=["old", "new"])
        check(spec, {header: sign_body_base64(BODY, "old")})
        check(spec, {header: sign_body_base64(BODY, "new")})


class TestBasic:
    spec = source(type="basic", username="zapier", password=["old-pass", "new-pass"])

    def test_valid_with_either_password(self) -> None:
        check(self.spec, {"authorization": sign_basic("zapier", "old-pass")})
        check(self.spec, {"authorization": sign_basic("zapier", "new-pass")})

    def test_a_password_containing_a_colon_passes(self) -> None:
        spec = source(type="basic", username="u", password="pa:ss")
        check(spec, {"authorization": sign_basic("u", "pa:ss")})

    @pytest.mark.parametrize(
        ("authorization", "message"),
        [
            (sign_basic("zapier", "wrong"), "invalid username or password"),
            (sign_basic("someone", "new-pass"), "invalid username or password"),
            ("Basic " + base64.b64encode(b"no-colon").decode(), "invalid username or password"),
            ("Bearer new-pass", "missing credentials"),
            ("Basic ", "missing credentials"),
            ("Basic %%%", "malformed credentials"),
            ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "malformed credentials"),
        ],
    )
    def test_refusals(self, authorization: str, message: str) -> None:
        refused(self.spec, {"authorization": authorization}, message)

    def test_missing_header(self) -> None:
        refused(self.spec, {}, "missing credentials")

    def test_the_body_is_not_signed_and_time_does_not_matter(self) -> None:
        verify_request(self.spec, b"anything", {"authorization": sign_basic("zapier", "new-pass")}, {}, now=0)

    def test_an_empty_password_cannot_be_configured(self) -> None:
        with pytest.raises(ValueError, match="empty secret"):
            source(type="basic", username="u", password="")


class TestToken:
    """A token proves the caller, not the body: any body passes, at any time, in the header or ?token=."""

    spec = source(type="token", secret=["t1", "t2"])

    def test_header_query_rotation(self) -> None:
        check(self.spec, {"x-hook-token": "t1"})
        check(self.spec, {}, query={"token": "t2"})

    def test_the_header_wins_over_the_query(self) -> None:
        refused(self.spec, {"x-hook-token": "wrong"}, "invalid token")
        with pytest.raises(VerificationError, match="invalid token"):
            check(self.spec, {"x-hook-token": "wrong"}, query={"token": "t1"})

    def test_any_body_and_any_time(self) -> None:
        verify_request(self.spec, b"\x00\xff", {"x-hook-token": "t1"}, {}, now=0)


def test_verification_uses_the_system_clock_by_default() -> None:
    spec = source(type="standard-webhooks", secret=WHSEC)
    stamp = int(time.time())
    headers = {
        "webhook-id": "m",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_standard(WHSEC, "m", stamp, BODY),
    }
    verify_request(spec, BODY, headers, {})


def test_a_verify_type_without_a_verifier_never_means_allow() -> None:
    from schemas.sources import NoVerify

    class Unheard(NoVerify):
        """A verify model added to the schema without a verifier beside it."""

    spec = SourceSpec.model_construct(verify=Unheard(type="none"))
    with pytest.raises(VerificationError, match="is not supported"):
        verify_request(spec, BODY, {}, {})
