"""Principals and their bearer tokens in PostgreSQL: create, issue, list, revoke, authenticate."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import SecretStr, ValidationError

from consumers.auth import audit
from consumers.auth.models import IssuedToken, Principal, PrincipalInfo, Role, TokenInfo

# Not a secret: the visible prefix that lets scanners and people recognise a leaked token.
TOKEN_PREFIX = "dsp_"  # noqa: S105
# 32 random bytes (256 bits) in URL-safe base64: 43 characters after the prefix.
_SECRET_BYTES = 32
_MAX_SECRET_LENGTH = 128
# last_used_at is bookkeeping, not security: refresh it at most this often, so a busy
# principal's every request does not rewrite (and lock) its token row.
_LAST_USED_RESOLUTION_S = 60


class AuthError(Exception):
    """Base of the errors of the principal and token store."""


class AuthenticationFailed(AuthError):
    """Raise when a presented secret does not identify an active token of an enabled principal.

    `reason` (unknown, malformed, revoked, expired, disabled) is for logs; tell the caller
    only that authentication failed.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"authentication failed: {reason}")
        self.reason = reason


class InvalidPrincipal(AuthError):
    """Raise when a principal's fields break the rules of its role or the id pattern."""


class DuplicatePrincipal(AuthError):
    """Raise when a principal with the id already exists."""


class UnknownPrincipal(AuthError):
    """Raise when no principal has the id."""


class PrincipalDisabled(AuthError):
    """Raise when a token is requested for a disabled principal."""


class UnknownToken(AuthError):
    """Raise when no token has the id."""


def principal_subject(principal_id: str) -> str:
    """Return the audit subject of a principal."""
    return f"principal:{principal_id}"


def token_subject(token_id: uuid.UUID) -> str:
    """Return the audit subject of a token."""
    return f"token:{token_id}"


