"""Apply the ordered `.sql` files in `migrations/` to a database, each once, each atomically."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg

# Files are `NNNN_name.sql`; the version is the file's stem, e.g. `0001_principals`.
_FILE_NAME = re.compile(r"^(?P<number>\d{4})_[a-z0-9_]+\.sql$")

# One key for every process of this project in a database: holding it serialises migration
# runs, so two services starting together cannot both apply the same file. The value is
# arbitrary but fixed (the first 8 bytes of sha256("alarm-dispatch:migrations"), signed).
_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"alarm-dispatch:migrations").digest()[:8], "big", signed=True
)

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    checksum bytea NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """Raise when the migration files are malformed or disagree with what was applied."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: its version (the file stem), its SQL and that SQL's SHA-256."""

    version: str
    sql: str
    checksum: bytes


def shipped_migrations() -> Traversable:
    """Return the directory of migrations shipped with the package."""
    return resources.files("consumers.db") / "migrations"


def load_migrations(source: Traversable | None = None) -> list[Migration]:
    """Read the `.sql` files of source (default: the shipped ones) in version order."""
    directory = source if source is not None else shipped_migrations()
    found: dict[str, Migration] = {}
    for entry in directory.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        number = match["number"]
        if number in found:
            raise MigrationError(
                f"migrations {found[number].version!r} and {entry.name!r} share number {number}"
            )
        sql = entry.read_text(encoding="utf-8")
        version = entry.name.removesuffix(".sql")
        found[number] = Migration(version, sql, hashlib.sha256(sql.encode("utf-8")).digest())
    return [found[number] for number in sorted(found)]


async def migrate(conn: asyncpg.Connection, *, source: Traversable | None = None) -> list[str]:
    """Apply every migration not yet applied, in order; return the versions applied now.

    Tables land in the first schema of the connection's search_path. Call this outside a
    transaction: each file gets its own, so a failing file rolls back alone and leaves the
    earlier ones applied.
    """
    applied: list[str] = []
    for migration in load_migrations(source):
        async with conn.transaction():
            # Held until this transaction ends; a second process waits here, then sees the
            # ledger row the first one committed and skips the file.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            await conn.execute(_CREATE_LEDGER)
            checksum = await conn.fetchval(
                "SELECT checksum FROM schema_migrations WHERE version = $1", migration.version
            )
            if checksum is not None:
                if bytes(checksum) != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version} was changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                migration.version,
                migration.checksum,
            )
        applied.append(migration.version)
    return applied
