"""`dispatch principal add | list | disable` and `dispatch token create | list | revoke`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg

from consumers.auth import (
    UNIT_ROLES,
    AuthError,
    InvalidPrincipal,
    Role,
    create_principal,
    disable_principal,
    issue_token,
    list_principals,
    list_tokens,
    revoke_token,
)
from consumers.db import MigrationError, migrate
from dispatch.settings import Settings
from dispatch.zone import UnknownZoneId, ZoneFileError, default_zone_path, load_zone
from infra import stack
from infra.processes import Say

# Exit codes: 1 when the store refuses (unknown, duplicate, unreachable), 2 for bad input,
# as argparse does for its own usage errors.
EXIT_REFUSED = 1
EXIT_USAGE = 2
MAX_EXPIRES_DAYS = 3650

Work = Callable[[asyncpg.Connection], Awaitable[int]]


def register(sub: Any) -> None:
    """Add the `principal` and `token` subcommand groups."""
    principal: argparse.ArgumentParser = sub.add_parser(
        "principal", help="add, list or disable who may call the gateway"
    )
    actions = principal.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a principal (then give it a token)")
    add.add_argument(
        "--id", required=True, dest="principal_id", metavar="ID", help="e.g. desk-hubei-pharma"
    )
    add.add_argument("--role", required=True, help=f"one of: {', '.join(Role)}")
    add.add_argument("--enterprise", dest="enterprise_id", metavar="E", help="required for a desk")
    add.add_argument(
        "--unit", dest="unit_id", metavar="U", help="required for guard, patrol and unit"
    )
    add.add_argument("--name", required=True, help="a display name")
    add.set_defaults(handler=principal_add)
    actions.add_parser("list", help="list every principal").set_defaults(handler=principal_list)
    disable = actions.add_parser("disable", help="disable a principal: its tokens stop working")
    disable.add_argument("principal_id", metavar="ID")
    disable.set_defaults(handler=principal_disable)

    token: argparse.ArgumentParser = sub.add_parser(
        "token", help="create, list or revoke principals' bearer tokens"
    )
    actions = token.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a token and print its secret once")
    create.add_argument("--principal", required=True, dest="principal_id", metavar="ID")
    create.add_argument("--label", default="", help="what the token is for, e.g. a device")
    create.add_argument(
        "--expires-days",
        type=int,
        dest="expires_days",
        metavar="N",
        help="days until it expires (default never)",
    )
    create.set_defaults(handler=token_create)
    listing = actions.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--principal", dest="principal_id", metavar="ID")
    listing.set_defaults(handler=token_list)
    revoke = actions.add_parser("revoke", help="revoke a token for good")
    revoke.add_argument("token_id", metavar="TOKEN_ID")
    revoke.set_defaults(handler=token_revoke)


def cli_actor() -> str:
    """Return the audit actor of this command line: `cli:<os user>`."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry for this uid
        user = f"uid-{os.getuid()}"
    return "cli:" + (re.sub(r"[^A-Za-z0-9._-]", "_", user)[:64] or f"uid-{os.getuid()}")


def fail(message: str, code: int) -> int:
    """Print one error line and return the exit code."""
    one_line = " ".join(message.split())
    print(f"dispatch: error: {one_line}", file=sys.stderr, flush=True)
    return code


def when(value: datetime | None) -> str:
    """Format an instant for a table cell, in UTC to the second, or `-`."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


def unknown_unit(settings: Settings, unit_id: str) -> str | None:
    """Return why unit_id is not a unit of the zone, or None when the zone has it."""
    # A unit the zone does not know is never sent a job: its handheld would connect, get a
    # welcome and wait for nothing. Better refused when its principal is made.
    path = settings.zone_file or default_zone_path()
    try:
        zone = load_zone(path)
        zone.unit(unit_id)
    except ZoneFileError as exc:
        return f"cannot check the unit against the zone: {exc}"
    except UnknownZoneId:
        return (
            f"unknown unit {unit_id!r}: the zone {zone.id!r} ({path}) has no such unit; "
            "give the id of one of its [[units]]"
        )
    return None


def _scrub(message: str, url: str) -> str:
    password = urlsplit(url).password
    for form in {password, unquote(password)} if password else set():
        message = message.replace(form, "***")
    return message


def _server(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port or 5432}"
    except ValueError:  # a malformed port; asyncpg will say what is wrong
        return "the configured server"


async def _with_store(settings: Settings, say: Say, work: Work) -> int:
    url = stack.postgres_url(settings)
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        hint = "" if settings.postgres_is_external else " (is it running? `dispatch infra up`)"
        reason = _scrub(str(e) or type(e).__name__, url)
        return fail(f"cannot connect to PostgreSQL at {_server(url)}{hint}: {reason}", EXIT_REFUSED)
    try:
        applied = await migrate(conn)
        if applied:
            say(f"database schema: applied {', '.join(applied)}")
        return await work(conn)
    finally:
        await conn.close()


def _run(settings: Settings, say: Say, work: Work) -> int:
    try:
        return asyncio.run(_with_store(settings, say, work))
    except InvalidPrincipal as exc:
        return fail(str(exc), EXIT_USAGE)
    except (AuthError, MigrationError) as exc:
        return fail(str(exc), EXIT_REFUSED)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        return fail(f"database: {exc}", EXIT_REFUSED)


def principal_add(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Add a principal."""
    try:
        role = Role(args.role)
    except ValueError:
        return fail(f"unknown role {args.role!r} (choose from {', '.join(Role)})", EXIT_USAGE)
    unit_id = args.unit_id if role in UNIT_ROLES else None
    if unit_id is not None and (why := unknown_unit(settings, unit_id)) is not None:
        return fail(why, EXIT_USAGE)

    async def work(conn: asyncpg.Connection) -> int:
        principal = await create_principal(
            conn,
            principal_id=args.principal_id,
            role=role,
            name=args.name,
            enterprise_id=args.enterprise_id,
            unit_id=args.unit_id,
            actor=cli_actor(),
        )
        bound = [
            f"{kind} {value}"
            for kind, value in (
                ("enterprise", principal.enterprise_id),
                ("unit", principal.unit_id),
            )
            if value
        ]
        say(f"added principal {principal.id} ({', '.join([principal.role, *bound])})")
        return 0

    return _run(settings, say, work)