def generate_secret() -> str:
    """Return a new random token secret: the prefix and 256 bits of URL-safe base64."""
    return TOKEN_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def hash_secret(secret: str) -> bytes:
    """Return the SHA-256 of a secret, the only form in which it is stored."""
    # A fast hash is right here, unlike for passwords: the secret has 256 random bits, so
    # there is nothing to brute-force, and a deterministic hash makes the lookup an index hit.
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _require_aware(value: datetime | None, name: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


async def create_principal(
    conn: asyncpg.Connection,
    *,
    principal_id: str,
    role: Role,
    name: str,
    enterprise_id: str | None = None,
    unit_id: str | None = None,
    actor: str,
) -> Principal:
    """Store a new principal; refuse a duplicate id or fields that do not fit the role."""
    try:
        principal = Principal(
            id=principal_id, role=role, enterprise_id=enterprise_id, unit_id=unit_id, name=name
        )
    except ValidationError as exc:
        raise InvalidPrincipal(_first_error(exc)) from None
    async with conn.transaction():
        inserted = await conn.fetchval(
            "INSERT INTO principals (id, role, enterprise_id, unit_id, name) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING id",
            principal.id,
            principal.role.value,
            principal.enterprise_id,
            principal.unit_id,
            principal.name,
        )
        if inserted is None:
            raise DuplicatePrincipal(f"principal {principal.id!r} already exists")
        await audit.record(
            conn,
            actor=actor,
            action="principal.create",
            subject=principal_subject(principal.id),
            detail=principal.model_dump(mode="json"),
        )
    return principal


def _principal_info(row: asyncpg.Record) -> PrincipalInfo:
    return PrincipalInfo(
        id=row["id"],
        role=Role(row["role"]),
        enterprise_id=row["enterprise_id"],
        unit_id=row["unit_id"],
        name=row["name"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
    )


async def list_principals(conn: asyncpg.Connection) -> list[PrincipalInfo]:
    """Return every principal, by id."""
    rows = await conn.fetch(
        "SELECT id, role, enterprise_id, unit_id, name, created_at, disabled_at "
        "FROM principals ORDER BY id"
    )
    return [_principal_info(row) for row in rows]


async def _mark_once(
    conn: asyncpg.Connection, mark: str, exists: str, key: object, unknown: Exception
) -> Any:
    """Run `mark` (an UPDATE of one row that only changes it once, RETURNING a column) for key;
    return the column, or None when the row was already marked; raise `unknown` when `exists`
    finds no such row. Both statements take key as their one parameter."""
    marked = await conn.fetchval(mark, key)
    if marked is None and await conn.fetchval(exists, key) is None:
        raise unknown
    return marked


async def disable_principal(conn: asyncpg.Connection, *, principal_id: str, actor: str) -> bool:
    """Disable a principal so none of its tokens authenticates; False if it already was."""
    async with conn.transaction():
        disabled = await _mark_once(
            conn,
            "UPDATE principals SET disabled_at = now() "
            "WHERE id = $1 AND disabled_at IS NULL RETURNING id",
            "SELECT 1 FROM principals WHERE id = $1",
            principal_id,
            UnknownPrincipal(f"no principal {principal_id!r}"),
        )
        if disabled is None:
            return False
        await audit.record(
            conn,
            actor=actor,
            action="principal.disable",
            subject=principal_subject(principal_id),
        )
    return True


async def issue_token(
    conn: asyncpg.Connection,
    *,
    principal_id: str,
    label: str,
    expires_at: datetime | None = None,
    actor: str,
) -> IssuedToken:
    """Create a token for an enabled principal; its secret is returned once and never stored."""
    _require_aware(expires_at, "expires_at")
    if len(label) > 200:
        raise ValueError("label is longer than 200 characters")
    secret = generate_secret()
    token_id = uuid.uuid4()
    async with conn.transaction():
        # FOR SHARE: a concurrent disable cannot slip in between this check and the insert.
        principal = await conn.fetchrow(
            "SELECT disabled_at FROM principals WHERE id = $1 FOR SHARE", principal_id
        )
        if principal is None:
            raise UnknownPrincipal(f"no principal {principal_id!r}")
        if principal["disabled_at"] is not None:
            raise PrincipalDisabled(f"principal {principal_id!r} is disabled")
        await conn.execute(
            "INSERT INTO tokens (id, principal_id, token_hash, label, expires_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            token_id,
            principal_id,
            hash_secret(secret),
            label,
            expires_at,
        )
        await audit.record(
            conn,
            actor=actor,
            action="token.issue",
            subject=token_subject(token_id),
            detail={"principal_id": principal_id, "label": label, "expires_at": expires_at},
        )
    return IssuedToken(
        token_id=token_id,
        principal_id=principal_id,
        secret=SecretStr(secret),
        label=label,
        expires_at=expires_at,
    )


async def list_tokens(
    conn: asyncpg.Connection, *, principal_id: str | None = None
) -> list[TokenInfo]:
    """Return the tokens of one principal, or of all, oldest first; never a secret or hash."""
    rows = await conn.fetch(
        "SELECT id, principal_id, label, created_at, last_used_at, expires_at, revoked_at "
        "FROM tokens WHERE ($1::text IS NULL OR principal_id = $1) ORDER BY created_at, id",
        principal_id,
    )
    return [
        TokenInfo(
            token_id=row["id"],
            principal_id=row["principal_id"],
            label=row["label"],
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
        )
        for row in rows
    ]


async def revoke_token(conn: asyncpg.Connection, *, token_id: uuid.UUID, actor: str) -> bool:
    """Revoke a token for good; False if it already was revoked."""
    async with conn.transaction():
        principal_id = await _mark_once(
            conn,
            "UPDATE tokens SET revoked_at = now() "
            "WHERE id = $1 AND revoked_at IS NULL RETURNING principal_id",
            "SELECT 1 FROM tokens WHERE id = $1",
            token_id,
            UnknownToken(f"no token {token_id}"),
        )
        if principal_id is None:
            return False
        await audit.record(
            conn,
            actor=actor,
            action="token.revoke",
            subject=token_subject(token_id),
            detail={"principal_id": principal_id},
        )
    return True


async def authenticate(conn: asyncpg.Connection, *, secret: str, now: datetime) -> Principal:
    """Return the principal whose active token has this secret, or raise AuthenticationFailed."""
    _require_aware(now, "now")
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > _MAX_SECRET_LENGTH:
        raise AuthenticationFailed("malformed")
    # No constant-time comparison is needed: the database looks the token up by the SHA-256
    # of the presented secret. Timing can tell an attacker at most something about the hashes
    # of their own guesses, never about a stored secret (none is stored), and a preimage of a
    # 256-bit hash cannot be steered bit by bit.
    row = await conn.fetchrow(
        "SELECT t.id AS token_id, t.expires_at, t.revoked_at, p.disabled_at, "
        "p.id, p.role, p.enterprise_id, p.unit_id, p.name "
        "FROM tokens t JOIN principals p ON p.id = t.principal_id WHERE t.token_hash = $1",
        hash_secret(secret),
    )
    if row is None:
        raise AuthenticationFailed("unknown")
    if row["revoked_at"] is not None:
        raise AuthenticationFailed("revoked")
    if row["expires_at"] is not None and row["expires_at"] <= now:
        raise AuthenticationFailed("expired")
    if row["disabled_at"] is not None:
        raise AuthenticationFailed("disabled")
    await conn.execute(
        "UPDATE tokens SET last_used_at = $2::timestamptz WHERE id = $1 AND (last_used_at IS NULL "
        "OR last_used_at < $2::timestamptz - make_interval(secs => $3))",
        row["token_id"],
        now,
        _LAST_USED_RESOLUTION_S,
    )
    return Principal(
        id=row["id"],
        role=Role(row["role"]),
        enterprise_id=row["enterprise_id"],
        unit_id=row["unit_id"],
        name=row["name"],
    )
