"""Reading request bodies by content type, and what of the request is kept."""

from __future__ import annotations

import json

import pytest

from engine.ingest import BodyError, body_digest, parse_body, redact_headers, redact_query


def test_json() -> None:
    assert parse_body("application/json", b'{"a": 1, "b": [true]}') == {"a": 1, "b": [True]}


def test_json_sent_as_text_plain_is_json() -> None:
    assert parse_body("text/plain; charset=utf-8", b'{"a": 1}') == {"a": 1}


@pytest.mark.parametrize(
    "content_type",
    ["application/cloudevents-batch+json", "application/vnd.api+json; charset=utf-8", "Application/Problem+JSON"],
)
def test_structured_syntax_json_types_are_json(content_type: str) -> None:
    assert parse_body(content_type, b'[{"a": 1}]') == [{"a": 1}]


def test_json_honours_the_declared_charset() -> None:
    body = json.dumps({"name": "Zoë"}, ensure_ascii=False).encode("latin-1")
    assert parse_body("application/json; charset=latin-1", body) == {"name": "Zoë"}


def test_form_urlencoded_repeated_fields_become_lists() -> None:
    body = b"name=Jane+Jones&email=jane%40example.com&tag=a&tag=b&empty="
    assert parse_body("application/x-www-form-urlencoded", body) == {
        "name": "Jane Jones",
        "email": "jane@example.com",
        "tag": ["a", "b"],
        "empty": "",
    }


def test_multipart_fields_are_read_and_files_described_not_kept() -> None:
    boundary = "XyZ"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nJane\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="leak.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\nJPEGBYTES\r\n--{boundary}--\r\n"
    ).encode()
    data = parse_body(f"multipart/form-data; boundary={boundary}", body)
    assert data == {"name": "Jane", "photo": {"filename": "leak.jpg", "content_type": "image/jpeg", "size": 9}}


@pytest.mark.parametrize(
    ("content_type", "body", "status", "message"),
    [
        ("application/xml", b"<a/>", 415, "unsupported content type application/xml"),
        (None, b"{}", 415, "no Content-Type"),
        ("application/json", b"", 400, "body is empty"),
        ("application/json", b'{"a": ', 400, "not valid JSON"),
        ("application/json", b'{"a": "\xff"}', 400, "bad byte at offset 7"),
        ("application/json; charset=klingon", b"{}", 400, "unknown charset"),
        ("text/plain", b"hello", 400, "not valid JSON"),
        ("application/json", b"[" * 100_000, 400, "body nests deeper than 64 levels; flatten it"),
        ("application/json", b"1" * 5000, 400, "body has a number longer than 4300 digits; send it as a string"),
        ("application/json", b'{"n": NaN}', 400, "field 'n' is nan, not a JSON number"),
        ("application/json", b'{"n": [1e400]}', 400, "field 'n[0]' is inf, not a JSON number"),
        ("application/vnd.api+xml", b"<a/>", 415, "unsupported content type application/vnd.api+xml"),
        ("text/json+x", b"{}", 415, "unsupported content type text/json+x"),
        ("multipart/form-data", b"x", 400, "without a boundary"),
    ],
)
def test_unreadable_bodies(content_type: str | None, body: bytes, status: int, message: str) -> None:
    with pytest.raises(BodyError) as raised:
        parse_body(content_type, body)
    assert raised.value.status == status
    assert message in raised.value.message


def test_credentials_in_headers_are_redacted_and_noise_dropped() -> None:
    headers = {
        "Content-Type": "application/json",
        "X-Hook-Token": "s3cret",
        "Authorization": "Basic abc",
        "X-Custom-Sig": "abc",
        "Cookie": "session=1",
        "X-Api-Key": "k",
        "Connection": "keep-alive",
        "User-Agent": "Typeform/1.0",
    }
    kept = redact_headers(headers, secret_headers={"x-custom-sig"})
    assert kept == {
        "content-type": "application/json",
        "x-hook-token": "[redacted]",
        "authorization": "[redacted]",
        "x-custom-sig": "[redacted]",
        "cookie": "[redacted]",
        "x-api-key": "[redacted]",
        "user-agent": "Typeform/1.0",
    }


def test_text_the_ledger_cannot_store_in_headers_and_query_becomes_a_replacement_character() -> None:
    assert redact_headers({"X-Note": "a\x00b", "X-\ud800": "c"}, set()) == {"x-note": "a\ufffdb", "x-\ufffd": "c"}
    assert redact_query({"q": "x\udc80y", "\x00": "1"}) == {"q": "x\ufffdy", "\ufffd": "1"}


def test_credentials_in_the_query_are_redacted() -> None:
    assert redact_query({"token": "s3cret", "page": "2", "api_key": "k"}) == {
        "token": "[redacted]",
        "page": "2",
        "api_key": "[redacted]",
    }


def test_the_default_dedupe_key_is_a_digest_of_the_exact_bytes() -> None:
    assert body_digest(b"{}") == body_digest(b"{}")
    assert body_digest(b"{}") != body_digest(b"{ }")
