"""Charsets, byte offsets, multipart edge cases and JSON sniffing for senders that mislabel."""

from __future__ import annotations

import json

import pytest

from engine.ingest import MAX_MULTIPART_PARTS, BodyError, parse_body


def multipart(*parts: tuple[str, bytes, str | None], boundary: str = "B") -> bytes:
    body = b""
    for name, value, content_type in parts:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'.encode()
        if content_type:
            body += f"Content-Type: {content_type}\r\n".encode()
        body += b"\r\n" + value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def failure(content_type: str | None, body: bytes, **options: bool) -> BodyError:
    with pytest.raises(BodyError) as raised:
        parse_body(content_type, body, **options)
    return raised.value


class TestCharsets:
    def test_a_utf8_byte_order_mark_is_not_content(self) -> None:
        assert parse_body("application/json", b'\xef\xbb\xbf{"a": 1}') == {"a": 1}

    def test_form_percent_escapes_are_read_in_the_declared_charset(self) -> None:
        body = b"name=Zo%EB&city=K%F6ln"
        assert parse_body("application/x-www-form-urlencoded; charset=iso-8859-1", body) == {
            "name": "Zoë",
            "city": "Köln",
        }

    def test_a_percent_escape_that_is_not_utf8_is_400_naming_its_field_and_offset(self) -> None:
        error = failure("application/x-www-form-urlencoded", b"name=Zo%EB")
        assert (error.status, error.message) == (400, "field 'name' is not valid utf-8: bad byte at offset 7 (%EB)")

    def test_the_offset_counts_raw_bytes_past_earlier_escapes_and_fields(self) -> None:
        body = b"city=K%C3%B6ln&name=Zo%C3%AB+Smith%C3&x=1"
        error = failure("application/x-www-form-urlencoded", body)
        assert error.message == f"field 'name' is not valid utf-8: bad byte at offset {body.index(b'%C3&')} (%C3)"

    def test_a_bad_escape_in_a_field_name_is_named_as_such(self) -> None:
        error = failure("application/x-www-form-urlencoded", b"a=1&n%FFme=2")
        assert error.message == "a field name is not valid utf-8: bad byte at offset 5 (%FF)"

    def test_escapes_are_checked_against_the_declared_charset(self) -> None:
        error = failure("application/x-www-form-urlencoded; charset=us-ascii", b"name=Zo%EB")
        assert error.message == "field 'name' is not valid us-ascii: bad byte at offset 7 (%EB)"

    def test_a_form_body_with_a_bad_byte_names_its_offset(self) -> None:
        error = failure("application/x-www-form-urlencoded", b"name=Zo\xeb")
        assert error.message == "body is not valid utf-8: bad byte at offset 7"

    def test_multipart_fields_are_utf8_by_default(self) -> None:
        assert parse_body("multipart/form-data; boundary=B", multipart(("n", "Zoë".encode(), None))) == {"n": "Zoë"}

    def test_a_multipart_field_with_a_bad_byte_is_400_with_the_bodys_offset(self) -> None:
        body = multipart(("first", b"ok", None), ("n", b"Zo\xeb", None))
        error = failure("multipart/form-data; boundary=B", body)
        assert error.message == f"field 'n' is not valid utf-8: bad byte at offset {body.index(b'Zo') + 2}"

    def test_a_parts_own_charset_wins(self) -> None:
        body = multipart(("n", "Zoë".encode("latin-1"), "text/plain; charset=latin-1"))
        assert parse_body("multipart/form-data; boundary=B", body) == {"n": "Zoë"}

    def test_the_html5_charset_field_sets_the_forms_charset(self) -> None:
        body = multipart(("_charset_", b"windows-1252", None), ("n", "Zoë €".encode("cp1252"), None))
        assert parse_body("multipart/form-data; boundary=B", body)["n"] == "Zoë €"

    def test_the_declared_charset_applies_to_multipart_fields(self) -> None:
        body = multipart(("n", "Zoë".encode("latin-1"), None))
        assert parse_body("multipart/form-data; boundary=B; charset=latin-1", body) == {"n": "Zoë"}

    def test_an_unknown_charset_in_a_part_is_400(self) -> None:
        body = multipart(("n", b"x", "text/plain; charset=klingon"))
        assert failure("multipart/form-data; boundary=B", body).message == "unknown charset 'klingon'"


class TestMultipart:
    def test_repeated_fields_become_a_list_and_files_are_described(self) -> None:
        body = (
            multipart(("tag", b"a", None), ("tag", b"b", None))[: -len(b"--B--\r\n")]
            + b'--B\r\nContent-Disposition: form-data; name="photo"; filename="leak.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\r\n--B--\r\n"
        )
        assert parse_body("multipart/form-data; boundary=B", body) == {
            "tag": ["a", "b"],
            "photo": {"filename": "leak.jpg", "content_type": "image/jpeg", "size": 3},
        }

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (multipart(("n", b"value", None))[:-12], "cannot parse beyond"),  # truncated
            (b"", "cannot parse beyond"),
            (b"--B\r\nbroken header line\r\n\r\nx\r\n--B--\r\n", "Missing Content-Disposition"),
            (b"--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--\r\n", "a part has no name"),
        ],
    )
    def test_malformed_bodies_are_400(self, body: bytes, message: str) -> None:
        error = failure("multipart/form-data; boundary=B", body)
        assert error.status == 400 and "not valid multipart/form-data" in error.message and message in error.message

    def test_too_many_parts_are_refused_cheaply(self) -> None:
        body = multipart(*[("f", b"", None)] * (MAX_MULTIPART_PARTS + 1))
        assert failure("multipart/form-data; boundary=B", body).status == 413


class TestSniffing:
    @pytest.mark.parametrize(
        "content_type", [None, "application/x-www-form-urlencoded", "application/octet-stream", "text/plain"]
    )
    def test_json_sent_under_another_label_is_json_for_a_sender_known_to_mislabel(
        self, content_type: str | None
    ) -> None:
        assert parse_body(content_type, b' {"name": "Ray"}', sniff_json=True) == {"name": "Ray"}

    def test_without_sniffing_the_label_is_believed(self) -> None:
        assert "not valid form data" in failure("application/x-www-form-urlencoded", b'{"name":"Ray"}').message
        assert failure(None, b'{"name": "Ray"}').status == 415

    def test_a_real_form_is_still_a_form(self) -> None:
        assert parse_body("application/x-www-form-urlencoded", b"name=Ray", sniff_json=True) == {"name": "Ray"}

    def test_a_form_that_merely_starts_with_a_brace_falls_back_to_the_form(self) -> None:
        assert parse_body("application/x-www-form-urlencoded", b"{x=1", sniff_json=True) == {"{x": "1"}

    def test_unlabelled_broken_json_is_a_json_error(self) -> None:
        assert "not valid JSON" in failure(None, b"{broken", sniff_json=True).message

    def test_other_labels_are_never_sniffed(self) -> None:
        assert failure("application/xml", json.dumps({"a": 1}).encode(), sniff_json=True).status == 415
