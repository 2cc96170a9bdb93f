"""Bring the whole local stack up or down, honouring an externally configured Kafka or Postgres."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dispatch.settings import Settings
from infra.errors import InfraError
from infra.kafka import KafkaBroker
from infra.postgres import PostgresServer
from infra.processes import Say, ServiceStatus, free_port


def private_settings(state_dir: Path, **overrides: Any) -> Settings:
    """Settings for a stack of one's own (tests, benchmarks): this state directory and free
    ports for Kafka and PostgreSQL, beside whatever else runs on the machine."""
    return Settings(
        state_dir=state_dir,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        postgres_port=free_port(),
        **overrides,
    )


def up(settings: Settings, say: Say) -> list[ServiceStatus]:
    """Start what is not configured externally (reusing what runs) and check all are healthy."""
    statuses = [
        KafkaBroker(settings).status()
        if settings.kafka_is_external
        else KafkaBroker(settings).up(say),
        PostgresServer(settings).status()
        if settings.postgres_is_external
        else PostgresServer(settings).up(say),
    ]
    for status in statuses:
        if not status.healthy:
            raise InfraError(f"{status.name} at {status.address} is not healthy: {status.detail}")
    return statuses


def down(settings: Settings, say: Say) -> list[str]:
    """Stop every service this project started; return the names of those stopped."""
    stopped = []
    # Postgres first: it depends on nothing, and Kafka's controlled shutdown takes longer.
    if not settings.postgres_is_external and PostgresServer(settings).down(say):
        stopped.append("postgres")
    if not settings.kafka_is_external and KafkaBroker(settings).down(say):
        stopped.append("kafka")
    return stopped


def status(settings: Settings) -> list[ServiceStatus]:
    """Report every service: running or not, where, healthy or not."""
    return [KafkaBroker(settings).status(), PostgresServer(settings).status()]


def postgres_url(settings: Settings) -> str:
    """Return the PostgreSQL URL in use: the configured one, or the local server's."""
    if settings.postgres_url is not None:
        return settings.postgres_url.get_secret_value()
    return PostgresServer(settings).url()
