"""The one settings object, built in each entry point and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "alarm-dispatch"


class Settings(BaseSettings):
    """Every knob of the system; read from `DISPATCH_*` variables when an entry point builds it."""

    model_config = SettingsConfigDict(
        env_prefix="DISPATCH_", extra="forbid", frozen=True, validate_default=True
    )

    # Where local infrastructure keeps its data, pid files and logs.
    state_dir: Path = Path(".state")
    # Downloaded Kafka jars live here, outside the repo, so a second start needs no network.
    cache_dir: Path = Field(default_factory=_default_cache_dir)

    # Kafka: when kafka_bootstrap is set, that cluster is used and nothing is started.
    kafka_bootstrap: str | None = None
    kafka_host: str = "127.0.0.1"
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=9093, ge=1, le=65535)
    kafka_partitions: int = Field(default=4, ge=1, le=1024)
    # Replication of the topics the project declares: 1 on the local single node, 3 on a cluster.
    kafka_replication_factor: int = Field(default=1, ge=1, le=16)
    kafka_heap: str = Field(default="768m", pattern=r"^\d+[kmg]$")
    # A Maven mirror to fetch the jars from instead of Maven Central.
    maven_repository_url: str | None = None
    # How every Kafka client of the services authenticates and encrypts (docs/settings.md):
    # a cluster of a deployment asks for SASL and/or TLS; the local broker speaks PLAINTEXT.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # TLS: the CA that signed the brokers' certificates (else the system's), and a client
    # certificate and key when the brokers ask for one.
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None

    # PostgreSQL: when postgres_url is set, that server is used and nothing is started.
    postgres_url: SecretStr | None = None
    postgres_host: str = "127.0.0.1"
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    postgres_db: str = Field(default="dispatch", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    postgres_user: str = Field(default="dispatch", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # Generated on first start and kept in the state directory when not given.
    postgres_password: SecretStr | None = None

    # The zone (grids, places, units) to dispatch in; None means the shipped Suizhou demo zone.
    zone_file: Path | None = None
    # The classification rules; None means the shipped rules (dispatch/classify/data/rules.toml).
    rules_file: Path | None = None

    # The gateway: HTTP intake API and the websocket push server.
    gateway_host: str = "127.0.0.1"
    intake_port: int = Field(default=8080, ge=1, le=65535)
    push_port: int = Field(default=8081, ge=1, le=65535)
    # Larger request bodies are refused with 413 before they are read.
    # A hotline transcript of 20,000 Chinese characters is about 60 KB of UTF-8, up to twice
    # that JSON-escaped.
    intake_max_body_bytes: int = Field(default=131_072, ge=1024, le=1_048_576)
    # Requests (intake) or messages (push) per principal per minute before 429.
    rate_limit_per_minute: int = Field(default=120, ge=1, le=100_000)
    push_heartbeat_s: float = Field(default=20.0, gt=0, le=300)
    # Messages waiting for one slow connection before it is dropped (it reconnects and resumes).
    push_queue_limit: int = Field(default=256, ge=1, le=100_000)
    # The push gateway freezes what survives its older-generation garbage collections, so no
    # full collection walks the long-lived connection state (consumers/push/gc_tuning.py); a
    # sweep unfreezes and collects everything every push_gc_sweep_interval_s (0: never).
    push_gc_freeze: bool = True
    push_gc_sweep_interval_s: float = Field(default=3600.0, ge=0)

    # The web pages the push gateway serves (docs/pages.md). The intake API as the pages'
    # browsers reach it (None: http://gateway_host:intake_port), and the origins the pages are
    # served from, which intake lets call it (comma-separated; None: the gateway's own address).
    # Where the built pages are (None: web/dist of this checkout; the image sets its own).
    pages_dir: Path | None = None
    pages_intake_url: str | None = None
    pages_origins: str | None = None
    # Base map tiles drawn under the zone ({z}/{x}/{y} URL template; None: the zone alone,
    # which needs no internet), and their attribution.
    map_tile_url: str | None = None
    map_tile_attribution: str = ""

    # Stream workers: a worker that stops heartbeating loses its partitions to the other
    # members after this long (docs/reliability.md); Kafka's brokers accept 6 s at the least
    # by default (group.min.session.timeout.ms).
    stream_session_timeout_s: float = Field(default=6.0, ge=1, le=300)
    stream_heartbeat_interval_s: float = Field(default=1.0, gt=0, le=60)
    # Where a stream worker answers /healthz and /readyz (0: no probe server; `dispatch run`
    # gives each worker its own port from here upward).
    stream_probe_port: int = Field(default=8090, ge=0, le=65535)
    # Worker processes `dispatch run` starts for each of the classify and merge stages (one
    # consumer group per stage: the partitions are split between them, and a worker that dies
    # has its partitions taken over by the others). The route stage always gets one: two route
    # workers could give one unit two jobs (docs/scaling.md).
    stream_workers: int = Field(default=1, ge=1, le=8)

    # The reconciler (docs/reliability.md): an alarm with no decision this long after it was
    # received is published again and shown to the commander as overdue; it looks this often,
    # and reminds the commander this often while the alarm stays undecided.
    reconcile_after_s: float = Field(default=30.0, gt=0, le=3600)
    reconcile_every_s: float = Field(default=5.0, gt=0, le=600)
    reconcile_remind_every_s: float = Field(default=300.0, gt=0, le=86_400)
    # Where the reconciler answers /healthz and /readyz (0: no probe server).
    reconciler_probe_port: int = Field(default=8093, ge=0, le=65535)

    # The sink (docs/record.md): its consumer group, the most records it reads in one poll (a
    # write takes what was read while the previous one ran, up to twice this), and where it
    # answers /healthz and /readyz (0: no probe server).
    sink_group: str = Field(default="alarm-dispatch-sink", pattern=r"^[A-Za-z0-9._-]{1,200}$")
    sink_batch_max: int = Field(default=5000, ge=1, le=100_000)
    sink_probe_port: int = Field(default=8094, ge=0, le=65535)

    startup_timeout_s: float = Field(default=90.0, gt=0)

    @model_validator(mode="after")
    def _kafka_credentials(self) -> Self:
        if self.kafka_security_protocol.startswith("SASL") and (
            not self.kafka_sasl_username or self.kafka_sasl_password is None
        ):
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs "
                "DISPATCH_KAFKA_SASL_USERNAME and DISPATCH_KAFKA_SASL_PASSWORD"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("DISPATCH_KAFKA_SSL_CERTFILE and _KEYFILE go together")
        return self

    @property
    def kafka_is_external(self) -> bool:
        """Tell whether a Kafka cluster was configured instead of the local broker."""
        return self.kafka_bootstrap is not None

    @property
    def postgres_is_external(self) -> bool:
        """Tell whether a PostgreSQL server was configured instead of the local one."""
        return self.postgres_url is not None

    @property
    def local_kafka_bootstrap(self) -> str:
        """Return the address of the locally started broker."""
        return f"{self.kafka_host}:{self.kafka_port}"

    @property
    def bootstrap_servers(self) -> str:
        """Return the Kafka bootstrap address in use, external or local."""
        return self.kafka_bootstrap or self.local_kafka_bootstrap
