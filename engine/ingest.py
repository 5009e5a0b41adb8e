"""Turning one HTTP request into an event: body parsing, header redaction, type and keys.

Pure functions over bytes and mappings, so the web layer stays a thin adapter
and every rule here is unit-testable without a server.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from engine import bodylimits
from engine.errors import RenderError
from engine.presets import PRESETS, PayloadError, Preset
from engine.redact import REDACTED, is_secret_name
from engine.render import Renderer
from schemas.sources import SourceSpec, StandardWebhooksVerify

# Hop-by-hop and transport noise, not worth a row in every event.
_DROPPED_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection"}
_SECRET_QUERY = re.compile(r"token|secret|signature|key|password", re.IGNORECASE)

# Refuse zip-bomb-like multipart and field-flooding forms cheaply: no real form has this many fields.
MAX_MULTIPART_PARTS = 1000
MAX_FORM_FIELDS = 1000
_PERCENT_ESCAPE = re.compile(rb"%[0-9A-Fa-f]{2}")
# The ledger's events.type and events.content_type columns: longer values fail the write on PostgreSQL.
MAX_EVENT_TYPE_LENGTH = 200
MAX_CONTENT_TYPE_LENGTH = 200
# What a sender that mislabels JSON sends it as (only consulted with sniff_json).
_MISLABELLED = ("", "application/octet-stream", "application/x-www-form-urlencoded", "text/plain")

SUPPORTED_TYPES = (
    "application/json",
    "application/*+json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
)


class BodyError(Exception):
    """The body cannot be read as its content type says; `status` is the HTTP answer (400 or 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(content_type: str | None) -> str:
    return parse_options_header(content_type or "")[0].lower()


def is_json(mtype: str) -> bool:
    """application/json, JSON sent as text/plain, and structured-syntax types (RFC 6839) such as
    application/cloudevents-batch+json or application/vnd.api+json."""
    return mtype in ("application/json", "text/plain") or (mtype.startswith("application/") and mtype.endswith("+json"))


def parse_body(content_type: str | None, body: bytes, *, sniff_json: bool = False) -> Any:
    """The request's data: JSON value, or a flat field mapping for forms.

    JSON sent as text/plain (senders that cannot set a content type) is parsed as
    JSON, as is any application/*+json type. Repeated form fields become lists.
    Multipart files are described by name, filename, type and size; their bytes
    are not kept. Text is decoded with the declared charset (default UTF-8; a
    UTF-8 byte-order mark is ignored). What parses must also be storable and
    not nested too deeply (engine/bodylimits.py).

    Args:
        sniff_json: the sender is known to mislabel JSON (see engine/presets/zapier.py):
            a body that looks like JSON and is sent without a type, as a form or as
            octet-stream is read as JSON.

    Raises:
        BodyError: 415 for an unsupported type, 413 for a form with too many fields, 400 for a
            body that does not parse, nests too deeply or holds a value the ledger cannot store.
    """
    data = _parse(content_type, body, sniff_json)
    try:
        bodylimits.check(data)
    except bodylimits.PayloadRefused as exc:
        raise BodyError(400, str(exc)) from None
    return data


def _parse(content_type: str | None, body: bytes, sniff_json: bool) -> Any:
    mtype, options = parse_options_header(content_type or "")
    mtype = mtype.lower()
    charset = options.get("charset", "utf-8")
    if sniff_json and mtype in _MISLABELLED and body.lstrip()[:1] in (b"{", b"["):
        try:
            return _parse_json(body, charset)
        except BodyError:
            if mtype not in SUPPORTED_TYPES:
                raise
    if is_json(mtype):
        return _parse_json(body, charset)
    if mtype == "application/x-www-form-urlencoded":
        return _parse_urlencoded(body, charset)
    if mtype == "multipart/form-data":
        return _parse_multipart(body, options, charset if "charset" in options else None)
    supported = ", ".join(SUPPORTED_TYPES)
    shown = mtype or "no Content-Type"
    raise BodyError(415, f"unsupported content type {shown}; send one of: {supported}")


def _decode(body: bytes, charset: str, what: str = "body", offset: int = 0) -> str:
    try:
        text = body.decode(charset)
    except LookupError:
        raise BodyError(400, f"unknown charset {charset!r}") from None
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"{what} is not valid {charset}: bad byte at offset {offset + exc.start}") from None
    return text.removeprefix("\ufeff")  # a UTF-8 byte-order mark is not content


