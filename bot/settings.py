"""Configuration: environment variables (and ./.env) -> one validated Settings.

The variable names are fblink's public contract. A bad or missing value stops
start-up with one line that names the variable and says what it should hold.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.crypto import split_keys
from bot.logs import register_secrets


class SettingsError(Exception):
    """Configuration is missing or malformed; the message names the variable. ``problems`` has
    one line per variable found wrong (the message is the first), for `fblink check-config`."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


# Facebook ends an app's data access 90 days after the user was last active; a link
# cannot be trusted for longer than that without the user logging in again.
DATA_ACCESS_DAYS = 90


def _http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False)

    slack_bot_token: str | None = Field(default=None, description="bot token (xoxb-)")  # one workspace
    slack_client_id: str | None = Field(default=None, description="the Slack app's client id")  # many workspaces
    slack_client_secret: str | None = Field(default=None, description="the Slack app's client secret")
    slack_signing_secret: str | None = Field(default=None, description="request signing secret")
    slack_app_token: str | None = Field(default=None, description="app-level token (xapp-) for Socket Mode")
    slack_api_url: str = "https://slack.com/api/"

    facebook_app_id: str = Field(description="the Meta app id")
    facebook_app_secret: str = Field(description="the Meta app secret")
    facebook_api_version: str = "v25.0"
    facebook_graph_url: str = "https://graph.facebook.com"
    facebook_login_url: str = "https://www.facebook.com"
    facebook_login_config_id: str | None = None

    # Single-workspace mode's one Vonage key; in distributed mode each workspace adds its own (ignored here).
    vonage_api_key: str | None = Field(default=None, validate_default=True, description="the default Vonage API key")
    vonage_api_secret: str | None = Field(
        default=None, validate_default=True, description="the default Vonage API secret"
    )
    vonage_api_url: str = "https://api.nexmo.com"

    fblink_public_url: str = Field(description="the URL where browsers reach the bot")
    fblink_database: str = "fblink.db"  # SQLite, the embedded default
    fblink_database_url: str | None = Field(
        default=None, description="postgresql://user:password@host:5432/dbname (PostgreSQL instead of SQLite)"
    )
    fblink_db_pool_size: int = Field(default=10, ge=1, le=200)  # PostgreSQL connections per process, at most
    fblink_db_connect_timeout: float = Field(default=5.0, gt=0, le=120)  # seconds to connect, or to wait for the pool
    fblink_db_statement_timeout: float = Field(default=30.0, ge=0, le=3600)  # seconds; 0 leaves the server's
    fblink_db_prepared_statements: bool = True  # false behind transaction-mode PgBouncer older than 1.21
    fblink_secret_key: str = Field(
        description="a Fernet key (run `fblink gen-key`); during a rotation several, comma-separated, newest first"
    )
    fblink_admins: str = ""
    fblink_link_ttl_days: int = Field(default=90, ge=1)
    fblink_sweep_minutes: int = Field(default=15, ge=1, le=1440)
    fblink_reminder_days: str = "14,7,3,1"
    fblink_reminder_channel: str | None = None
    fblink_log_format: Literal["plain", "json"] = "plain"
    fblink_log_level: str = "INFO"
    fblink_http_timeout: float = Field(default=10.0, gt=0, le=120)
    fblink_retry_attempts: int = Field(default=4, ge=1, le=10)
    fblink_retry_wait: float = Field(default=0.3, ge=0, le=30)
    fblink_retry_total: float = Field(default=20.0, gt=0, le=300)
    fblink_metrics_token: str | None = Field(default=None, description="bearer token /metrics requires")
    fblink_reminder_max_attempts: int = Field(default=6, ge=1, le=100)  # failed posts before escalating
    fblink_retention_days: int = Field(default=400, ge=30, le=36500)  # audit and finished reminder rows
    fblink_probe_concurrency: int = Field(default=8, ge=1, le=100)  # token probes in flight at once
    fblink_probe_budget: float = Field(default=120.0, gt=0, le=3600)  # seconds of probing per sweep
    fblink_channel_gap: float = Field(default=1.0, ge=0, le=60)  # seconds between reminder posts to one channel

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not v.startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return v

    @field_validator("slack_client_id", "slack_client_secret")
    @classmethod
    def _client(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not v.startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return v

    @field_validator("vonage_api_key", "vonage_api_secret")
    @classmethod
    def _vonage(cls, v: str | None, info: ValidationInfo) -> str | None:
        """Required with one workspace; in distributed mode each workspace adds its own keys."""
        if v:
            return v
        if info.data.get("slack_client_id") or info.data.get("slack_client_secret"):
            return None
        field = cls.model_fields[str(info.field_name)]
        raise ValueError(f"missing; set it to {field.description}")

    @field_validator("slack_api_url", "facebook_graph_url", "facebook_login_url", "vonage_api_url", "fblink_public_url")
    @classmethod
    def _urls(cls, v: str, info: ValidationInfo) -> str:
        return _http_url(v, info.field_name or "url")

    @field_validator("facebook_api_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not re.fullmatch(r"v\d+\.\d+", v):
            raise ValueError("must look like v25.0")
        return v

    @field_validator("fblink_secret_key")
    @classmethod
    def _fernet(cls, v: str) -> str:
        keys = split_keys(v)
        if not keys:
            raise ValueError("must be a Fernet key (32 url-safe base64-encoded bytes); `fblink gen-key` prints one")
        for n, key in enumerate(keys, 1):
            try:
                Fernet(key.encode())
            except (ValueError, TypeError):
                which = f"key {n} of {len(keys)} is not" if len(keys) > 1 else "must be"
                # Never echo the value: it is (or is close to) a secret.
                raise ValueError(
                    f"{which} a Fernet key (32 url-safe base64-encoded bytes); `fblink gen-key` prints one"
                ) from None
        if len(set(keys)) != len(keys):
            raise ValueError("lists the same key twice")
        return v

    @field_validator("fblink_metrics_token")
    @classmethod
    def _metrics_token(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if len(v) < 16 or not re.fullmatch(r"[\x21-\x7e]+", v):
            raise ValueError("must be at least 16 printable characters without spaces")
        return v

    @field_validator("fblink_link_ttl_days")
    @classmethod
    def _ttl(cls, v: int) -> int:
        if v > DATA_ACCESS_DAYS:
            raise ValueError(
                f"must be at most {DATA_ACCESS_DAYS} days: Facebook ends data access "
                f"{DATA_ACCESS_DAYS} days after the user was last active, so a longer link could not be renewed"
            )
        return v

    @field_validator("fblink_reminder_days")
    @classmethod
    def _days(cls, v: str) -> str:
        try:
            days = [int(x) for x in v.split(",") if x.strip()]
        except ValueError:
            raise ValueError("must be comma-separated whole numbers of days, e.g. 14,7,3,1") from None
        if not days or any(d < 1 or d > 365 for d in days):
            raise ValueError("must be comma-separated days between 1 and 365, e.g. 14,7,3,1")
        return v

    @field_validator("fblink_database_url")
    @classmethod
    def _database_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not re.match(r"postgres(ql)?://", v):
            raise ValueError("must be a PostgreSQL URL: postgresql://user:password@host:5432/dbname")
        return v

    @field_validator("fblink_admins")
    @classmethod
    def _admins(cls, v: str) -> str:
        for uid in (x.strip() for x in v.split(",") if x.strip()):
            if not re.fullmatch(r"[UW][A-Z0-9]{2,}", uid):
                raise ValueError(f"must be comma-separated Slack user ids like U012ABCDEF, got {uid!r}")
        return v

    @model_validator(mode="after")
    def _mode(self) -> Settings:
        self._slack_mode()
        if not self.slack_app_token and not self.slack_signing_secret:
            raise ValueError("SLACK_SIGNING_SECRET: required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)")
        too_late = [d for d in self.reminder_days if d >= self.fblink_link_ttl_days]
        if too_late:
            # A reminder at or past the whole lifetime would count every fresh login as too old to re-link.
            raise ValueError(
                f"FBLINK_REMINDER_DAYS: every value must be below FBLINK_LINK_TTL_DAYS "
                f"({self.fblink_link_ttl_days}); {', '.join(map(str, sorted(too_late)))} "
                f"{'is' if len(too_late) == 1 else 'are'} not"
            )
        if self.fblink_probe_budget >= self.fblink_sweep_minutes * 60:
            # Probes run inside a sweep; a budget as long as the interval would make sweeps overlap (and skip).
            raise ValueError(
                f"FBLINK_PROBE_BUDGET ({self.fblink_probe_budget:g} s) must be shorter than "
                f"FBLINK_SWEEP_MINUTES ({self.fblink_sweep_minutes} min)"
            )
        # Configured secrets are redacted from every log line by value, whatever their context.
        register_secrets(
            [
                self.slack_bot_token,
                self.slack_client_secret,
                self.slack_signing_secret,
                self.slack_app_token,
                self.facebook_app_secret,
                self.vonage_api_secret,
                self.fblink_metrics_token,
                _password(self.fblink_database_url),
                *split_keys(self.fblink_secret_key),
            ]
        )
        return self

    def _slack_mode(self) -> None:
        """One workspace (SLACK_BOT_TOKEN) or many (SLACK_CLIENT_ID + SLACK_CLIENT_SECRET), never both."""
        distributed = bool(self.slack_client_id or self.slack_client_secret)
        if self.slack_bot_token and distributed:
            raise ValueError(
                "SLACK_BOT_TOKEN and SLACK_CLIENT_ID/SLACK_CLIENT_SECRET are both set: choose one. SLACK_BOT_TOKEN runs"
                " fblink in the one workspace that token belongs to; SLACK_CLIENT_ID and SLACK_CLIENT_SECRET make it"
                " installable in many (Add to Slack, a token per workspace). With both, a request from another"
                " workspace would be answered with the one workspace's token"
            )
        if distributed and not self.slack_client_secret:
            raise ValueError(
                "SLACK_CLIENT_SECRET: missing; distributed mode needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET"
            )
        if distributed and not self.slack_client_id:
            raise ValueError("SLACK_CLIENT_ID: missing; distributed mode needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
        if not self.slack_bot_token and not distributed:
            raise ValueError(
                "SLACK_BOT_TOKEN: missing; set it to a bot token (xoxb-) for one workspace, or set"
                " SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install fblink in many"
            )
        if distributed and self.fblink_reminder_channel:
            raise ValueError(
                "FBLINK_REMINDER_CHANNEL: unset it in distributed mode; a channel belongs to one workspace, so each"
                " workspace picks its own default with `/fblink remind #channel`"
            )
        if distributed and self.slack_app_token:
            raise ValueError(
                "SLACK_APP_TOKEN: unset it in distributed mode; installs, OAuth redirects and the Marketplace"
                " need Slack over HTTP (SLACK_SIGNING_SECRET)"
            )

    # -- derived values ------------------------------------------------------
    @property
    def ignored(self) -> list[str]:
        """Variables set but unused in this mode (`fblink check-config` says so)."""
        if not self.distributed:
            return []
        unused = [("VONAGE_API_KEY", self.vonage_api_key), ("VONAGE_API_SECRET", self.vonage_api_secret)]
        unused.append(("FBLINK_ADMINS", self.fblink_admins))
        return [name for name, value in unused if value]

    @property
    def distributed(self) -> bool:
        """Installed through "Add to Slack" into many workspaces (SLACK_CLIENT_ID + SLACK_CLIENT_SECRET)."""
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def admins(self) -> frozenset[str]:
        return frozenset(x.strip() for x in self.fblink_admins.split(",") if x.strip())

    @property
    def reminder_days(self) -> tuple[int, ...]:
        return tuple(sorted({int(x) for x in self.fblink_reminder_days.split(",") if x.strip()}, reverse=True))

    @property
    def redirect_uri(self) -> str:
        return self.fblink_public_url.rstrip("/") + "/facebook/callback"

    @property
    def database(self) -> str:
        """Where the store lives: the PostgreSQL URL when one is set, else the SQLite file."""
        return self.fblink_database_url or self.fblink_database

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)


def _password(url: str | None) -> str | None:
    """The password inside a database URL (redacted from logs like the other secrets)."""
    m = re.match(r"[a-z]+://[^:/@]*:([^@]*)@", url or "")
    return m.group(1) if m and m.group(1) else None


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment (and .env), or raise SettingsError with one line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # values are validated by pydantic at run time
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()]
        raise SettingsError(problems[0], problems) from None


def _problem(err: Any) -> str:
    """One line for one validation error, naming the variable."""
    loc: tuple[Any, ...] = tuple(err.get("loc") or ())
    name = str(loc[0]).upper() if loc else ""
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "missing":
        field = Settings.model_fields.get(str(loc[0]))
        what = field.description if field and field.description else "a value"
        return f"{name}: missing; set it to {what}"
    return f"{name}: {msg}" if name else msg