def principal_list(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """List every principal."""

    async def work(conn: asyncpg.Connection) -> int:
        say(
            f"{'id':<24} {'role':<9} {'enterprise':<16} {'unit':<16} {'state':<8} "
            f"{'created':<20} name"
        )
        for p in await list_principals(conn):
            state = "disabled" if p.disabled_at else "active"
            say(
                f"{p.id:<24} {p.role:<9} {p.enterprise_id or '-':<16} {p.unit_id or '-':<16} "
                f"{state:<8} {when(p.created_at):<20} {p.name}"
            )
        return 0

    return _run(settings, say, work)


def principal_disable(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Disable a principal."""

    async def work(conn: asyncpg.Connection) -> int:
        changed = await disable_principal(conn, principal_id=args.principal_id, actor=cli_actor())
        if changed:
            say(f"disabled principal {args.principal_id}: none of its tokens authenticates now")
        else:
            say(f"principal {args.principal_id} was already disabled")
        return 0

    return _run(settings, say, work)


def token_create(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Create a token and print its secret, once."""
    days = args.expires_days
    if days is not None and not 1 <= days <= MAX_EXPIRES_DAYS:
        return fail(f"--expires-days must be between 1 and {MAX_EXPIRES_DAYS}", EXIT_USAGE)
    if len(args.label) > 200:
        return fail("--label is longer than 200 characters", EXIT_USAGE)
    expires_at = datetime.now(UTC) + timedelta(days=days) if days is not None else None

    async def work(conn: asyncpg.Connection) -> int:
        # A principal made before units were checked may name one the zone does not know.
        unit_id = await conn.fetchval(
            "SELECT unit_id FROM principals WHERE id = $1", args.principal_id
        )
        if unit_id is not None and (why := unknown_unit(settings, unit_id)) is not None:
            return fail(f"principal {args.principal_id}: {why}", EXIT_USAGE)
        issued = await issue_token(
            conn,
            principal_id=args.principal_id,
            label=args.label,
            expires_at=expires_at,
            actor=cli_actor(),
        )
        expiry = when(issued.expires_at) if issued.expires_at else "never"
        say(f"token {issued.token_id} for principal {issued.principal_id} (expires {expiry})")
        say(f"secret: {issued.secret.get_secret_value()}")
        say("store this secret now: it cannot be shown again (only its hash is kept)")
        return 0

    return _run(settings, say, work)


def token_list(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """List tokens without their secrets."""

    async def work(conn: asyncpg.Connection) -> int:
        now = datetime.now(UTC)
        say(
            f"{'token_id':<36} {'principal':<24} {'state':<7} {'created':<20} "
            f"{'last used':<20} {'expires':<20} label"
        )
        for t in await list_tokens(conn, principal_id=args.principal_id):
            say(
                f"{t.token_id!s:<36} {t.principal_id:<24} {t.state(now):<7} "
                f"{when(t.created_at):<20} {when(t.last_used_at):<20} "
                f"{when(t.expires_at):<20} {t.label or '-'}"
            )
        return 0

    return _run(settings, say, work)


def token_revoke(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Revoke a token."""
    try:
        token_id = uuid.UUID(args.token_id)
    except ValueError:
        return fail(
            f"{args.token_id!r} is not a token id (a UUID, as `dispatch token list` shows)",
            EXIT_USAGE,
        )

    async def work(conn: asyncpg.Connection) -> int:
        if await revoke_token(conn, token_id=token_id, actor=cli_actor()):
            say(f"revoked token {token_id}")
        else:
            say(f"token {token_id} was already revoked")
        return 0

    return _run(settings, say, work)
