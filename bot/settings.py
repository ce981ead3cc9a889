"""Configuration: one class that reads the environment and ``.env``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.model.packs import Pack, parse_packs

# Jobs polled at once by default. A process that answers people polls 48: more at once made
# their answers wait longer than 250 ms behind a round. A worker answers nobody: with 128 it
# polls 10,000 jobs within the 15 s interval (9.3–10.6 s on 2 cores, the provider answering in
# 50 ms). 256 was no faster there, and its bursts slowed both a callback's pick-up (p99 5.7 s
# instead of 1.6 s) and an ingress's answers on the same machine (451 ms instead of 126 ms).
ANSWERING_POLLS = 48
WORKER_POLLS = 128

ProviderName = Literal["muapi", "fal", "local"]


def _id_list(value: object) -> object:
    """Accept ``1,2 3`` as well as a JSON list, because operators write both."""
    if isinstance(value, str):
        parts = value.replace(",", " ").split()
        try:
            return [int(p) for p in parts]
        except ValueError as exc:
            raise ValueError("must be Telegram user ids separated by commas") from exc
    return value


class Settings(BaseSettings):
    """Every variable of the configuration table, validated at start-up."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_bot_token: SecretStr
    telegram_api_url: str = "https://api.telegram.org"
    telegram_local_mode: bool = False
    # Telegram calls this https URL with updates (the bot serves its path on WEBHOOK_LISTEN,
    # usually behind a TLS proxy); unset, the bot long-polls.
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0:8080"
    metrics_listen: str | None = None
    # Providers call back under this https URL when a job is done (served on WEBHOOK_LISTEN).
    public_url: str | None = None
    fal_jwks_url: str = "https://rest.alpha.fal.ai/.well-known/jwks.json"
    database_url: str = "sqlite:///data/bot.db"
    data_dir: Path = Path("data")
    video_provider: ProviderName | None = None
    muapi_api_key: SecretStr | None = None
    muapi_base_url: str = "https://api.muapi.ai"
    fal_key: SecretStr | None = None
    fal_queue_url: str = "https://queue.fal.run"
    fal_rest_url: str = "https://rest.fal.ai"
    # An OpenAI-compatible chat endpoint that writes the prompts for text-to-video; without
    # one, word tables do it.
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    # The LLM writes a prompt while the person waits for their card: past this, the tables do.
    llm_timeout_seconds: float = Field(8.0, gt=0, le=60)
    poll_interval_seconds: float = Field(15.0, gt=0)
    audio_poll_interval_seconds: float = Field(10.0, gt=0)
    job_timeout_seconds: float = Field(600.0, gt=0)
    daily_credits: int = Field(500, ge=0)
    timezone: str = "UTC"
    admin_user_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    allowed_user_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # Credit packs for Telegram Stars, "credits:stars,…" (e.g. 100:50,500:200); empty: no buying.
    stars_packs: Annotated[tuple[Pack, ...], NoDecode] = ()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    # Operational knobs beyond the product table; the defaults suit one process on a small VM.
    stall_polls: int = Field(20, ge=2)
    # Unset: WORKER_POLLS in a worker, which answers nobody; ANSWERING_POLLS in a process that
    # also answers people, whose answers share its event loop with every poll.
    max_concurrent_polls: int | None = Field(None, ge=1)
    max_concurrent_deliveries: int = Field(2, ge=1)
    status_edit_interval_seconds: float = Field(5.0, ge=0)
    lease_seconds: float = Field(60.0, gt=0)
    local_studio_height: int = Field(720, ge=144, le=2160)
    poller_tick_seconds: float = Field(1.0, gt=0)
    provider_timeout_seconds: float = Field(60.0, gt=0)
    telegram_upload_timeout_seconds: float = Field(600.0, gt=0)
    telegram_sends_per_second: int = Field(30, ge=1)
    max_running_jobs_per_user: int = Field(2, ge=1)
    download_retry_seconds: float = Field(10.0, ge=0)
    flood_messages: int = Field(20, ge=1)
    flood_window_seconds: float = Field(10.0, gt=0)
    concurrent_updates: int = Field(64, ge=1)
    ffmpeg_binary: str | None = None

    @field_validator("admin_user_ids", "allowed_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        return _id_list(value)

    @field_validator("stars_packs", mode="before")
    @classmethod
    def _packs(cls, value: object) -> object:
        return parse_packs(value) if isinstance(value, str) else value

    @field_validator("llm_base_url", "llm_model", "llm_api_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # ".env" templates carry "LLM_BASE_URL=" lines: empty means "not configured".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        bot_id, _, secret = token.partition(":")
        if not (bot_id.isdigit() and secret):
            raise ValueError("does not look like a BotFather token (digits:letters)")
        return SecretStr(token)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Berlin)") from exc
        return value

    @field_validator(
        "telegram_webhook_url",
        "metrics_listen",
        "public_url",
        "max_concurrent_polls",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("telegram_webhook_url", "public_url")
    @classmethod
    def _https_webhook(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("Telegram and the providers call https only: https://host/path")
        return value.rstrip("/") if value is not None else None

    @field_validator("webhook_listen", "metrics_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("use host:port, e.g. 0.0.0.0:8080")
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_db(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("use sqlite:///path or postgresql://user:password@host:port/database")
        return value

    @field_validator(
        "telegram_api_url",
        "muapi_base_url",
        "fal_queue_url",
        "fal_rest_url",
        "llm_base_url",
        "fal_jwks_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _provider_has_key(self) -> Settings:
        if self.video_provider == "muapi" and self.muapi_api_key is None:
            raise ValueError("VIDEO_PROVIDER=muapi needs MUAPI_API_KEY")
        if self.video_provider == "fal" and self.fal_key is None:
            raise ValueError("VIDEO_PROVIDER=fal needs FAL_KEY")
        if self.telegram_webhook_url is not None:
            secret = self.telegram_webhook_secret
            if secret is None or not re.fullmatch(
                r"[A-Za-z0-9_-]{16,256}", secret.get_secret_value()
            ):
                raise ValueError(
                    "TELEGRAM_WEBHOOK_URL needs TELEGRAM_WEBHOOK_SECRET: 16 to 256 letters, "
                    "digits, _ or - (e.g. from: openssl rand -hex 32)"
                )
        if bool(self.llm_base_url) != bool(self.llm_model):
            raise ValueError("LLM_BASE_URL and LLM_MODEL go together (LLM_API_KEY if it needs one)")
        return self

    @property
    def provider(self) -> ProviderName:
        """The backend in use: explicit choice, else the first provider with a key, else local."""
        if self.video_provider:
            return self.video_provider
        if self.muapi_api_key is not None:
            return "muapi"
        if self.fal_key is not None:
            return "fal"
        return "local"

    @property
    def database_path(self) -> Path:
        """The SQLite file named by DATABASE_URL (``sqlite:///rel`` or ``sqlite:////abs``)."""
        return Path(self.database_url.removeprefix("sqlite:///"))

    @property
    def database_label(self) -> str:
        """DATABASE_URL fit for logs and messages: a PostgreSQL password never shows."""
        if self.database_url.startswith("sqlite:///"):
            return str(self.database_path)
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", self.database_url)

    @property
    def zone(self) -> ZoneInfo:
        """The operator's time zone for daily resets."""
        return ZoneInfo(self.timezone)

    @property
    def download_limit(self) -> int:
        """Largest file the bot may fetch from Telegram."""
        return 2_000_000_000 if self.telegram_local_mode else 20_000_000

    @property
    def upload_limit(self) -> int:
        """Largest file the bot may upload to Telegram."""
        return 2_000_000_000 if self.telegram_local_mode else 50_000_000

    def poll_concurrency(self, answers_people: bool) -> int:
        """How many jobs one process submits or polls at once (``MAX_CONCURRENT_POLLS``)."""
        if self.max_concurrent_polls is not None:
            return self.max_concurrent_polls
        return ANSWERING_POLLS if answers_people else WORKER_POLLS

    def secrets(self) -> list[str]:
        """Every secret value, for log redaction."""
        values = [
            self.telegram_bot_token,
            self.muapi_api_key,
            self.fal_key,
            self.llm_api_key,
            self.telegram_webhook_secret,
        ]
        found = [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
        # A database driver may quote its connection string in an error: its password too.
        password = urlsplit(self.database_url).password
        return found + ([unquote(password)] if password else [])


def describe_error(exc: Exception) -> str:
    """One clear line for a settings error, naming the environment variable."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return f"Configuration error: {exc}"
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]).upper()
        if err["type"] == "missing" and field == "TELEGRAM_BOT_TOKEN":
            lines.append(
                "TELEGRAM_BOT_TOKEN is not set: talk to @BotFather in Telegram, send /newbot, "
                "and put the token it gives you in .env or the environment."
            )
        elif err["type"] == "missing":
            lines.append(f"{field} is required.")
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
            where = f"{field}: " if field else ""
            lines.append(f"{where}{message}")
    return "Configuration error: " + "; ".join(lines)
