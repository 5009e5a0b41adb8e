"""Everything Hookflow reads from its environment, read once by create_app().

Configuration flows one way: env -> Settings -> app.extensions -> constructor
arguments. Nothing else in the code base reads os.environ (the `${VAR}` secrets
of sources.yaml are resolved by the loader from a mapping create_app passes in).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_URL = f"sqlite:///{PROJECT_ROOT / 'instance' / 'hookflow.db'}"
VH3_BASE_URL = "https://api.vh3connect.io/api:YdihQNr3"


class Settings(BaseSettings):
    """Process configuration; field names are the environment variables (case-insensitive)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    redis_url: str = "redis://localhost:6379/0"
    database_url: str = DEFAULT_SQLITE_URL
    sqlite_busy_timeout_ms: int = Field(
        30_000, ge=0, description="How long a SQLite write waits for a lock before the request gets a 503."
    )
    workflows_dir: Path = PROJECT_ROOT / "workflows"
    admin_token: SecretStr | None = None

    bigchange_base_url: str = VH3_BASE_URL
    bigchange_api_key: SecretStr | None = None
    # BigChange publishes no limit (reference notes §2.6); a conservative shared budget per API key.
    bigchange_requests_per_second: float = Field(10.0, ge=0, description="Shared by all workers; 0 disables.")
    bigchange_burst: int = Field(20, ge=1, description="Requests allowed at once before pacing starts.")
    rate_limit_max_wait_seconds: float = Field(
        2.0, ge=0, description="Wait for the budget in place up to this long; longer waits defer the step."
    )

    # --- BigChange legacy web service (services.ashx) ---
    bigchange_webservice_url: str = "https://webservice.bigchange.com/v01/services.ashx"
    bigchange_webservice_username: str | None = None
    bigchange_webservice_password: SecretStr | None = None
    bigchange_webservice_key: SecretStr | None = None

    # --- Lightening (base URL and auth scheme unconfirmed: see docs/connectors/lightening.md) ---
    lightening_base_url: str | None = None
    lightening_token: SecretStr | None = None
    lightening_auth_scheme: str = Field(
        "", description='Authorization is "<scheme> <LIGHTENING_TOKEN>"; empty sends the token as the whole value.'
    )
    lightening_body_encoding: str = Field(
        "json", pattern="^(json|form)$", description="How POST bodies are sent: JSON, or a form (unconfirmed)."
    )
    lightening_array_encoding: str = Field(
        "brackets",
        pattern="^(brackets|repeat|comma)$",
        description="How list filters go in the query: customer_id[]=1&customer_id[]=2, customer_id=1&customer_id=2, "
        "or customer_id=1,2 (unconfirmed).",
    )

    # --- additiv ---
    additiv_base_url: str | None = None
    additiv_token: SecretStr | None = None
    additiv_accept_language: str | None = Field(
        None, pattern=r"^[A-Za-z]{2}(-[A-Za-z0-9]{1,8})*$", description="ISO 639-1 language; unset: the tenant default."
    )
    additiv_routes: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {"<operation>": "METHOD /path/{param}"}: replaces an inferred (unconfirmed) route.',
    )
    additiv_export_query_encoding: str = Field(
        "json",
        pattern="^(json|text)$",
        description="How a contacts export's GraphQL filter is sent: a JSON string, or text/plain (unconfirmed).",
    )

    max_body_bytes: int = Field(1024 * 1024, ge=1, description="Largest webhook body accepted (413 above).")
    queue_name: str = "hookflow"
    http_timeout_seconds: float = Field(30.0, gt=0, description="Per-call timeout for external APIs.")
    step_job_timeout_seconds: int = Field(300, ge=10, description="Hard limit RQ puts on one step job.")
    chain_steps_max: int = Field(
        20,
        ge=1,
        description="Steps one job may run back to back when each next step is due at once (1: a job per step).",
    )

    retry_max_attempts: int = Field(5, ge=1, description="Default attempts for a step without `retry:` (DESIGN.md).")
    retry_initial_seconds: float = Field(
        10.0, ge=0, description="Default first backoff delay (5 attempts from 10 s: >= 75 s of outage covered)."
    )
    retry_max_delay_seconds: float = Field(600.0, ge=0, description="Default backoff ceiling.")

    reconcile_interval_seconds: float = Field(10.0, gt=0, description="How often a worker looks for lost runs.")
    reconcile_grace_seconds: float = Field(
        30.0, ge=0, description="A run untouched for this long with no queued job is re-enqueued."
    )
    foreach_max_items: int = Field(1000, ge=1, description="The most items one foreach step may run.")
    core_http_secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description='JSON {"NAME": "value"}: URLs and header values core.http steps name.'
    )
    core_http_allowed_hosts: str = Field(
        "", description="Comma-separated hosts core.http may call (exact, or *.example.com); empty allows none."
    )
    workflow_reload_seconds: float = Field(2.0, ge=0, description="How often workflow files are checked for edits.")

    # --- Operations ---
    secret_key: SecretStr | None = Field(
        None,
        description="Signs the console's session cookie; unset: derived from ADMIN_TOKEN (changing the token "
        "then logs everyone out).",
    )
    session_cookie_secure: bool = Field(False, description="Send the console cookie over HTTPS only.")
    session_hours: float = Field(12.0, gt=0, description="How long a console login lasts.")
    console_refresh_seconds: float = Field(3.0, gt=0, description="How often pages with active runs refresh.")
    log_format: str = Field("json", pattern="^(json|text)$", description="json: one object per line; text: for people.")
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    failure_webhook_url: str | None = Field(
        None, description="POSTed a JSON summary (Slack-compatible `text`) whenever a run fails."
    )
    failure_webhook_timeout_seconds: float = Field(5.0, gt=0)
    public_url: str | None = Field(None, description="Where people reach the console; links in notifications.")
    metrics_token: SecretStr | None = Field(None, description="If set, /metrics wants Authorization: Bearer <it>.")
    retention_days: int = Field(90, ge=1, description="`flask retention prune` removes history older than this.")
    retention_batch_size: int = Field(500, ge=1, le=10000, description="Runs (or events) deleted per transaction.")

    # --- Inbound ---
    # On by default so one runaway sender cannot starve the others: far above what a form or an accounting
    # system sends, a third of what the workers complete. A load test against one source sets 0 (none).
    inbound_rate_limit_per_second: float = Field(
        50.0, ge=0, description="Limit for sources without `rate_limit:` or a preset (429 above); 0: none."
    )
    inbound_rate_limit_burst: int = Field(500, ge=1, description="Requests such a source may send at once.")
    direct_run_token: SecretStr | None = Field(
        None, description="Bearer token for POST /api/workflows/<name>/run on any workflow (besides ADMIN_TOKEN)."
    )
    direct_run_max_wait_seconds: float = Field(60.0, ge=0, le=300, description="Longest ?wait= a direct run honours.")
