"""The gateway's failed-authentication limit slows failing clients and never locks out a good token.

The limit is per client address, and every client here comes from 127.0.0.1, like clients
behind one proxy: one of them retrying an expired token must not keep the others out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from consumers.auth import Role
from consumers.push import PushGateway, PushTopics
from consumers.push.protocol import ErrorCode, ErrorFrame, WelcomeFrame
from dispatch.settings import Settings
from tests.integration.principals import Caller, make_caller
from tests.integration.test_push_gateway import client, gateway, url
from tests.integration.test_push_gateway import pool as pool
from tests.integration.test_push_gateway import topics as topics

LIMIT = 3  # failed attempts per minute per address
TRY_AGAIN_LATER = 1013


async def expired_caller(pool: asyncpg.Pool) -> Caller:
    """Return a commander whose token expired a minute ago."""
    caller = await make_caller(pool, Role.COMMANDER)
    await pool.execute(
        "UPDATE tokens SET expires_at = $1 WHERE id = $2",
        datetime.now(UTC) - timedelta(minutes=1),
        caller.token_id,
    )
    return caller


async def handshake_status(gw: PushGateway, secret: str) -> tuple[int, str | None]:
    """Open a connection with secret in the header; return the status and any Retry-After."""
    try:
        async with connect(
            url(gw), additional_headers={"Authorization": f"Bearer {secret}"}, proxy=None
        ):
            return 101, None
    except InvalidStatus as refused:
        return refused.response.status_code, refused.response.headers.get("Retry-After")


async def test_a_valid_token_gets_in_through_the_handshake_past_the_limit(
    running_stack: Settings, pool: asyncpg.Pool, topics: PushTopics, group_id: str
) -> None:
    expired = await expired_caller(pool)
    commander = await make_caller(pool, Role.COMMANDER)
    async with gateway(running_stack, pool, topics, group_id, rate_limit_per_minute=LIMIT) as gw:
        refusals = [await handshake_status(gw, expired.secret) for _ in range(LIMIT + 3)]
        assert [status for status, _ in refusals] == [401] * LIMIT + [429] * 3
        # One attempt every 60 / LIMIT s: the last refusal says to wait up to that long.
        assert all(1 <= int(wait or 0) <= 20 for _, wait in refusals[LIMIT:])
        for _ in range(5):
            assert (await handshake_status(gw, commander.secret))[0] == 101
            assert (await handshake_status(gw, expired.secret))[0] == 429


async def test_a_valid_auth_frame_gets_in_and_a_limited_one_is_told_to_wait(
    running_stack: Settings, pool: asyncpg.Pool, topics: PushTopics, group_id: str
) -> None:
    expired = await expired_caller(pool)
    commander = await make_caller(pool, Role.COMMANDER)
    async with gateway(running_stack, pool, topics, group_id, rate_limit_per_minute=LIMIT) as gw:
        answers = []
        for _ in range(LIMIT + 1):
            async with client(gw, None) as c:
                await c.send(type="auth", token=expired.secret)
                answer = await c.expect(ErrorFrame)
                with pytest.raises(ConnectionClosed) as closed:
                    await c.frame()
                assert closed.value.rcvd is not None
                answers.append((answer.code, answer.retry_after_s, closed.value.rcvd.code))
        assert answers[:LIMIT] == [(ErrorCode.UNAUTHORIZED, None, 4001)] * LIMIT
        # Past the limit: not "get a new token" but "wait", and a close that says so.
        code, retry_after_s, close_code = answers[LIMIT]
        assert (code, close_code) == (ErrorCode.RATE_LIMITED, TRY_AGAIN_LATER)
        assert retry_after_s is not None
        assert 0 < retry_after_s <= 20
        for _ in range(3):
            async with client(gw, None) as c:
                await c.send(type="auth", token=commander.secret)
                assert (await c.expect(WelcomeFrame)).principal_id == commander.id
