"""Principals, tokens, the audit log and the migration runner on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from consumers.auth import (
    TOKEN_PREFIX,
    AuthenticationFailed,
    DuplicatePrincipal,
    InvalidPrincipal,
    PrincipalDisabled,
    Role,
    TokenState,
    UnknownPrincipal,
    UnknownToken,
    authenticate,
    create_principal,
    disable_principal,
    generate_secret,
    hash_secret,
    history,
    issue_token,
    list_principals,
    list_tokens,
    principal_subject,
    revoke_token,
    token_subject,
)
from consumers.db import MigrationError, load_migrations, migrate

ACTOR = "cli:tester"


@pytest.fixture
async def store(pg: asyncpg.Connection) -> asyncpg.Connection:
    """Return the test's connection with the schema migrated into its fresh search_path."""
    await migrate(pg)
    return pg


async def add_desk(conn: asyncpg.Connection, principal_id: str = "desk-e1") -> None:
    """Store a desk principal bound to enterprise E1."""
    await create_principal(
        conn,
        principal_id=principal_id,
        role=Role.DESK,
        name="E1 security desk",
        enterprise_id="E1",
        actor=ACTOR,
    )


def now() -> datetime:
    """Return the current instant in UTC."""
    return datetime.now(UTC)


# -- migrations ---------------------------------------------------------------------------------


async def test_migrate_applies_once_then_nothing(pg: asyncpg.Connection) -> None:
    shipped = [m.version for m in load_migrations()]
    assert shipped[0] == "0001_principals"
    assert await migrate(pg) == shipped
    assert await migrate(pg) == []
    versions = await pg.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in versions] == shipped


async def test_two_processes_migrating_together_apply_each_file_once(
    pg: asyncpg.Connection, postgres_url: str
) -> None:
    schema = await pg.fetchval("SELECT current_schema()")
    others = [
        await asyncpg.connect(postgres_url, server_settings={"search_path": schema})
        for _ in range(3)
    ]
    try:
        results = await asyncio.gather(migrate(pg), *(migrate(c) for c in others))
    finally:
        for conn in others:
            await conn.close()
    applied = [version for result in results for version in result]
    assert sorted(applied) == [m.version for m in load_migrations()]


async def test_failing_migration_rolls_back_alone(pg: asyncpg.Connection, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE second (id int); SELECT nonsense;")
    with pytest.raises(asyncpg.UndefinedColumnError):
        await migrate(pg, source=tmp_path)
    assert await pg.fetchval("SELECT to_regclass('first') IS NOT NULL")
    assert await pg.fetchval("SELECT to_regclass('second') IS NULL")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE second (id int);")
    assert await migrate(pg, source=tmp_path) == ["0002_broken"]


async def test_editing_an_applied_migration_is_refused(
    pg: asyncpg.Connection, tmp_path: Path
) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    await migrate(pg, source=tmp_path)
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(pg, source=tmp_path)


@pytest.mark.parametrize(
    "names",
    [["1_short.sql"], ["0001_Upper.sql"], ["0001_a.sql", "0001_b.sql"]],
)
def test_malformed_migration_files_are_refused(tmp_path: Path, names: list[str]) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError):
        load_migrations(tmp_path)


# -- tokens ---------------------------------------------------------------------------------------


async def test_issue_authenticate_revoke_refused(store: asyncpg.Connection) -> None:
    await add_desk(store)
    issued = await issue_token(store, principal_id="desk-e1", label="desk pc", actor=ACTOR)
    secret = issued.secret.get_secret_value()
    assert secret.startswith(TOKEN_PREFIX)
    assert "dsp_" not in repr(issued)
    at = now()

    principal = await authenticate(store, secret=secret, now=at)
    assert (principal.id, principal.role, principal.enterprise_id) == ("desk-e1", Role.DESK, "E1")
    [info] = await list_tokens(store, principal_id="desk-e1")
    assert info.token_id == issued.token_id
    assert info.last_used_at == at
    assert info.state(now()) is TokenState.ACTIVE

    assert await revoke_token(store, token_id=issued.token_id, actor=ACTOR)
    assert not await revoke_token(store, token_id=issued.token_id, actor=ACTOR)
    with pytest.raises(AuthenticationFailed) as refused:
        await authenticate(store, secret=secret, now=now())
    assert refused.value.reason == "revoked"
    [info] = await list_tokens(store, principal_id="desk-e1")
    assert info.state(now()) is TokenState.REVOKED


async def test_last_used_is_refreshed_at_most_once_a_minute(store: asyncpg.Connection) -> None:
    await add_desk(store)
    issued = await issue_token(store, principal_id="desk-e1", label="", actor=ACTOR)
    secret = issued.secret.get_secret_value()
    first = now()
    for offset_s in (0, 10, 59):
        await authenticate(store, secret=secret, now=first + timedelta(seconds=offset_s))
    [info] = await list_tokens(store)
    assert info.last_used_at == first
    await authenticate(store, secret=secret, now=first + timedelta(seconds=61))
    [info] = await list_tokens(store)
    assert info.last_used_at == first + timedelta(seconds=61)


