"""`dispatch principal …` and `dispatch token …` as a person runs them, on the real PostgreSQL.

These runs use the public schema of the session's database, which other tests of the session
share: every test uses ids of its own.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from cli.token_commands import cli_actor
from consumers.auth import (
    AuthenticationFailed,
    Role,
    authenticate,
    history,
    principal_subject,
    token_subject,
)
from consumers.db import migrate
from infra.processes import free_port


@dataclass(frozen=True)
class Run:
    """What one command printed and how it exited."""

    code: int
    stdout: str
    stderr: str

    def one_line_error(self, code: int) -> str:
        """Assert the command failed with code and one line on stderr; return that line."""
        assert self.code == code, self.stdout + self.stderr
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("dispatch: error: "), self.stderr
        return lines[0]


async def run_cli(*args: str, postgres_url: str, state_dir: Path) -> Run:
    """Run `python -m cli ARGS` in a child process pointed at one PostgreSQL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env |= {"DISPATCH_POSTGRES_URL": postgres_url, "DISPATCH_STATE_DIR": str(state_dir)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode is not None
    return Run(child.returncode, stdout.decode(), stderr.decode())


@dataclass(frozen=True)
class Cli:
    """Runs the command line against the session's PostgreSQL."""

    postgres_url: str
    state_dir: Path

    async def __call__(self, *args: str) -> Run:
        return await run_cli(*args, postgres_url=self.postgres_url, state_dir=self.state_dir)


@pytest.fixture
def cli(postgres_url: str, tmp_path: Path) -> Cli:
    """Return a runner of `python -m cli` against the session's database."""
    return Cli(postgres_url, tmp_path / "state")


@pytest.fixture
async def public(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Yield a connection to the public schema (migrated), the one the command line uses."""
    conn = await asyncpg.connect(postgres_url)
    try:
        await migrate(conn)
        yield conn
    finally:
        await conn.close()


# A unit of the shipped zone: `principal add --unit` refuses one the zone does not know.
PATROL = "cd-patrol-1"


def unique(stem: str) -> str:
    """Return an id no other test uses."""
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def secret_of(run: Run) -> str:
    """Return the secret printed by `token create`."""
    [line] = [line for line in run.stdout.splitlines() if line.startswith("secret: ")]
    return line.removeprefix("secret: ")


def token_id_of(run: Run) -> uuid.UUID:
    """Return the token id printed by `token create`."""
    [line] = [line for line in run.stdout.splitlines() if line.startswith("token ")]
    return uuid.UUID(line.split()[1])


def row_of(run: Run, first_column: str) -> list[str]:
    """Return the cells of the listed row whose first column is first_column."""
    [row] = [line.split() for line in run.stdout.splitlines() if line.startswith(first_column)]
    return row


async def test_principal_add_then_list_and_audit(cli: Cli, public: asyncpg.Connection) -> None:
    desk = unique("desk")
    added = await cli(
        "principal", "add", "--id", desk, "--role", "desk", "--enterprise", "E1", "--name", "Desk 1"
    )
    assert added.code == 0, added.stderr
    assert f"added principal {desk} (desk, enterprise E1)" in added.stdout
    listed = await cli("principal", "list")
    assert listed.code == 0, listed.stderr
    assert row_of(listed, desk)[:5] == [desk, "desk", "E1", "-", "active"]
    [entry] = await history(public, subject=principal_subject(desk))
    assert (entry.action, entry.actor) == ("principal.create", cli_actor())
    assert entry.actor.startswith("cli:")


async def test_token_lifecycle(cli: Cli, public: asyncpg.Connection) -> None:
    unit = unique("patrol")
    added = await cli(
        "principal", "add", "--id", unit, "--role", "patrol", "--unit", PATROL, "--name", "Patrol"
    )
    assert added.code == 0, added.stderr

    created = await cli("token", "create", "--principal", unit, "--label", "handheld-7")
    assert created.code == 0, created.stderr
    secret = secret_of(created)
    token_id = token_id_of(created)
    assert created.stdout.count(secret) == 1
    assert "cannot be shown again" in created.stdout
    principal = await authenticate(public, secret=secret, now=datetime.now(UTC))
    assert (principal.id, principal.role, principal.unit_id) == (unit, Role.PATROL, PATROL)

    listed = await cli("token", "list", "--principal", unit)
    assert listed.code == 0, listed.stderr
    assert secret.removeprefix("dsp_") not in listed.stdout
    row = row_of(listed, str(token_id))
    assert row[1:3] == [unit, "active"]
    assert row[-1] == "handheld-7"
    everyone = await cli("token", "list")
    assert str(token_id) in everyone.stdout
    assert secret.removeprefix("dsp_") not in everyone.stdout

    revoked = await cli("token", "revoke", str(token_id))
    assert revoked.code == 0, revoked.stderr
    assert f"revoked token {token_id}" in revoked.stdout
    again = await cli("token", "revoke", str(token_id))
    assert again.code == 0, again.stderr
    assert "already revoked" in again.stdout
    assert row_of(await cli("token", "list", "--principal", unit), str(token_id))[2] == "revoked"
    with pytest.raises(AuthenticationFailed):
        await authenticate(public, secret=secret, now=datetime.now(UTC))
    entries = await history(public, subject=token_subject(token_id))
    assert [(e.action, e.actor) for e in entries] == [
        ("token.issue", cli_actor()),
        ("token.revoke", cli_actor()),
    ]


async def test_token_with_expiry_and_disabled_principal(
    cli: Cli, public: asyncpg.Connection
) -> None:
    sensor = unique("cam")
    await cli("principal", "add", "--id", sensor, "--role", "sensor", "--name", "Camera")
    created = await cli("token", "create", "--principal", sensor, "--expires-days", "3")
    assert created.code == 0, created.stderr
    listed = await cli("token", "list", "--principal", sensor)
    row = row_of(listed, str(token_id_of(created)))
    assert row[2] == "active"
    assert row[5] != "-"  # expires
    assert row[-1] == "-"  # no label

    disabled = await cli("principal", "disable", sensor)
    assert disabled.code == 0, disabled.stderr
    with pytest.raises(AuthenticationFailed):
        await authenticate(public, secret=secret_of(created), now=datetime.now(UTC))
    refused = await cli("token", "create", "--principal", sensor)
    assert "disabled" in refused.one_line_error(1)
    assert row_of(await cli("principal", "list"), sensor)[4] == "disabled"


async def test_duplicate_and_unknown_are_one_line_errors(cli: Cli) -> None:
    admin = unique("admin")
    assert (
        await cli("principal", "add", "--id", admin, "--role", "admin", "--name", "A")
    ).code == 0
    duplicate = await cli("principal", "add", "--id", admin, "--role", "admin", "--name", "A")
    assert "already exists" in duplicate.one_line_error(1)
    nobody = unique("nobody")
    assert nobody in (await cli("token", "create", "--principal", nobody)).one_line_error(1)
    assert nobody in (await cli("principal", "disable", nobody)).one_line_error(1)
    missing = str(uuid.uuid4())
    assert missing in (await cli("token", "revoke", missing)).one_line_error(1)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("principal", "add", "--id", "x-1", "--role", "janitor", "--name", "J"), "unknown role"),
        (("principal", "add", "--id", "x-2", "--role", "desk", "--name", "D"), "enterprise"),
        (("principal", "add", "--id", "x-3", "--role", "guard", "--name", "G"), "unit"),
        (("principal", "add", "--id", "bad id", "--role", "admin", "--name", "A"), "id"),
        (("token", "revoke", "not-a-uuid"), "not a token id"),
        (("token", "create", "--principal", "x", "--expires-days", "0"), "--expires-days"),
    ],
)
async def test_bad_input_is_a_one_line_usage_error(
    cli: Cli, public: asyncpg.Connection, args: tuple[str, ...], says: str
) -> None:
    assert says in (await cli(*args)).one_line_error(2)
    assert await public.fetchval("SELECT count(*) FROM principals WHERE id LIKE 'x-_'") == 0


async def test_unreachable_database_is_one_line_without_password(tmp_path: Path) -> None:
    url = f"postgresql://dispatch:hunter2-secret@127.0.0.1:{free_port()}/dispatch"
    run = await run_cli("token", "list", postgres_url=url, state_dir=tmp_path)
    line = run.one_line_error(1)
    assert "cannot connect to PostgreSQL at 127.0.0.1" in line
    assert "hunter2" not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr
