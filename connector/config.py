"""The settings tree: one frozen model, loaded from YAML plus ``GCAL_KAFKA_*`` overrides.

Every field has a description; ``docs/configuration.md`` is generated from them
(``connector.config_docs``). Loading and error reporting live in ``connector.config_load``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "GCAL_KAFKA_"
READONLY_SCOPE = "https://www.googleapis.com/auth/calendar.readonly"

KafkaConf = dict[str, str | int | float | bool]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicSettings(_Model):
    prefix: str = Field("", description="Prefix put before every topic name below.")
    events: str = Field("gcal.events", description="Change events topic.")
    checkpoints: str = Field("gcal.checkpoints", description="Checkpoint topic (always compacted).")
    dead_letter: str = Field(
        "gcal.events.dlq", description="Dead-letter topic for unmappable items."
    )
    signals: str = Field(
        "gcal.signals", description="Operator signals (resync requests) read by the connector."
    )
    partitions: int = Field(6, ge=1, le=10000, description="Partitions of topics it creates.")
    replication_factor: int = Field(
        1, ge=1, le=32, description="Replication factor of topics it creates (3 in production)."
    )
    events_config: dict[str, str] = Field(
        default_factory=lambda: {"cleanup.policy": "compact"},
        description="Topic configs for the events topic when it is created.",
    )
    checkpoints_config: dict[str, str] = Field(
        default_factory=dict,
        description="Extra topic configs for the checkpoint topic (cleanup.policy is forced).",
    )
    dead_letter_config: dict[str, str] = Field(
        default_factory=lambda: {"cleanup.policy": "delete", "retention.ms": "1209600000"},
        description="Topic configs for the dead-letter topic when it is created.",
    )
    create: bool = Field(True, description="Create missing topics at start-up.")

    def name(self, topic: str) -> str:
        return f"{self.prefix}{topic}"


class SchemaRegistrySettings(_Model):
    url: str | None = Field(
        None,
        description="Schema Registry URL. When set, keys and values use the Confluent wire "
        "format; when unset, Avro single-object encoding.",
    )
    basic_auth_user_info: SecretStr | None = Field(
        None, description="`user:password` for the registry (a secret)."
    )
    auto_register_schemas: bool = Field(
        True, description="Register schemas on first use (turn off in production)."
    )
    use_latest_version: bool = Field(
        False, description="Encode with the subject's latest registered version."
    )


class DeliverySettings(_Model):
    mode: Literal["exactly_once", "at_least_once"] = Field(
        "exactly_once",
        description="`exactly_once` writes each page and its checkpoint in one Kafka "
        "transaction. `at_least_once` is for brokers without transactions: duplicates possible.",
    )
    tombstones: bool = Field(True, description="Follow each deletion with a tombstone.")
    transaction_timeout_ms: int = Field(
        60000, ge=1000, description="transaction.timeout.ms of the transactional producer."
    )


class GoogleSettings(_Model):
    api_endpoint: str | None = Field(
        None,
        description="Calendar API base URL; unset means Google. For the bundled emulator: "
        "`http://127.0.0.1:8085/calendar/v3/`.",
    )
    token_uri: str | None = Field(
        None, description="OAuth token endpoint override (the emulator's `/token`)."
    )
    request_timeout_seconds: float = Field(30.0, gt=0, description="Per-request timeout.")
    requests_per_minute_per_account: int = Field(
        600, ge=1, description="Client-side budget below Google's per-user quota."
    )
    requests_per_minute: int = Field(
        10000, ge=1, description="Client-side budget below Google's per-project quota."
    )


class SyncOptions(_Model):
    single_events: bool = Field(
        False, description="Expand recurring series into instances (`singleEvents`)."
    )
    event_types: tuple[str, ...] = Field(
        (), description="`eventTypes` filter, kept identical on every call; empty means all."
    )
    full_sync_window_days: int | None = Field(
        None,
        ge=1,
        description="Full passes fetch only events ending in the last N days (`timeMin`); "
        "unset means all history.",
    )
    time_zone: str | None = Field(None, description="`timeZone` to render times in.")
    poll_interval_seconds: float = Field(
        300.0, gt=0, description="Incremental pass interval (safety poll when push works)."
    )

    @field_validator("event_types")
    @classmethod
    def _known_event_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = {"birthday", "default", "focusTime", "fromGmail", "outOfOffice", "workingLocation"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {sorted(known)}")
        return tuple(sorted(set(value)))


class CredentialSettings(_Model):
    kind: Literal["authorized_user", "service_account"] = Field(
        description="`authorized_user` (OAuth refresh-token file) or `service_account` "
        "(key file with domain-wide delegation)."
    )
    path: Path = Field(description="Path of the credentials JSON file (a secret; mount it).")
    subjects: tuple[str, ...] = Field(
        (), description="Users to impersonate (service accounts): one account each."
    )
    scopes: tuple[str, ...] = Field((READONLY_SCOPE,), description="OAuth scopes requested.")


class CalendarFilter(_Model):
    ids: tuple[str, ...] = Field((), description="Calendar ids (exact match).")
    access_roles: tuple[str, ...] = Field(
        (), description="Access roles, e.g. `owner`, `writer`, `reader`, `freeBusyReader`."
    )
    kinds: tuple[Literal["holiday", "birthday", "import", "group", "user"], ...] = Field(
        (), description="Calendar kinds derived from the id."
    )


class AccountSettings(_Model):
    name: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9._@+-]+$",
        description="Stable account label; part of every stream id (do not rename).",
    )
    credentials: CredentialSettings = Field(description="How to authenticate.")
    calendars: Literal["all"] | tuple[str, ...] = Field(
        ("primary",),
        description="`all` (from calendarList) or a list of calendar ids (`primary` allowed).",
    )
    include: CalendarFilter | None = Field(
        None, description="With `all`: keep only calendars matching this filter."
    )
    exclude: CalendarFilter = Field(
        default_factory=lambda: CalendarFilter(kinds=("holiday", "birthday")),
        description="With `all`: drop calendars matching this filter.",
    )
    sync: SyncOptions | None = Field(None, description="Overrides of the default sync options.")


class MetricsSettings(_Model):
    enabled: bool = Field(True, description="Serve /metrics, /healthz and /readyz.")
    host: str = Field("127.0.0.1", description="Listen address.")
    port: int = Field(9464, ge=0, le=65535, description="Listen port (0 picks a free one).")
    stream_labels: bool = Field(
        False, description="Add a per-stream label to metrics (high cardinality)."
    )


class WebhookSettings(_Model):
    enabled: bool = Field(False, description="Open push channels and listen for notifications.")
    host: str = Field("0.0.0.0", description="Listen address of the webhook listener.")
    port: int = Field(8088, ge=0, le=65535, description="Listen port of the webhook listener.")
    public_url: str | None = Field(
        None, description="The https URL Google calls (http allowed for loopback only)."
    )
    secret: SecretStr | None = Field(
        None, description="Secret from which per-channel tokens are derived (a secret)."
    )
    channel_ttl_seconds: int = Field(604800, ge=60, description="Requested channel lifetime.")
    renew_before_seconds: int = Field(
        86400, ge=10, description="Renew a channel this long before it expires."
    )
    healthy_poll_seconds: float = Field(
        3600.0,
        gt=0,
        description="Safety poll of a stream whose channel is healthy (Google drops some "
        "notifications); without a working channel, `sync.poll_interval_seconds` applies.",
    )


class LoggingSettings(_Model):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["json", "text"] = Field("json", description="Structured JSON or plain text.")


def _default_kafka() -> KafkaConf:
    return {"bootstrap.servers": "127.0.0.1:9092"}


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    name: str = Field(
        "gcal-kafka",
        min_length=1,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Connector name: transactional id and consumer group prefix.",
    )
    kafka: KafkaConf = Field(
        default_factory=_default_kafka,
        description="librdkafka settings passed through to producers and consumers.",
    )
    topics: TopicSettings = Field(default_factory=TopicSettings, description="Topics.")
    schema_registry: SchemaRegistrySettings = Field(
        default_factory=SchemaRegistrySettings, description="Optional Schema Registry."
    )
    delivery: DeliverySettings = Field(
        default_factory=DeliverySettings, description="Delivery guarantee."
    )
    google: GoogleSettings = Field(default_factory=GoogleSettings, description="Google API.")
    sync: SyncOptions = Field(
        default_factory=SyncOptions, description="Default sync options of every calendar."
    )
    accounts: tuple[AccountSettings, ...] = Field((), description="Accounts to sync.")
    workers: Annotated[int, Field(ge=1, le=256)] = Field(
        8, description="Worker threads fetching from Google."
    )
    decode_processes: Annotated[int, Field(ge=0, le=64)] = Field(
        1,
        description="Processes that decode large pages from Google (64 KiB or more: full "
        "syncs) and write their events' Avro bodies, beside the worker threads and their one "
        "GIL; 0 does it all in the worker threads.",
    )
    calendar_list_refresh_seconds: float = Field(
        900.0,
        gt=0,
        description="How often accounts with `calendars: all` re-read their calendar list "
        "(with push on, a calendarList channel also triggers it).",
    )
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, description="Metrics.")
    webhook: WebhookSettings = Field(default_factory=WebhookSettings, description="Push.")
    logging: LoggingSettings = Field(default_factory=LoggingSettings, description="Logging.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; the environment overrides it.
        return (env_settings, init_settings)

    def sync_options_for(self, account: AccountSettings) -> SyncOptions:
        """The defaults, with what the account sets explicitly laid over them."""
        if account.sync is None:
            return self.sync
        return self.sync.model_copy(update=account.sync.model_dump(exclude_unset=True))
