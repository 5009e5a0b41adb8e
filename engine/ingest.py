"""Turning one HTTP request into an event: body parsing, header redaction, keys.

Pure functions over bytes and mappings, so the web layer stays a thin adapter
and every rule here is unit-testable without a server.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Mapping
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.formparser import parse_form_data
from werkzeug.http import parse_options_header

from engine.redact import REDACTED, is_secret_name

# Hop-by-hop and transport noise, not worth a row in every event.
_DROPPED_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection"}
_SECRET_QUERY = re.compile(r"token|secret|signature|key|password", re.IGNORECASE)

SUPPORTED_TYPES = (
    "application/json",
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


def parse_body(content_type: str | None, body: bytes) -> Any:
    """The request's data: JSON value, or a flat field mapping for forms.

    JSON sent as text/plain (senders that cannot set a content type) is parsed as
    JSON. Repeated form fields become lists. Multipart files are described by
    name, filename, type and size; their bytes are not kept.

    Raises:
        BodyError: 415 for an unsupported type, 400 for a body that does not parse.
    """
    mtype, options = parse_options_header(content_type or "")
    mtype = mtype.lower()
    if mtype not in SUPPORTED_TYPES:
        supported = ", ".join(SUPPORTED_TYPES)
        shown = mtype or "no Content-Type"
        raise BodyError(415, f"unsupported content type {shown}; send one of: {supported}")
    charset = options.get("charset", "utf-8")
    if mtype in ("application/json", "text/plain"):
        return _parse_json(body, charset)
    if mtype == "application/x-www-form-urlencoded":
        return _parse_urlencoded(body, charset)
    return _parse_multipart(body, content_type or "")


def _decode(body: bytes, charset: str) -> str:
    try:
        return body.decode(charset)
    except LookupError:
        raise BodyError(400, f"unknown charset {charset!r}") from None
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"body is not valid {charset}: bad byte at offset {exc.start}") from None


def _parse_json(body: bytes, charset: str) -> Any:
    text = _decode(body, charset)
    if not text.strip():
        raise BodyError(400, "body is empty; expected a JSON document")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyError(400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BodyError(400, "body is not valid JSON: nested too deeply") from None


def _flatten(fields: MultiDict[str, Any]) -> dict[str, Any]:
    return {key: values[0] if len(values) == 1 else values for key, values in fields.lists()}


def _parse_urlencoded(body: bytes, charset: str) -> dict[str, Any]:
    from urllib.parse import parse_qsl

    text = _decode(body, charset)
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except ValueError as exc:
        raise BodyError(400, f"body is not valid form data: {exc}") from None
    return _flatten(MultiDict(pairs))


def _parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    if "boundary=" not in content_type:
        raise BodyError(400, "multipart/form-data without a boundary parameter")
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    try:
        _stream, form, files = parse_form_data(environ, silent=False)
    except ValueError as exc:
        raise BodyError(400, f"body is not valid multipart/form-data: {exc}") from None
    data = _flatten(form)
    for name, upload in files.items(multi=True):
        size = len(upload.read())
        data.setdefault(name, {"filename": upload.filename, "content_type": upload.mimetype, "size": size})
    return data


def redact_headers(headers: Mapping[str, str], secret_headers: set[str]) -> dict[str, str]:
    """Lower-cased headers safe to store: credentials replaced, transport noise dropped."""
    kept = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in _DROPPED_HEADERS:
            continue
        kept[lower] = REDACTED if lower in secret_headers or is_secret_name(lower) else value
    return kept


def redact_query(query: Mapping[str, str]) -> dict[str, str]:
    return {k: REDACTED if _SECRET_QUERY.search(k) else v for k, v in query.items()}


def body_digest(body: bytes) -> str:
    """Default dedupe key: identical bodies from one source are one event."""
    return "sha256:" + hashlib.sha256(body).hexdigest()
