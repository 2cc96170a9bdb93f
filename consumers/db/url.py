"""The database URL a service connects to, from its settings alone.

A deployment sets `DISPATCH_POSTGRES_URL` (docs/settings.md). On a machine where `dispatch run`
or `dispatch infra up` started the local server, the URL is made of the `postgres_*` settings
and the password that launcher generated under the state directory (or
`DISPATCH_POSTGRES_PASSWORD`). A service never starts or initialises a server itself: that is
the launcher's (infra/), which a production install does not carry.
"""

from __future__ import annotations

from urllib.parse import quote

from dispatch.settings import Settings


class NoDatabaseURL(ValueError):
    """Neither a URL nor a password for the local server is configured."""


def database_url(settings: Settings) -> str:
    """Return the URL of the app role on the configured PostgreSQL server."""
    if settings.postgres_url is not None:
        return settings.postgres_url.get_secret_value()
    if settings.postgres_password is not None:
        password = settings.postgres_password.get_secret_value()
    else:
        path = settings.state_dir.resolve() / "postgres" / "password"
        try:
            password = path.read_text().strip()
        except OSError as exc:
            raise NoDatabaseURL(
                "no database configured: set DISPATCH_POSTGRES_URL (or DISPATCH_POSTGRES_PASSWORD "
                f"for the local server), or start the local one with `dispatch infra up` "
                f"(no password at {path}: {exc.strerror})"
            ) from exc
    s = settings
    return (
        f"postgresql://{s.postgres_user}:{quote(password, safe='')}@{s.postgres_host}:"
        f"{s.postgres_port}/{s.postgres_db}"
    )


def database_problem(settings: Settings) -> str | None:
    """Return why a service could not know its database URL (for its start), else None."""
    try:
        database_url(settings)
    except NoDatabaseURL as exc:
        return str(exc)
    return None
