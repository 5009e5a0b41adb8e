"""Template filters that integrations need, beyond Jinja's built-ins.

The renderer registers `FILTERS` on its sandboxed environment. Every filter is a
plain function that takes the value on the left of `|` and raises ValueError with
a message an ops person can act on (the renderer turns it into a RenderError that
names the template), because a bad value here usually means bad data from the
sender, and the run's error is all the person on call will see.

- `as_utc(assume="UTC")`: `{{ event.data.when | as_utc('Europe/London') }}` gives
  `2026-07-01T08:00:00Z` for "2026-07-01 09:00".
- `date(fmt="%Y-%m-%d")`: `{{ event.data.when | date('%d/%m/%Y') }}` gives `01/07/2026`.
- `phone_e164(default_region="GB")`: `{{ event.data.phone | phone_e164 }}` gives
  `+447932883112` for "07932 883112".
- `slug(sep="-")`: `{{ event.data.company | slug }}` gives `cafe-du-marche` for "Café du Marché".

Each example here is also a test.

Jinja's own `default` and `truncate` need no code here and behave as documented
(pinned by tests/engine/test_filters.py):
- `x | default('n/a')` gives 'n/a' when `x` is undefined (a missing form field),
  even though undefined names are otherwise errors. Only the last name may be
  missing: `event.data.a.b | default(…)` still fails when `a` is missing.
  `default('n/a', true)` also replaces None and "" (an empty form field).
- `truncate(20)` cuts at a word boundary and appends "..." — but only when the
  text is more than 5 characters too long (Jinja's leeway). For a hard limit,
  e.g. a field with max_length 100, write `truncate(100, true, '', 0)`.

Date-times (`as_utc`, `date`) accept a datetime, a date (midnight), or a string in
one of the ISO 8601 shapes of ACCEPTED_DATETIMES. Day/month forms such as 01/12/2026 are refused,
not guessed: in the UK that is 1 December, in the US 12 January, and a wrong guess
books an engineer on the wrong day without anyone noticing.

Local times that a clock change makes odd resolve as PostgreSQL and java.time do,
so the same value means the same instant wherever it is read:
- a time that does not exist (clocks go forward: 2026-03-29 01:30 in
  Europe/London) is read with the offset before the change, i.e. moved forward by
  the gap (01:30 GMT = 02:30 BST = 01:30Z);
- a time that happens twice (clocks go back: 2026-10-25 01:30 in Europe/London)
  is the first occurrence, still in summer time (00:30Z).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, time, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from jinja2.runtime import Undefined

ACCEPTED_DATETIMES = "2026-12-01T09:00:00Z, 2026-12-01T09:00:00+01:00, 2026-12-01 09:00[:00] or 2026-12-01"

# ISO 8601 extended format only (what forms and APIs send): a date, optionally a
# time to the minute or second (fraction allowed), optionally Z or an offset. The
# regex gates the shapes; datetime.fromisoformat then checks the calendar.
_ISO_LIKE = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?$"
)

# Letters that Unicode does not decompose into an ASCII base letter plus accents.
_TRANSLITERATE = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "TH",
        "\u0131": "i",  # dotless i
    }
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def as_utc(value: Any, assume: str = "UTC") -> str:
    """The instant `value` names, in UTC, as BigChange's strict `YYYY-MM-DDTHH:MM:SSZ`.

    Args:
        value: a datetime, a date (midnight) or an ISO 8601 string (see ACCEPTED_DATETIMES).
        assume: IANA zone for values without an offset, e.g. "Europe/London" for a UK
            web form; clock changes resolve as the module docstring says.

    Raises:
        ValueError: the value is empty or not a date-time, or `assume` is not a zone name.

    Returns:
        The UTC instant to the second (a fraction of a second is dropped, not rounded).
    """
    moment = _to_datetime(value, "as_utc")
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(assume), fold=0)
    utc = moment.astimezone(timezone.utc).replace(tzinfo=None, microsecond=0)
    return utc.isoformat(timespec="seconds") + "Z"


def format_date(value: Any, fmt: str = "%Y-%m-%d") -> str:
    """`value` formatted with strftime, as written: no zone conversion.

    A string keeps its own wall-clock time and offset (format `as_utc`'s result to
    show UTC). Registered as the `date` filter.

    Raises:
        ValueError: the value is empty or not a date-time, or `fmt` is not a string.
    """
    moment = _to_datetime(value, "date")
    if not isinstance(fmt, str):
        raise ValueError(f"date: the format must be text such as '%d/%m/%Y', not {fmt!r}")
    return moment.strftime(fmt)


def phone_e164(value: Any, default_region: str = "GB") -> str:
    """The international E.164 form of a phone number: "07932 883112" -> "+447932883112".

    Numbers without a leading + and country code are read as numbers of
    `default_region`. An extension ("ext. 12") is dropped: E.164 has none.

    Args:
        value: the number as text (or digits as an integer).
        default_region: ISO 3166 two-letter region, e.g. "GB", "IE", "FR".

    Raises:
        ValueError: the value is empty, not a phone number, or not a valid number
            (wrong length, unallocated prefix); or the region is not a region code.
    """
    value = _require(value, "phone_e164")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"phone_e164: expected the number as text, got {_kind(value)} {value!r}")
    region = default_region.upper() if isinstance(default_region, str) else default_region
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"phone_e164: {default_region!r} is not a region code; use two letters such as GB or IE")
    try:
        number = phonenumbers.parse(str(value), region)
    except phonenumbers.NumberParseException:
        raise ValueError(
            f"phone_e164: {value!r} is not a phone number; expected e.g. 07932 883112 or +44 7932 883112"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(
            f"phone_e164: {value!r} is not a valid phone number (wrong length or unknown prefix; "
            f"without a +country code it is read as a {region} number)"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def slug(value: Any, sep: str = "-") -> str:
    """Lower-case ASCII words joined by `sep`: "Café du Marché, Ltd." -> "cafe-du-marche-ltd".

    Accents are stripped (é -> e, ß -> ss); every run of other characters becomes
    one `sep`. Text with no Latin letters or digits (e.g. "東京") gives "": a slug
    is formatting, and refusing a customer's name would fail the run.

    Raises:
        ValueError: the value is empty (None or undefined) or not text or a number.
    """
    value = _require(value, "slug", blank_ok=True)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"slug: expected text, got {_kind(value)} {value!r}")
    if not isinstance(sep, str):
        raise ValueError(f"slug: the separator must be text such as '-' or '_', not {sep!r}")
    text = unicodedata.normalize("NFKD", str(value).translate(_TRANSLITERATE))
    ascii_text = text.encode("ascii", "ignore").decode("ascii").lower()
    result = _NOT_ALNUM.sub(sep, ascii_text)
    return result.strip(sep) if sep else result


def _require(value: Any, name: str, *, blank_ok: bool = False) -> Any:
    """`value` itself, or an error that tells the reader how to allow a missing or blank one.

    An empty form field arrives as None or "", and the fix is the same for both;
    only `slug` has a sensible answer for "" (itself).
    """
    if isinstance(value, Undefined):
        # StrictUndefined's own error names the missing variable, which is the useful part.
        value._fail_with_undefined_error()
    if value is None or (not blank_ok and isinstance(value, str) and not value.strip()):
        raise ValueError(
            f"{name}: the value is empty ({value!r}); guard the step with `if:`, "
            f"or put default('…', true) before {name} to use a fallback"
        )
    return value


def _to_datetime(value: Any, name: str) -> datetime | date:
    """A datetime (naive or aware) or date from what a template may hold."""
    value = _require(value, name)
    if isinstance(value, (datetime, date)):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a date-time such as {ACCEPTED_DATETIMES}; got {_kind(value)} {value!r}")
    text = value.strip()
    if not _ISO_LIKE.match(text):
        raise ValueError(
            f"{name}: {value!r} is not a date-time it understands; write {ACCEPTED_DATETIMES} "
            "(day/month forms such as 01/12/2026 are ambiguous and refused)"
        )
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise ValueError(f"{name}: {value!r} is not a real date-time: {exc}") from None


def _zone(name: Any) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"as_utc: {name!r} is not a time zone; use an IANA name such as Europe/London or UTC"
        ) from None


def _kind(value: Any) -> str:
    return type(value).__name__


FILTERS: dict[str, Callable[..., Any]] = {
    "as_utc": as_utc,
    "date": format_date,
    "phone_e164": phone_e164,
    "slug": slug,
}
