"""Template filters: the specification of each, its error messages, and the Jinja built-ins we rely on."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from jinja2 import Environment

from engine.errors import RenderError
from engine.filters import FILTERS, as_utc, format_date, phone_e164, slug
from engine.render import Renderer

CONTEXT = {
    "event": {
        "data": {
            "when": "2026-07-01 09:00",
            "phone": "07932 883112",
            "company": "Café du Marché",
            "blank": "",
            "nothing": None,
            "message": "The boiler in the loft is leaking again",
        }
    }
}


@pytest.fixture
def renderer() -> Renderer:
    renderer = Renderer()
    renderer.env.filters.update(FILTERS)  # until Renderer registers FILTERS itself
    return renderer


def test_our_filters_do_not_shadow_jinja_builtins() -> None:
    assert not set(FILTERS) & set(Environment().filters)


# --- as_utc -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "assume", "expected"),
    [
        ("2026-12-01T09:00:00Z", "UTC", "2026-12-01T09:00:00Z"),
        ("2026-12-01t09:00:00z", "UTC", "2026-12-01T09:00:00Z"),
        ("2026-12-01T09:00:00+01:00", "Europe/London", "2026-12-01T08:00:00Z"),  # an offset beats `assume`
        ("2026-12-01T09:00+0530", "UTC", "2026-12-01T03:30:00Z"),
        ("2026-12-01T09:00:00.999999Z", "UTC", "2026-12-01T09:00:00Z"),  # fractions dropped, not rounded
        ("2026-12-01 09:00", "UTC", "2026-12-01T09:00:00Z"),
        ("2026-12-01 09:00:30", "Europe/London", "2026-12-01T09:00:30Z"),  # GMT in winter
        ("2026-07-01 09:00", "Europe/London", "2026-07-01T08:00:00Z"),  # BST in summer
        ("  2026-07-01T09:00 ", "Europe/Paris", "2026-07-01T07:00:00Z"),
        ("2026-12-01", "UTC", "2026-12-01T00:00:00Z"),
        ("2026-07-01", "Europe/London", "2026-06-30T23:00:00Z"),  # local midnight
        (datetime(2026, 7, 1, 9, 0), "Europe/London", "2026-07-01T08:00:00Z"),
        (datetime(2026, 7, 1, 9, 0, tzinfo=timezone(timedelta(hours=-4))), "Europe/London", "2026-07-01T13:00:00Z"),
        (date(2026, 12, 1), "Europe/London", "2026-12-01T00:00:00Z"),
    ],
)
def test_as_utc_gives_the_instant_in_bigchanges_strict_format(value: Any, assume: str, expected: str) -> None:
    assert as_utc(value, assume) == expected


def test_as_utc_reads_a_time_skipped_by_the_spring_clock_change_as_moved_forward_by_the_gap() -> None:
    # Given 01:30 on 29 March 2026, which never shows on a London clock (01:00 GMT -> 02:00 BST)
    # Then it is read with the offset before the change: 01:30 GMT, i.e. 02:30 BST
    assert as_utc("2026-03-29 01:30", "Europe/London") == "2026-03-29T01:30:00Z"
    assert as_utc("2026-03-29 02:30", "Europe/London") == "2026-03-29T01:30:00Z"


def test_as_utc_reads_a_time_repeated_by_the_autumn_clock_change_as_its_first_occurrence() -> None:
    # Given 01:30 on 25 October 2026, which London clocks show twice (BST, then GMT)
    # Then it is the first one, still in summer time
    assert as_utc("2026-10-25 01:30", "Europe/London") == "2026-10-25T00:30:00Z"
    assert as_utc("2026-10-25 02:30", "Europe/London") == "2026-10-25T02:30:00Z"  # after the change: GMT


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("01/12/2026 09:00", "as_utc: '01/12/2026 09:00' is not a date-time it understands; write 2026-12-01T09:00"),
        ("01/12/2026 09:00", "day/month forms such as 01/12/2026 are ambiguous and refused"),
        ("1 December 2026", "as_utc: '1 December 2026' is not a date-time it understands"),
        ("20261201T0900", "as_utc: '20261201T0900' is not a date-time it understands"),  # basic format: too terse
        ("2026-12-01T09:00:00 +01:00", "is not a date-time it understands"),
        ("2026-13-01", "as_utc: '2026-13-01' is not a real date-time: month must be in 1..12"),
        ("2026-02-30 09:00", "as_utc: '2026-02-30 09:00' is not a real date-time: day is out of range for month"),
        ("", "as_utc: the value is empty (''); guard the step with `if:`, or put default('…', true) before as_utc"),
        (None, "as_utc: the value is empty (None)"),
        (1764579600, "as_utc: expected a date-time such as 2026-12-01T09:00:00Z"),
        (1764579600, "got int 1764579600"),
    ],
)
def test_as_utc_refuses_what_it_cannot_read_and_says_what_it_accepts(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        as_utc(value)
    assert message in str(caught.value)


@pytest.mark.parametrize("zone", ["Europe/Londn", "GMT+1/../x", "", 3])
def test_as_utc_refuses_a_zone_that_is_not_an_iana_name(zone: Any) -> None:
    with pytest.raises(ValueError, match="is not a time zone; use an IANA name such as Europe/London or UTC"):
        as_utc("2026-12-01 09:00", zone)


def test_as_utc_needs_no_zone_when_the_value_carries_an_offset() -> None:
    assert as_utc("2026-12-01T09:00:00Z", "Not/AZone") == "2026-12-01T09:00:00Z"


# --- date ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("2026-07-01 09:00", "%d/%m/%Y", "01/07/2026"),
        ("2026-07-01T09:05:00+01:00", "%H:%M %z", "09:05 +0100"),  # as written: no conversion
        ("2026-07-01T23:30:00Z", "%Y-%m-%d", "2026-07-01"),
        (datetime(2026, 7, 1, 9, 0), "%A %d %B", "Wednesday 01 July"),
        (date(2026, 7, 1), "%d.%m.%y", "01.07.26"),
    ],
)
def test_date_formats_with_strftime(value: Any, fmt: str, expected: str) -> None:
    assert format_date(value, fmt) == expected


def test_date_defaults_to_iso_day() -> None:
    assert format_date("2026-07-01T09:00:00Z") == "2026-07-01"


def test_date_refuses_what_as_utc_refuses_under_its_own_name() -> None:
    with pytest.raises(ValueError, match=r"^date: '01/07/2026' is not a date-time it understands"):
        format_date("01/07/2026")


def test_date_refuses_a_format_that_is_not_text() -> None:
    with pytest.raises(ValueError, match=r"date: the format must be text such as '%d/%m/%Y', not 3"):
        format_date("2026-07-01", 3)  # type: ignore[arg-type]


# --- phone_e164 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("07932 883112", "GB", "+447932883112"),
        ("+44 7932 883112", "GB", "+447932883112"),
        ("+44 (0)7932 883112", "GB", "+447932883112"),
        ("0207 946 0000", "GB", "+442079460000"),
        ("7932883112", "GB", "+447932883112"),  # a number field that lost its leading 0
        (7932883112, "GB", "+447932883112"),
        ("+1 202-555-0143", "GB", "+12025550143"),  # a country code beats the default region
        ("01 42 68 53 00", "FR", "+33142685300"),
        ("01 42 68 53 00", "fr", "+33142685300"),
        ("07932 883112 ext. 12", "GB", "+447932883112"),  # E.164 has no extensions
    ],
)
def test_phone_e164_gives_the_international_form(value: Any, region: str, expected: str) -> None:
    assert phone_e164(value, region) == expected


@pytest.mark.parametrize(
    ("value", "region", "message"),
    [
        ("call me", "GB", "phone_e164: 'call me' is not a phone number; expected e.g. 07932 883112 or +44 7932 883112"),
        ("12345", "GB", "phone_e164: '12345' is not a valid phone number (wrong length or unknown prefix; "),
        ("12345", "GB", "without a +country code it is read as a GB number)"),
        ("07932 883112", "XX", "phone_e164: 'XX' is not a region code; use two letters such as GB or IE"),
        ("   ", "GB", "phone_e164: the value is empty ('   ')"),
        (None, "GB", "phone_e164: the value is empty (None)"),
        (True, "GB", "phone_e164: expected the number as text, got bool True"),
        (["07932 883112"], "GB", "phone_e164: expected the number as text, got list"),
    ],
)
def test_phone_e164_names_the_value_it_refuses(value: Any, region: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        phone_e164(value, region)
    assert message in str(caught.value)


# --- slug ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "sep", "expected"),
    [
        ("Café du Marché", "-", "cafe-du-marche"),
        ("Café du Marché, Ltd.", "-", "cafe-du-marche-ltd"),
        ("  --Hello   World!!  ", "-", "hello-world"),
        ("Straße Ørsted Łódź Æsir", "-", "strasse-orsted-lodz-aesir"),
        ("\uff26\uff35\uff2c\uff2c width", "-", "full-width"),  # NFKD folds full-width FULL
        ("Smith & Sons (Plumbing)", "_", "smith_sons_plumbing"),
        ("A B", "", "ab"),
        (2026, "-", "2026"),
        ("東京", "-", ""),  # nothing Latin to keep
        ("", "-", ""),
    ],
)
def test_slug_is_lower_case_ascii_words(value: Any, sep: str, expected: str) -> None:
    assert slug(value, sep) == expected


@pytest.mark.parametrize(
    ("value", "sep", "message"),
    [
        (None, "-", "slug: the value is empty (None)"),
        ({"a": 1}, "-", "slug: expected text, got dict {'a': 1}"),
        ("x", 1, "slug: the separator must be text such as '-' or '_', not 1"),
    ],
)
def test_slug_refuses_what_is_not_text(value: Any, sep: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        slug(value, sep)
    assert message in str(caught.value)


# --- through the renderer -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ event.data.when | as_utc('Europe/London') }}", "2026-07-01T08:00:00Z"),
        ("{{ event.data.when | as_utc('Europe/London') | date('%H:%M') }}", "08:00"),
        ("{{ event.data.when | date('%d/%m/%Y') }}", "01/07/2026"),
        ("{{ event.data.phone | phone_e164 }}", "+447932883112"),
        ("{{ event.data.phone | phone_e164('GB') }}", "+447932883112"),
        ("WEB-{{ event.data.company | slug }}", "WEB-cafe-du-marche"),
        ("{{ event.data.company | slug('_') }}", "cafe_du_marche"),
    ],
)
def test_filters_work_in_sandboxed_templates(renderer: Renderer, template: str, expected: str) -> None:
    assert renderer.render_str(template, CONTEXT) == expected


def test_a_filter_error_becomes_a_render_error_naming_the_template_and_the_value(renderer: Renderer) -> None:
    # Given a day/month date from a form
    context = {"event": {"data": {"when": "01/07/2026"}}}
    # When it goes through as_utc
    with pytest.raises(RenderError) as caught:
        renderer.render_str("{{ event.data.when | as_utc }}", context)
    # Then the error names the template, the filter and the value
    assert str(caught.value).startswith("'{{ event.data.when | as_utc }}': as_utc: '01/07/2026' is not a date-time")


def test_a_missing_field_given_to_a_filter_is_reported_as_missing(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="has no attribute 'phone_number'"):
        renderer.render_str("{{ event.data.phone_number | phone_e164 }}", CONTEXT)


# --- Jinja built-ins: default and truncate ------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ x | default('n/a') }}", "n/a"),
        ("{{ event.data.missing | default('n/a') }}", "n/a"),
        ("{{ event.data.company | default('n/a') }}", "Café du Marché"),
        ("{{ event.data.blank | default('n/a') }}", ""),  # present, so kept...
        ("{{ event.data.blank | default('n/a', true) }}", "n/a"),  # ...unless falsy values count as missing
        ("{{ event.data.nothing | default('n/a', true) }}", "n/a"),
        ("{{ event.data.missing | default(42) }}", 42),  # a single expression keeps the native type
        ("{{ event.data.missing | default('') | slug }}", ""),
    ],
)
def test_default_fills_in_for_a_missing_value_despite_strict_undefined(
    renderer: Renderer, template: str, expected: object
) -> None:
    assert renderer.render_str(template, CONTEXT) == expected


def test_default_covers_only_the_last_name_in_a_path(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="has no attribute 'missing'"):
        renderer.render_str("{{ event.data.missing.deeper | default('n/a') }}", CONTEXT)


def test_an_undefined_name_without_default_is_still_an_error(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="'x' is undefined"):
        renderer.render_str("{{ x | truncate(20) }}", CONTEXT)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ event.data.message | truncate(20) }}", "The boiler in..."),  # whole words, <= 20 with "..."
        ("{{ event.data.message | truncate(36) }}", "The boiler in the loft is leaking again"),  # within leeway 5
        ("{{ event.data.message | truncate(20, true, '', 0) }}", "The boiler in the lo"),  # a hard limit
        ("{{ event.data.message | truncate(20, end='…') }}", "The boiler in the…"),
        ("Note: {{ event.data.company | truncate(9) }}", "Note: Café du Marché"),  # 14 chars <= 9 + 5
    ],
)
def test_truncate_works_in_the_sandbox(renderer: Renderer, template: str, expected: str) -> None:
    assert renderer.render_str(template, CONTEXT) == expected
