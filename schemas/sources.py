"""sources.yaml: who may POST to /hooks/<source> and how their events are keyed.

A source must say how it is verified; "verify: none" has to be written out, so
an unauthenticated endpoint is always a visible decision. Secret values here are
already resolved from `${VAR}` references by the loader.

A `preset:` names a sender (engine/presets) and fills in everything else from
its conventions, so `{preset: typeform, secret: "${TYPEFORM_SECRET}"}` is a
complete source; any key written next to it wins over the preset's.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from engine.presets import PRESET_FOR_VERIFY, PRESETS
from engine.presets.base import RATE_LIMIT


class _Spec(BaseModel):
    # Errors never echo their input: here it can be a secret the loader has just resolved.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def _secrets(value: Any) -> Any:
    """Accept one secret or a list (several valid at once, for rotation without downtime)."""
    return [value] if isinstance(value, str) else value


Secrets = Annotated[list[SecretStr], BeforeValidator(_secrets), Field(min_length=1)]


def _check_non_empty(secrets: list[SecretStr]) -> list[SecretStr]:
    if any(not s.get_secret_value() for s in secrets):
        raise ValueError("secret is empty; an empty secret would let anyone in")
    return secrets


class _Verify(_Spec):
    @field_validator("secret", check_fields=False)
    @classmethod
    def _non_empty(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        return _check_non_empty(secrets)


class TokenVerify(_Verify):
    """A shared token in a header, or in the `token` query parameter for senders that cannot set headers."""

    type: Literal["token"]
    header: str = "X-Hook-Token"
    query_param: str | None = "token"
    secret: Secrets


_PLACEHOLDER = re.compile(r"\{(\w*)\}")


class HmacVerify(_Verify):
    """An HMAC of the raw body in a header, e.g. `X-Signature: sha256=<hex>`.

    With `timestamp_header`, the signed content includes the sender's timestamp
    (`signed_payload`, default "{timestamp}.{body}") and a request whose
    timestamp is further than `tolerance_seconds` from now, either way, is refused.
    """

    type: Literal["hmac"]
    header: str = "X-Signature"
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    secret: Secrets
    timestamp_header: str | None = None
    timestamp_unit: Literal["s", "ms"] = "s"
    tolerance_seconds: int = Field(300, ge=1, le=86400)
    signed_payload: str | None = Field(None, description='What is signed: "{body}", or e.g. "{timestamp}:{body}".')

    @model_validator(mode="after")
    def _payload_placeholders(self) -> HmacVerify:
        names = _PLACEHOLDER.findall(self.payload_template)
        if "body" not in names or not set(names) <= {"body", "timestamp"}:
            raise ValueError(
                'signed_payload must contain {body} and may contain {timestamp}, e.g. "{timestamp}.{body}"'
            )
        if "timestamp" in names and not self.timestamp_header:
            raise ValueError("signed_payload uses {timestamp}; say where it comes from with timestamp_header")
        return self

    @property
    def payload_template(self) -> str:
        if self.signed_payload is not None:
            return self.signed_payload
        return "{timestamp}.{body}" if self.timestamp_header else "{body}"


def whsec_key(secret: str) -> bytes:
    """A Standard Webhooks secret's key: the base64 after the `whsec_` prefix, decoded.

    Raises:
        ValueError: not base64, or empty.
    """
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError("a standard-webhooks secret is whsec_ followed by base64 (as the sender shows it)") from None
    if not key:
        raise ValueError("secret is empty; an empty secret would let anyone in")
    return key


class StandardWebhooksVerify(_Verify):
    """Standard Webhooks v1: webhook-id, webhook-timestamp, webhook-signature (`v1,<base64>` …)."""

    type: Literal["standard-webhooks"]
    secret: Secrets
    tolerance_seconds: int = Field(300, ge=1, le=86400)

    @field_validator("secret")
    @classmethod
    def _whsec(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        for secret in _check_non_empty(secrets):
            whsec_key(secret.get_secret_value())
        return secrets


class XeroVerify(_Verify):
    """Xero: base64 HMAC-SHA256 of the body with the webhook key, in x-xero-signature."""

    type: Literal["xero"]
    secret: Secrets


class IntuitVerify(_Verify):
    """QuickBooks Online: base64 HMAC-SHA256 of the body with the app's verifier token, in intuit-signature."""

    type: Literal["intuit"]
    secret: Secrets