async def test_expired_token_is_refused(store: asyncpg.Connection) -> None:
    await add_desk(store)
    expires_at = now() + timedelta(hours=1)
    issued = await issue_token(
        store, principal_id="desk-e1", label="temp", expires_at=expires_at, actor=ACTOR
    )
    secret = issued.secret.get_secret_value()
    await authenticate(store, secret=secret, now=expires_at - timedelta(seconds=1))
    with pytest.raises(AuthenticationFailed) as refused:
        await authenticate(store, secret=secret, now=expires_at)
    assert refused.value.reason == "expired"
    [info] = await list_tokens(store)
    assert info.state(expires_at) is TokenState.EXPIRED


async def test_disabled_principal_is_refused(store: asyncpg.Connection) -> None:
    await add_desk(store)
    issued = await issue_token(store, principal_id="desk-e1", label="", actor=ACTOR)
    assert await disable_principal(store, principal_id="desk-e1", actor=ACTOR)
    assert not await disable_principal(store, principal_id="desk-e1", actor=ACTOR)
    with pytest.raises(AuthenticationFailed) as refused:
        await authenticate(store, secret=issued.secret.get_secret_value(), now=now())
    assert refused.value.reason == "disabled"
    with pytest.raises(PrincipalDisabled):
        await issue_token(store, principal_id="desk-e1", label="", actor=ACTOR)
    [info] = await list_principals(store)
    assert info.disabled_at is not None


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("dsp_" + "A" * 43, "unknown"),
        ("", "malformed"),
        ("Bearer dsp_x", "malformed"),
        ("dsp_" + "A" * 200, "malformed"),
    ],
)
async def test_unknown_or_malformed_secret_is_refused(
    store: asyncpg.Connection, secret: str, reason: str
) -> None:
    await add_desk(store)
    await issue_token(store, principal_id="desk-e1", label="", actor=ACTOR)
    with pytest.raises(AuthenticationFailed) as refused:
        await authenticate(store, secret=secret, now=now())
    assert refused.value.reason == reason


async def test_naive_instants_are_refused(store: asyncpg.Connection) -> None:
    await add_desk(store)
    with pytest.raises(ValueError, match="timezone-aware"):
        await issue_token(
            store, principal_id="desk-e1", label="", expires_at=datetime(2030, 1, 1), actor=ACTOR
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        await authenticate(store, secret=generate_secret(), now=datetime(2030, 1, 1))


def test_secrets_are_random_and_hashed_with_sha256() -> None:
    secrets = {generate_secret() for _ in range(100)}
    assert len(secrets) == 100
    secret = secrets.pop()
    assert len(secret) == len(TOKEN_PREFIX) + 43
    assert hash_secret(secret) == hashlib.sha256(secret.encode()).digest()


async def test_secret_is_nowhere_in_the_database(store: asyncpg.Connection) -> None:
    await add_desk(store)
    issued = await issue_token(store, principal_id="desk-e1", label="kiosk", actor=ACTOR)
    secret = issued.secret.get_secret_value()
    await authenticate(store, secret=secret, now=now())
    await revoke_token(store, token_id=issued.token_id, actor=ACTOR)
    random_part = secret.removeprefix(TOKEN_PREFIX)
    columns = await store.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() "
        "AND data_type IN ('text', 'character varying', 'character', 'bytea', 'jsonb', 'json')"
    )
    assert {(c["table_name"], c["column_name"]) for c in columns} >= {
        ("tokens", "token_hash"),
        ("tokens", "label"),
        ("audit_log", "detail"),
        ("principals", "name"),
    }
    for column in columns:
        table, name = column["table_name"], column["column_name"]
        # Identifiers cannot be bind parameters; these come from information_schema and are
        # quoted, while the searched values are parameters.
        if column["data_type"] == "bytea":
            sql = f'SELECT count(*) FROM "{table}" WHERE position($1::bytea IN "{name}") > 0'  # noqa: S608
            found = await store.fetchval(sql, random_part.encode())
        else:
            sql = f'SELECT count(*) FROM "{table}" WHERE strpos("{name}"::text, $1) > 0'  # noqa: S608
            found = await store.fetchval(sql, random_part)
        assert found == 0, f"{table}.{name} holds the secret"
    stored = await store.fetchval("SELECT token_hash FROM tokens")
    assert stored == hash_secret(secret)


# -- principals and the audit log ----------------------------------------------------------------