def _parse_json(body: bytes, charset: str) -> Any:
    text = _decode(body, charset)
    if not text.strip():
        raise BodyError(400, "body is empty; expected a JSON document")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyError(400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BodyError(400, f"body nests deeper than {bodylimits.MAX_JSON_DEPTH} levels; flatten it") from None
    except ValueError:  # json.loads' only other error: an integer past Python's digit limit
        limit = sys.get_int_max_str_digits()
        raise BodyError(400, f"body has a number longer than {limit} digits; send it as a string") from None


def _flatten(fields: MultiDict[str, Any]) -> dict[str, Any]:
    return {key: values[0] if len(values) == 1 else values for key, values in fields.lists()}


def _parse_urlencoded(body: bytes, charset: str) -> dict[str, Any]:
    text = _decode(body, charset)
    if text.count("&") >= MAX_FORM_FIELDS:  # counted before parsing, so a flood costs one scan
        raise BodyError(413, f"form body has more than {MAX_FORM_FIELDS} fields")
    try:
        # Percent-escapes are bytes in the form's charset too, not always UTF-8.
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), encoding=charset, errors="strict")
    except UnicodeDecodeError as exc:
        raise BodyError(400, _bad_escape(body, charset, exc)) from None
    except ValueError as exc:
        raise BodyError(400, f"body is not valid form data: {exc}") from None
    return _flatten(MultiDict(pairs))


def _bad_escape(body: bytes, charset: str, error: UnicodeDecodeError) -> str:
    """Which field holds the percent-escape that is not valid `charset`, and its offset in the body.

    parse_qsl says only that some escape failed; this re-reads the pairs as bytes
    (only on this error path) to find the first one that does not decode.
    """
    start = 0
    for pair in body.split(b"&"):
        raw_name, _, raw_value = pair.partition(b"=")
        for raw, offset, is_value in ((raw_name, start, False), (raw_value, start + len(raw_name) + 1, True)):
            try:
                _unquote(raw).decode(charset)
            except UnicodeDecodeError as exc:
                index = _raw_index(raw, exc.start)
                escape = _PERCENT_ESCAPE.match(raw, index)
                shown = f" ({escape.group().decode()})" if escape else ""
                field = f"field {_unquote(raw_name).decode(charset, 'replace')!r}" if is_value else "a field name"
                return f"{field} is not valid {charset}: bad byte at offset {offset + index}{shown}"
        start += len(pair) + 1
    return f"body is not valid form data: a percent-escaped value is not valid {charset} ({error.reason})"


def _unquote(raw: bytes) -> bytes:
    return unquote_to_bytes(raw.replace(b"+", b" "))


def _raw_index(raw: bytes, index: int) -> int:
    """Where in `raw` the byte at `index` of its unescaped form starts (a `%XX` escape is 3 bytes)."""
    position = 0
    for _ in range(index):
        position += 3 if _PERCENT_ESCAPE.match(raw, position) else 1
    return position


def _multipart_events(body: bytes, boundary: str) -> list[Any]:
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_parts=MAX_MULTIPART_PARTS)
    decoder.receive_data(body)
    decoder.receive_data(None)
    events: list[Any] = []
    try:
        # After receive_data(None) the decoder raises on a truncated body rather than asking for more.
        while not isinstance(event := decoder.next_event(), (Epilogue, NeedData)):
            events.append(event)
    except RequestEntityTooLarge:
        raise BodyError(413, f"multipart body has more than {MAX_MULTIPART_PARTS} parts") from None
    except ValueError as exc:
        raise BodyError(400, f"body is not valid multipart/form-data: {exc}") from None
    return events


