"""Principals and their tokens for the integration tests, in a fresh schema of the test's own.

The intake API, the push gateway and the tests that drive both authenticate the same way, so
they make their callers here: a stored principal of a role, bound as the role needs, with one
token whose secret the test presents.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

import asyncpg

from consumers.auth import (
    UNIT_ROLES,
    Role,
    create_principal,
    disable_principal,
    issue_token,
    revoke_token,
)
from consumers.db import migrate

ACTOR = "test:principals"
CLOSE_WAIT_S = 30.0  # a hang guard, not a performance bound


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """Lend a pooled connection typed as the Connection the store functions take."""
    async with pool.acquire() as proxy:
        # A pooled connection forwards every Connection method; the stubs type it apart.
        yield cast(asyncpg.Connection, proxy)


@asynccontextmanager
async def fresh_store(postgres_url: str, max_size: int = 10) -> AsyncIterator[asyncpg.Pool]:
    """Yield a pool whose connections all use a fresh, migrated schema; drop it afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    # Schema names cannot be bind parameters; this one is generated above, never user input.
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    pool = await asyncpg.create_pool(
        postgres_url, min_size=1, max_size=max_size, server_settings={"search_path": schema}
    )
    try:
        async with connection(pool) as conn:
            await migrate(conn)
        yield pool
    finally:
        try:
            # Bounded: a connection a service never gave back would hang close() for good.
            await asyncio.wait_for(pool.close(), CLOSE_WAIT_S)
        finally:
            pool.terminate()
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await admin.close()


@dataclass(frozen=True)
class Caller:
    """A stored principal with one token."""

    id: str
    role: Role
    token_id: uuid.UUID
    secret: str
    unit_id: str | None = None
    enterprise_id: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Return the Authorization header of this caller."""
        return {"Authorization": f"Bearer {self.secret}"}

    @property
    def unit(self) -> str:
        """Return the unit of a unit principal (guard, patrol, unit)."""
        if self.unit_id is None:
            raise ValueError(f"{self.id} is a {self.role} principal, bound to no unit")
        return self.unit_id


def enterprise() -> str:
    """Return an enterprise id no other test uses."""
    return f"ent-{uuid.uuid4().hex[:10]}"


def new_unit() -> str:
    """Return a unit id no other test uses."""
    return f"u-{uuid.uuid4().hex[:10]}"


async def make_caller(
    pool: asyncpg.Pool,
    role: Role,
    *,
    enterprise_id: str | None = None,
    unit_id: str | None = None,
) -> Caller:
    """Store a principal with an id no other test uses, and issue it a token.

    A unit role (guard, patrol, unit) gets a fresh unit of its own unless unit_id names one.
    """
    principal_id = f"{role.value}-{uuid.uuid4().hex[:10]}"
    if role in UNIT_ROLES and unit_id is None:
        unit_id = new_unit()
    async with connection(pool) as conn:
        await create_principal(
            conn,
            principal_id=principal_id,
            role=role,
            name=f"test {role.value}",
            enterprise_id=enterprise_id,
            unit_id=unit_id,
            actor=ACTOR,
        )
        token = await issue_token(conn, principal_id=principal_id, label="test", actor=ACTOR)
    return Caller(
        principal_id,
        role,
        token.token_id,
        token.secret.get_secret_value(),
        unit_id=unit_id,
        enterprise_id=enterprise_id,
    )


async def revoked_caller(pool: asyncpg.Pool, role: Role = Role.DESK) -> Caller:
    """Return a caller whose only token has been revoked."""
    caller = await make_caller(
        pool, role, enterprise_id=enterprise() if role is Role.DESK else None
    )
    async with connection(pool) as conn:
        await revoke_token(conn, token_id=caller.token_id, actor=ACTOR)
    return caller


async def disabled_caller(pool: asyncpg.Pool, role: Role = Role.DESK) -> Caller:
    """Return a caller whose principal has been disabled (its token is still unrevoked)."""
    caller = await make_caller(
        pool, role, enterprise_id=enterprise() if role is Role.DESK else None
    )
    async with connection(pool) as conn:
        await disable_principal(conn, principal_id=caller.id, actor=ACTOR)
    return caller
