"""Limits on what a body may hold: nesting depth, field counts, and text the ledger cannot store."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from engine import bodylimits
from engine.bodylimits import MAX_JSON_DEPTH, PayloadRefused
from engine.ingest import (
    MAX_EVENT_TYPE_LENGTH,
    MAX_FORM_FIELDS,
    BodyError,
    EventKeyError,
    identify,
    items_of,
    parse_body,
)
from engine.render import Renderer
from schemas.sources import SourceSpec


def refusal(value: Any) -> str:
    with pytest.raises(PayloadRefused) as raised:
        bodylimits.check(value)
    return str(raised.value)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


class TestNesting:
    def test_the_limit_itself_is_allowed_and_one_more_is_refused(self) -> None:
        bodylimits.check(nested(MAX_JSON_DEPTH))
        assert refusal(nested(MAX_JSON_DEPTH + 1)) == f"body nests deeper than {MAX_JSON_DEPTH} levels; flatten it"

    def test_the_check_itself_never_recurses(self) -> None:
        # Deeper than Python's recursion limit: a recursive checker would raise RecursionError here
        assert "nests deeper" in refusal(nested(5000))

    def test_json_past_the_limit_is_a_400(self) -> None:
        body = json.dumps(nested(MAX_JSON_DEPTH + 1)).encode()
        with pytest.raises(BodyError) as raised:
            parse_body("application/json", body)
        assert (raised.value.status, raised.value.message) == (400, "body nests deeper than 64 levels; flatten it")


class TestUnstorableText:
    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ({"a": {"b": ["ok", "x\x00"]}}, "field 'a.b[1]' contains a NUL character (U+0000)"),
            ([{"name": "\ud83d"}], "field '[0].name' contains a lone surrogate (U+D83D), which is not valid Unicode"),
            ({"a": {"k\x00": 1}}, "the field name 'a.k\\x00' contains a NUL character"),
            ("\udc00", "the body contains a lone surrogate (U+DC00)"),
        ],
    )
    def test_nul_and_lone_surrogates_are_refused_naming_where(self, value: Any, message: str) -> None:
        assert refusal(value).startswith(message)

    def test_real_characters_outside_the_basic_plane_are_fine(self) -> None:
        bodylimits.check({"emoji": "\U0001f600", "zoe": "Zoë", "tab": "a\tb"})

    def test_the_message_itself_is_storable(self) -> None:
        message = refusal({"\x00": "x"})
        bodylimits.check_text(message, "the reason")  # does not raise

    def test_a_form_field_with_a_nul_escape_is_a_400(self) -> None:
        with pytest.raises(BodyError) as raised:
            parse_body("application/x-www-form-urlencoded", b"name=a%00b")
        assert raised.value.message.startswith("field 'name' contains a NUL character")

    def test_a_multipart_field_with_a_raw_nul_is_a_400(self) -> None:
        body = b'--B\r\nContent-Disposition: form-data; name="n"\r\n\r\na\x00b\r\n--B--\r\n'
        with pytest.raises(BodyError) as raised:
            parse_body("multipart/form-data; boundary=B", body)
        assert raised.value.message.startswith("field 'n' contains a NUL character")


class TestFormFieldCount:
    def test_the_limit_itself_is_allowed(self) -> None:
        body = "&".join(f"f{i}=" for i in range(MAX_FORM_FIELDS)).encode()
        assert len(parse_body("application/x-www-form-urlencoded", body)) == MAX_FORM_FIELDS

    def test_one_more_field_is_413(self) -> None:
        body = "&".join("a=" for _ in range(MAX_FORM_FIELDS + 1)).encode()
        with pytest.raises(BodyError) as raised:
            parse_body("application/x-www-form-urlencoded", body)
        assert (raised.value.status, raised.value.message) == (413, "form body has more than 1000 fields")


def source(**spec: Any) -> SourceSpec:
    return SourceSpec.model_validate({"verify": "none", **spec})


class TestTypesAndKeys:
    """A type or key rendered from the query (which no body check has seen) must be storable too."""

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ({"event_id": "{{ query.ref }}"}, "the event id contains a NUL character (U+0000)"),
            ({"event_type": "lead.{{ query.ref }}"}, "the event type contains a NUL character (U+0000)"),
        ],
    )
    def test_a_nul_from_the_query_is_refused(self, spec: dict[str, str], message: str) -> None:
        with pytest.raises(EventKeyError, match=re.escape(message)):
            identify(Renderer(), source(**spec), {}, {}, {"ref": "x\x00"})

    def test_a_type_longer_than_the_ledger_column_is_refused(self) -> None:
        spec = source(event_type="{{ body.kind }}")
        assert identify(Renderer(), spec, {"kind": "k" * MAX_EVENT_TYPE_LENGTH}, {}, {})[0] is not None
        with pytest.raises(EventKeyError, match=f"longer than {MAX_EVENT_TYPE_LENGTH} characters"):
            identify(Renderer(), spec, {"kind": "k" * (MAX_EVENT_TYPE_LENGTH + 1)}, {}, {})


class TestPresetsThatDecodeMore:
    """Jotform's answers are JSON inside a form field: decoded by the preset, checked like a body."""

    jotform = SourceSpec.model_validate({"preset": "jotform", "secret": "s"})

    def test_a_nul_inside_raw_request_is_refused(self) -> None:
        parts = {"submissionID": "1", "rawRequest": json.dumps({"q3_name": "Zo\x00e"})}
        with pytest.raises(
            EventKeyError, match=re.escape("jotform delivery: field 'rawRequest.q3_name' contains a NUL")
        ):
            items_of(self.jotform, parts)

    @pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
    def test_raw_request_nested_too_deeply_is_refused(self, depth: int) -> None:
        parts = {"submissionID": "1", "rawRequest": '{"a":' + "[" * depth + "]" * depth + "}"}
        with pytest.raises(EventKeyError, match="jotform delivery: "):
            items_of(self.jotform, parts)