@dataclass
class _Part:
    name: str
    filename: str | None
    headers: Any
    data: bytearray = field(default_factory=bytearray)

    def option(self, name: str) -> str | None:
        return parse_options_header(self.headers.get("content-type", ""))[1].get(name)


def _parts(body: bytes, boundary: str) -> list[_Part]:
    parts: list[_Part] = []
    for event in _multipart_events(body, boundary):
        if isinstance(event, (Field, File)):
            if not event.name:
                raise BodyError(400, "body is not valid multipart/form-data: a part has no name")
            parts.append(_Part(event.name, getattr(event, "filename", None), event.headers))
        elif isinstance(event, Data) and parts:
            parts[-1].data += event.data
    return parts


def _parse_multipart(body: bytes, options: Mapping[str, str], declared: str | None) -> dict[str, Any]:
    """Fields decoded strictly: a part's own charset, else the form's `_charset_` field, else the declared one."""
    boundary = options.get("boundary")
    if not boundary:
        raise BodyError(400, "multipart/form-data without a boundary parameter")
    parts = _parts(body, boundary)
    named = [bytes(p.data).decode("ascii", "replace").strip() for p in parts if p.name == "_charset_"]
    form_charset = (named[0] if named else None) or declared or "utf-8"
    fields: MultiDict[str, Any] = MultiDict()
    files: list[tuple[str, dict[str, Any]]] = []
    cursor = 0
    for part in parts:
        # Where the part's bytes sit in the body, so a decoding error names the body's byte offset.
        start = max(body.find(part.data, cursor), cursor) if part.data else cursor
        cursor = start + len(part.data)
        if part.filename is not None:
            mimetype = parse_options_header(part.headers.get("content-type", ""))[0] or None
            files.append((part.name, {"filename": part.filename, "content_type": mimetype, "size": len(part.data)}))
        else:
            charset = part.option("charset") or form_charset
            fields.add(part.name, _decode(bytes(part.data), charset, f"field {part.name!r}", start))
    result = _flatten(fields)
    for name, described in files:
        result.setdefault(name, described)
    return result


def redact_headers(headers: Mapping[str, str], secret_headers: set[str]) -> dict[str, str]:
    """Lower-cased headers safe to store: credentials replaced, transport noise dropped.

    A NUL or lone surrogate becomes U+FFFD (bodylimits.storable_text): headers are shown, never matched on.
    """
    kept = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in _DROPPED_HEADERS:
            continue
        secret = lower in secret_headers or is_secret_name(lower)
        kept[bodylimits.storable_text(lower)] = REDACTED if secret else bodylimits.storable_text(value)
    return kept


def redact_query(query: Mapping[str, str]) -> dict[str, str]:
    """The query as stored: credentials replaced, NULs and lone surrogates (`?a=%00`) made U+FFFD."""
    return {
        bodylimits.storable_text(k): REDACTED if _SECRET_QUERY.search(k) else bodylimits.storable_text(v)
        for k, v in query.items()
    }