async def test_every_change_is_audited_with_its_actor(store: asyncpg.Connection) -> None:
    await create_principal(
        store,
        principal_id="patrol-p1",
        role=Role.PATROL,
        unit_id="P1",
        name="Chengdong patrol",
        actor="cli:alice",
    )
    issued = await issue_token(store, principal_id="patrol-p1", label="handheld 1", actor="admin-1")
    await authenticate(store, secret=issued.secret.get_secret_value(), now=now())
    await revoke_token(store, token_id=issued.token_id, actor="cli:bob")
    await revoke_token(store, token_id=issued.token_id, actor="cli:bob")  # no change, no row
    await disable_principal(store, principal_id="patrol-p1", actor="cli:carol")

    principal_rows = await history(store, subject=principal_subject("patrol-p1"))
    assert [(e.action, e.actor) for e in principal_rows] == [
        ("principal.create", "cli:alice"),
        ("principal.disable", "cli:carol"),
    ]
    assert principal_rows[0].detail["unit_id"] == "P1"
    token_rows = await history(store, subject=token_subject(issued.token_id))
    assert [(e.action, e.actor) for e in token_rows] == [
        ("token.issue", "admin-1"),
        ("token.revoke", "cli:bob"),
    ]
    assert token_rows[0].detail == {
        "principal_id": "patrol-p1",
        "label": "handheld 1",
        "expires_at": None,
    }
    assert await store.fetchval("SELECT count(*) FROM audit_log") == 4


async def test_audit_log_is_append_only(store: asyncpg.Connection) -> None:
    await add_desk(store)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await store.execute("UPDATE audit_log SET actor = 'someone else'")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await store.execute("DELETE FROM audit_log")
    assert await store.fetchval("SELECT count(*) FROM audit_log") == 1


async def test_refused_change_leaves_no_audit_row(store: asyncpg.Connection) -> None:
    await add_desk(store)
    with pytest.raises(DuplicatePrincipal):
        await add_desk(store)
    with pytest.raises(UnknownPrincipal):
        await issue_token(store, principal_id="nobody", label="", actor=ACTOR)
    with pytest.raises(UnknownPrincipal):
        await disable_principal(store, principal_id="nobody", actor=ACTOR)
    with pytest.raises(UnknownToken):
        await revoke_token(store, token_id=uuid.uuid4(), actor=ACTOR)
    assert await store.fetchval("SELECT count(*) FROM audit_log") == 1


async def test_invalid_principal_is_refused_before_the_database(store: asyncpg.Connection) -> None:
    with pytest.raises(InvalidPrincipal, match="enterprise"):
        await create_principal(store, principal_id="d", role=Role.DESK, name="n", actor=ACTOR)
    with pytest.raises(InvalidPrincipal, match="id"):
        await create_principal(
            store, principal_id="bad id", role=Role.COMMANDER, name="n", actor=ACTOR
        )
    assert await store.fetchval("SELECT count(*) FROM principals") == 0


@pytest.mark.parametrize(
    ("role", "enterprise_id", "unit_id", "principal_id", "constraint"),
    [
        ("desk", None, None, "d-1", "principals_desk_has_enterprise"),
        ("guard", None, None, "g-1", "principals_unit_roles_have_unit"),
        ("patrol", None, None, "p-1", "principals_unit_roles_have_unit"),
        ("commander", None, "P1", "c-1", "principals_unit_roles_have_unit"),
        ("commander", "E1", None, "c-2", "principals_enterprise_only_for_desk_guard_sensor"),
        ("janitor", None, None, "j-1", "principals_role_check"),
        ("admin", None, None, "bad id", "principals_id_check"),
    ],
)
async def test_database_checks_refuse_what_the_model_refuses(
    store: asyncpg.Connection,
    role: str,
    enterprise_id: str | None,
    unit_id: str | None,
    principal_id: str,
    constraint: str,
) -> None:
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await store.execute(
            "INSERT INTO principals (id, role, enterprise_id, unit_id, name) "
            "VALUES ($1, $2, $3, $4, 'n')",
            principal_id,
            role,
            enterprise_id,
            unit_id,
        )
    assert refused.value.constraint_name == constraint


async def test_list_tokens_filters_by_principal(store: asyncpg.Connection) -> None:
    await add_desk(store, "desk-a")
    await add_desk(store, "desk-b")
    a1 = await issue_token(store, principal_id="desk-a", label="a1", actor=ACTOR)
    a2 = await issue_token(store, principal_id="desk-a", label="a2", actor=ACTOR)
    b1 = await issue_token(store, principal_id="desk-b", label="b1", actor=ACTOR)
    assert [t.token_id for t in await list_tokens(store, principal_id="desk-a")] == [
        a1.token_id,
        a2.token_id,
    ]
    assert {t.token_id for t in await list_tokens(store)} == {a1.token_id, a2.token_id, b1.token_id}
    assert await list_tokens(store, principal_id="nobody") == []
