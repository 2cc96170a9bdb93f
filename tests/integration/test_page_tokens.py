"""The demo tokens `dispatch run` prints for the pages, on the real PostgreSQL.

Only the printed tokens are issued, each start revokes the previous start's, and the stop
revokes its own (simulator.principals.page_tokens, cli.run_command.page_principals).
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from cli.run_command import page_principals
from consumers.auth import AuthenticationFailed, authenticate, list_tokens
from dispatch.events import PlaceType
from dispatch.settings import Settings
from dispatch.zone import default_zone_path, load_zone
from simulator.principals import (
    PAGES_LABEL,
    PrincipalMismatch,
    ensure_demo_principals,
    page_tokens,
    revoke_page_tokens,
)
from tests.integration.principals import connection, fresh_store


async def works(conn: asyncpg.Connection, secret: str) -> bool:
    """Tell whether a token's secret authenticates."""
    try:
        await authenticate(conn, secret=secret, now=datetime.now(UTC))
    except AuthenticationFailed:
        return False
    return True


async def test_a_start_issues_the_printed_tokens_only_and_revokes_the_previous_ones(
    postgres_url: str,
) -> None:
    zone = load_zone(default_zone_path())
    whose = page_principals(Settings())
    assert whose == ["commander-duty", "cd-patrol-2", "desk-hengtong"]
    async with fresh_store(postgres_url, max_size=2) as pool, connection(pool) as conn:
        first = await page_tokens(conn, zone, whose)
        assert list(first) == whose
        principals = await conn.fetchval("SELECT count(*) FROM principals")
        # Every demo principal is made (the simulator needs them), three tokens are issued.
        assert principals == len(zone.units) + len(zone.places_of_type(PlaceType.ENTERPRISE)) + 2
        assert await conn.fetchval("SELECT count(*) FROM tokens") == 3
        for secret in first.values():
            assert await works(conn, secret.get_secret_value())

        # The next start: new tokens, and the ones printed before stop working.
        second = await page_tokens(conn, zone, whose)
        for before, now in zip(first.values(), second.values(), strict=True):
            assert not await works(conn, before.get_secret_value())
            assert await works(conn, now.get_secret_value())
        tokens = [t for p in whose for t in await list_tokens(conn, principal_id=p)]
        assert {t.label for t in tokens} == {PAGES_LABEL}
        assert sum(t.revoked_at is None for t in tokens) == 3
        # A week at most, should a run never stop cleanly.
        assert all(t.expires_at is not None for t in tokens)

        # The stop revokes them; the simulator's own tokens are not the pages'.
        simulator = await ensure_demo_principals(conn, zone)
        assert await revoke_page_tokens(conn, whose) == 3
        for secret in second.values():
            assert not await works(conn, secret.get_secret_value())
        assert await works(conn, simulator.commander.token.get_secret_value())
        assert await revoke_page_tokens(conn, whose) == 0

        with pytest.raises(PrincipalMismatch, match="nobody"):
            await page_tokens(conn, zone, ["nobody"])