def body_digest(body: bytes) -> str:
    """Default dedupe key: identical bodies from one source are one event."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


class EventKeyError(Exception):
    """The delivery cannot be made into events: a key or type template failed, or it is not shaped as expected."""


def preset_of(source: SourceSpec) -> Preset | None:
    return PRESETS[source.preset] if source.preset else None


def _default_type(source: SourceSpec, data: Any, headers: Mapping[str, str]) -> str | None:
    preset = preset_of(source)
    if preset is not None:
        return preset.event_type(data, headers)
    if isinstance(source.verify, StandardWebhooksVerify) and isinstance(data, dict):
        kind = data.get("type")  # the spec's recommended body: {"type": "contact.created", ...}
        return kind if isinstance(kind, str) and kind else None
    return None


def _default_key(source: SourceSpec, data: Any, headers: Mapping[str, str]) -> str | None:
    preset = preset_of(source)
    key = preset.event_id(data, headers) if preset is not None else None
    if key is None and isinstance(source.verify, StandardWebhooksVerify):
        key = headers.get("webhook-id") or headers.get("svix-id")  # identical on every retry of a message
    return key


def identify(
    renderer: Renderer, source: SourceSpec, data: Any, headers: Mapping[str, str], query: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """The event's type and dedupe key (key None: use the body digest).

    The source's templates win; without them the preset's (or the verify type's)
    defaults apply. `data` is the event's payload as the sender sent it (for a
    batch, its element).

    Raises:
        EventKeyError: a template failed, or the key came out empty.
    """
    context = {"body": data, "headers": dict(headers), "query": dict(query)}
    try:
        if source.event_type:
            event_type = renderer.render_str(source.event_type, context)
        else:
            event_type = _default_type(source, data, headers)
        key = renderer.render_str(source.event_id, context) if source.event_id else _default_key(source, data, headers)
    except RenderError as exc:
        raise EventKeyError(f"cannot key or type this event: {exc}") from exc
    except PayloadError as exc:
        raise EventKeyError(f"cannot key or type this event: {exc}") from exc
    if source.event_id and (key is None or key == ""):
        raise EventKeyError(f"event_id template {source.event_id!r} gave an empty key")
    event_type, key = (None if event_type is None else str(event_type)), (None if key is None else str(key))
    _check_storable(event_type, "the event type")
    _check_storable(key, "the event id")
    if event_type is not None and len(event_type) > MAX_EVENT_TYPE_LENGTH:
        raise EventKeyError(f"the event type is longer than {MAX_EVENT_TYPE_LENGTH} characters: {event_type[:40]!r}…")
    return event_type, key


def _check_storable(text: str | None, what: str) -> None:
    """A type or key from a template over the query or headers, which parse_body has not seen."""
    if text is None:
        return
    try:
        bodylimits.check_text(text, what)
    except bodylimits.PayloadRefused as exc:
        raise EventKeyError(f"cannot key or type this event: {exc}") from None


def items_of(source: SourceSpec, parsed: Any) -> list[Any]:
    """The events a parsed delivery carries, as the sender sent each (a batch split, a handshake none).

    Raises:
        EventKeyError: the delivery is not shaped as the source's sender sends it.
    """
    preset = preset_of(source)
    if preset is None:
        return [parsed]
    try:
        items = preset.items(parsed)
        for item in items:  # a preset may decode more JSON (Jotform's rawRequest): the same limits apply
            bodylimits.check(item)
    except PayloadError as exc:
        raise EventKeyError(str(exc)) from exc
    except bodylimits.PayloadRefused as exc:
        raise EventKeyError(f"{preset.name} delivery: {exc}") from None
    return items


@dataclass(frozen=True)
class Derived:
    """One event's type, dedupe key (None: the body digest) and `event.data`."""

    type: str | None
    key: str | None
    data: Any


def derive(
    renderer: Renderer, source: SourceSpec, item: Any, headers: Mapping[str, str], query: Mapping[str, str]
) -> Derived:
    """Type, key and flat data of one item of `items_of` (rehearsals can use this as the intake does).

    Raises:
        EventKeyError: it cannot be typed, keyed or normalised.
    """
    event_type, key = identify(renderer, source, item, headers, query)
    preset = preset_of(source)
    try:
        data = preset.normalise(item) if preset is not None else item
    except PayloadError as exc:
        raise EventKeyError(str(exc)) from exc
    if source.field_names and isinstance(data, dict):
        data = {source.field_names.get(name, name): value for name, value in data.items()}
    return Derived(event_type, key, data)
