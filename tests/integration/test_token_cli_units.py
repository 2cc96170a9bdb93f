"""`dispatch principal add --unit` and `dispatch token create` refuse a unit the zone lacks.

A unit the zone does not know is never sent a job, so its handheld would wait for nothing:
both commands say so on one line and exit 2, like other bad input, and store nothing.
"""

from __future__ import annotations

import asyncpg

from consumers.auth import Role, create_principal
from tests.integration.test_token_cli import Cli, unique
from tests.integration.test_token_cli import cli as cli
from tests.integration.test_token_cli import public as public


async def test_adding_a_unit_the_zone_does_not_know_is_a_usage_error(
    cli: Cli, public: asyncpg.Connection
) -> None:
    for role in ("patrol", "guard", "unit"):
        principal = unique(role)
        run = await cli(
            "principal", "add", "--id", principal, "--role", role, "--unit", "P1", "--name", "X"
        )
        line = run.one_line_error(2)
        assert "unknown unit 'P1'" in line
        assert "suizhou-hightech" in line
        assert (
            await public.fetchval("SELECT count(*) FROM principals WHERE id = $1", principal) == 0
        )
    known = unique("guard")
    added = await cli(
        "principal", "add", "--id", known, "--role", "guard", "--unit", "guard-hengtong",
        "--enterprise", "ent-hengtong", "--name", "Hengtong guards",
    )  # fmt: skip
    assert added.code == 0, added.stderr


async def test_no_token_for_a_principal_whose_unit_the_zone_does_not_know(
    cli: Cli, public: asyncpg.Connection
) -> None:
    # Made before the check existed (the library does not know zones): the token is refused.
    stale = unique("patrol")
    await create_principal(
        public, principal_id=stale, role=Role.PATROL, name="old", unit_id="P1", actor="test"
    )
    run = await cli("token", "create", "--principal", stale)
    assert "unknown unit 'P1'" in run.one_line_error(2)
    assert await public.fetchval("SELECT count(*) FROM tokens WHERE principal_id = $1", stale) == 0
