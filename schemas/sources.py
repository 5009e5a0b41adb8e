"""sources.yaml: who may POST to /hooks/<source> and how their events are keyed.

A source must say how it is verified; "verify: none" has to be written out, so
an unauthenticated endpoint is always a visible decision. Secret values here are
already resolved from `${VAR}` references by the loader.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _secrets(value: Any) -> Any:
    """Accept one secret or a list (several valid at once, for rotation without downtime)."""
    return [value] if isinstance(value, str) else value


Secrets = Annotated[list[SecretStr], BeforeValidator(_secrets), Field(min_length=1)]


class _Verify(_Spec):
    @field_validator("secret", check_fields=False)
    @classmethod
    def _non_empty(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        if any(not s.get_secret_value() for s in secrets):
            raise ValueError("secret is empty; an empty secret would let anyone in")
        return secrets


class TokenVerify(_Verify):
    """A shared token in a header, or in the `token` query parameter for senders that cannot set headers."""

    type: Literal["token"]
    header: str = "X-Hook-Token"
    query_param: str | None = "token"
    secret: Secrets


class HmacVerify(_Verify):
    """An HMAC of the raw body in a header, e.g. `X-Signature: sha256=<hex>`."""

    type: Literal["hmac"]
    header: str = "X-Signature"
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    secret: Secrets


class NoVerify(_Spec):
    """Anyone may post. Only for sources that carry nothing worth forging."""

    type: Literal["none"]


def _verify_shorthand(value: Any) -> Any:
    return {"type": "none"} if value == "none" else value


Verify = Annotated[
    TokenVerify | HmacVerify | NoVerify,
    BeforeValidator(_verify_shorthand),
    Field(discriminator="type"),
]


class SourceSpec(_Spec):
    """One inbound endpoint, served at /hooks/<name>."""

    verify: Verify
    event_type: str | None = Field(None, description="Literal or template over body, headers, query.")
    event_id: str | None = Field(None, description="Dedupe key template; default: SHA-256 of the raw body.")
    max_body_bytes: int | None = Field(None, ge=1, description="Overrides the global body limit.")

    @property
    def secret_headers(self) -> set[str]:
        """Lower-cased header names that carry this source's credentials (never stored)."""
        header = getattr(self.verify, "header", None)
        return {header.lower()} if header else set()
