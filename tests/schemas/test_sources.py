"""sources.yaml: presets fill a source in; what is written beside them wins; mistakes are refused with a reason."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from engine.presets import PRESETS
from schemas.sources import (
    BasicVerify,
    HmacVerify,
    IntuitVerify,
    SourceSpec,
    StandardWebhooksVerify,
    TokenVerify,
    XeroVerify,
)


def spec(**raw: Any) -> SourceSpec:
    return SourceSpec.model_validate(raw)


def test_a_preset_and_a_secret_are_a_complete_source() -> None:
    source = spec(preset="typeform", secret="s3cret")
    assert isinstance(source.verify, HmacVerify)
    assert (source.verify.header, source.verify.encoding, source.verify.prefix) == (
        "Typeform-Signature",
        "base64",
        "sha256=",
    )
    assert [s.get_secret_value() for s in source.verify.secret] == ["s3cret"]
    assert source.preset == "typeform"


@pytest.mark.parametrize(
    ("preset", "verify_type", "ack"),
    [
        ("typeform", HmacVerify, (202, "json")),
        ("jotform", TokenVerify, (200, "json")),
        ("webflow", HmacVerify, (200, "json")),
        ("gravityforms", TokenVerify, (200, "json")),
        ("zapier", TokenVerify, (202, "json")),
        ("xero", XeroVerify, (200, "empty")),
        ("quickbooks", IntuitVerify, (200, "json")),
    ],
)
def test_every_preset_builds_its_senders_verify_and_answer(preset: str, verify_type: type, ack: tuple) -> None:
    source = spec(preset=preset, secret=["old", "new"])
    assert isinstance(source.verify, verify_type)
    assert (source.ack.status, source.ack.body) == ack
    assert preset in PRESETS


def test_a_preset_source_is_rate_limited_by_default_and_others_follow_the_settings() -> None:
    limit = spec(preset="jotform", secret="t").rate_limit
    assert limit is not None and (limit.per_second, limit.burst) == (10, 100)
    assert spec(preset="jotform", secret="t", rate_limit={"per_second": 0}).rate_limit.per_second == 0  # type: ignore[union-attr]
    assert spec(verify={"type": "token", "secret": "t"}).rate_limit is None


def test_keys_written_beside_a_preset_win() -> None:
    source = spec(
        preset="webflow",
        verify={"type": "token", "secret": "t"},  # a dashboard-created (unsigned) Webflow webhook
        event_type="enquiry.received",
        ack={"status": 202},
    )
    assert isinstance(source.verify, TokenVerify)
    assert (source.event_type, source.ack.status) == ("enquiry.received", 202)


def test_the_quickbooks_preset_allows_larger_batches() -> None:
    assert spec(preset="quickbooks", secret="v").max_body_bytes == 5 * 1024 * 1024
    assert spec(preset="quickbooks", secret="v", max_body_bytes=1000).max_body_bytes == 1000


@pytest.mark.parametrize(("verify_type", "preset"), [("xero", "xero"), ("intuit", "quickbooks")])
def test_a_batching_senders_verify_type_brings_its_handling(verify_type: str, preset: str) -> None:
    source = spec(verify={"type": verify_type, "secret": "k"})
    assert source.preset == preset and source.ack.status == 200


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"preset": "typeform"}, "needs the sender's key"),
        ({"preset": "surveymonkey", "secret": "x"}, "unknown preset 'surveymonkey'"),
        ({"preset": "typeform", "secret": "x", "verify": {"type": "token", "secret": "y"}}, "give the secret once"),
        ({"secret": "x", "verify": {"type": "token", "secret": "y"}}, "goes with a preset"),
        ({"preset": "typeform", "secret": ""}, "empty secret"),
        ({"verify": {"type": "basic", "username": "u"}}, "password"),
        ({"verify": {"type": "hmac", "secret": "k", "tolerance_seconds": 0}}, "greater than or equal to 1"),
        ({"verify": {"type": "token", "secret": "t"}, "ack": {"status": 201}}, "202"),
        ({"verify": {"type": "token", "secret": "t"}, "rate_limit": {"per_second": -1}}, "greater than or equal"),
        ({"event_type": "x"}, "Field required"),
        ({"verify": "none", "run_workflows": ["web-enquiry"]}, "needs a verify, not none"),
    ],
)
def test_mistakes_are_refused_with_a_reason(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**raw)


def test_secret_values_never_appear_in_validation_errors() -> None:
    with pytest.raises(ValidationError) as raised:
        spec(verify={"type": "standard-webhooks", "secret": "whsec_!!sup3r-secret!!"})
    assert "sup3r-secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("verify", "headers"),
    [
        ({"type": "token", "header": "X-Zap-Key", "secret": "t"}, {"x-zap-key"}),
        ({"type": "hmac", "header": "Typeform-Signature", "secret": "t"}, {"typeform-signature"}),
        ({"type": "standard-webhooks", "secret": "whsec_" + "a2V5"}, {"webhook-signature", "svix-signature"}),
        ({"type": "xero", "secret": "k"}, {"x-xero-signature"}),
        ({"type": "intuit", "secret": "k"}, {"intuit-signature"}),
        ({"type": "basic", "username": "u", "password": "p"}, {"authorization"}),
        ("none", set()),
    ],
)
def test_each_verify_type_names_the_headers_never_to_store(verify: Any, headers: set[str]) -> None:
    assert spec(verify=verify).secret_headers == headers


def test_types_are_what_each_verify_type_says() -> None:
    assert isinstance(spec(verify={"type": "basic", "username": "u", "password": "p"}).verify, BasicVerify)
    assert isinstance(spec(verify={"type": "standard-webhooks", "secret": "a2V5"}).verify, StandardWebhooksVerify)