class BasicVerify(_Spec):
    """HTTP Basic auth; several passwords may be valid at once (rotation)."""

    type: Literal["basic"]
    username: str = Field(min_length=1)
    password: Secrets

    @field_validator("password")
    @classmethod
    def _non_empty(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        return _check_non_empty(secrets)


class NoVerify(_Spec):
    """Anyone may post. Only for sources that carry nothing worth forging."""

    type: Literal["none"]


def _verify_shorthand(value: Any) -> Any:
    return {"type": "none"} if value == "none" else value


AnyVerify = TokenVerify | HmacVerify | StandardWebhooksVerify | XeroVerify | IntuitVerify | BasicVerify | NoVerify
Verify = Annotated[AnyVerify, BeforeValidator(_verify_shorthand), Field(discriminator="type")]

# Headers each verify type reads its credential from (lower-cased), never stored.
_CREDENTIAL_HEADERS: dict[str, tuple[str, ...]] = {
    "standard-webhooks": ("webhook-signature", "svix-signature"),
    "xero": ("x-xero-signature",),
    "intuit": ("intuit-signature",),
    "basic": ("authorization",),
}


class AckSpec(_Spec):
    """How an accepted delivery is answered, for senders that insist (Xero: 200 with an empty body)."""

    status: Literal[200, 202] = 202
    body: Literal["json", "empty"] = "json"


class RateLimitSpec(_Spec):
    """Authenticated requests this source may make: `per_second` on average, `burst` at once (0: no limit)."""

    per_second: float = Field(ge=0)
    burst: int = Field(50, ge=1)


class SourceSpec(_Spec):
    """One inbound endpoint, served at /hooks/<name>."""

    preset: str | None = Field(None, description="A sender preset: " + ", ".join(PRESETS) + ".")
    secret: Secrets | None = Field(None, description="With a preset: the sender's key (becomes verify.secret).")
    verify: Verify
    event_type: str | None = Field(None, description="Literal or template over body, headers, query.")
    event_id: str | None = Field(
        None, description="Dedupe key template; default: the preset's, else SHA-256 of the body."
    )
    max_body_bytes: int | None = Field(None, ge=1, description="Overrides the global body limit.")
    field_names: dict[str, str] = Field(
        default_factory=dict, description="Rename event.data fields: {<sender's key>: <name workflows use>}."
    )
    sniff_json: bool = Field(False, description="Parse a JSON-looking body as JSON whatever its Content-Type says.")
    ack: AckSpec = AckSpec()
    rate_limit: RateLimitSpec | None = Field(
        None, description="Default: a preset's 10/s (burst 100), else INBOUND_RATE_LIMIT_* (50/s, burst 500)."
    )
    run_workflows: list[str] = Field(
        default_factory=list, description="Workflows this caller may also start via POST /api/workflows/<name>/run."
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, raw: Any) -> Any:
        """Fill in the preset's keys under the ones written in sources.yaml."""
        if not isinstance(raw, dict):
            return raw
        verify = raw.get("verify")
        name = raw.get("preset")
        if name is None and isinstance(verify, dict):
            name = PRESET_FOR_VERIFY.get(verify.get("type"))  # type: ignore[arg-type]
        if name is None:
            if raw.get("secret") is not None:
                raise ValueError("secret: at the source level goes with a preset; otherwise write it inside verify")
            return raw
        preset = PRESETS.get(name) if isinstance(name, str) else None
        if preset is None:
            raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
        merged = {"rate_limit": RATE_LIMIT, **preset.source, **raw, "preset": name}
        if verify is None:
            if raw.get("secret") is None:
                raise ValueError(f'preset {name} needs the sender\'s key: secret: "${{VAR}}" (or write a verify:)')
            merged["verify"] = {**preset.verify, "secret": raw["secret"]}
        elif raw.get("secret") is not None:
            raise ValueError("give the secret once: at the source level (the preset's verify) or inside verify")
        return merged

    @model_validator(mode="after")
    def _runs_need_a_credential(self) -> SourceSpec:
        if self.run_workflows and isinstance(self.verify, NoVerify):
            raise ValueError("run_workflows lets this caller start workflows: it needs a verify, not none")
        return self

    @property
    def secret_headers(self) -> set[str]:
        """Lower-cased header names that carry this source's credentials (never stored)."""
        header = getattr(self.verify, "header", None)
        named = {header.lower()} if header else set()
        return named | set(_CREDENTIAL_HEADERS.get(self.verify.type, ()))
