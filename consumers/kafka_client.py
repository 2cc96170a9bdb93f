"""The security options every Kafka client of a process takes: SASL and TLS from the settings.

Each entry point calls `use_security(settings)` once, before it makes any client; every place
that makes a producer, a consumer or an admin client passes `**kafka_options()`. A process
wide choice, like its logging set-up: one process talks to one cluster, and threading the
options through every constructor that today takes a bootstrap address would change twenty
signatures for one fact. docs/settings.md lists the settings.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from dispatch.settings import Settings

_OPTIONS: dict[str, Any] = {}


def security_options(settings: Settings) -> dict[str, Any]:
    """Return the aiokafka keyword arguments of the settings' security protocol."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = tls_context(settings)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        password = settings.kafka_sasl_password
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }
    return options


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Return a TLS context that verifies the brokers (the given CA, else the system's)."""

    def path(value: object) -> str | None:
        return None if value is None else str(value)

    context: ssl.SSLContext = create_ssl_context(
        cafile=path(settings.kafka_ssl_cafile),
        certfile=path(settings.kafka_ssl_certfile),
        keyfile=path(settings.kafka_ssl_keyfile),
    )
    return context


def use_security(settings: Settings) -> None:
    """Make the settings' security options those of every Kafka client of this process."""
    _OPTIONS.clear()
    _OPTIONS.update(security_options(settings))


def kafka_problem(settings: Settings) -> str | None:
    """Set this process's Kafka security from the settings (use_security); return why it
    cannot be (a certificate or key that does not load), else None."""
    try:
        use_security(settings)
    except (OSError, ssl.SSLError) as exc:
        return f"cannot set up TLS for Kafka: {exc}"
    return None


def kafka_options() -> dict[str, Any]:
    """Return the security options of this process's Kafka clients (none: PLAINTEXT)."""
    return dict(_OPTIONS)
