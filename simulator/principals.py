"""Demo principals and tokens for a zone: its units, a desk per enterprise, a hotline, a commander.

Made with the project's own auth functions on a PostgreSQL connection (docs/auth.md), so they
are real principals with real hashed tokens. Idempotent: a second run finds the principals and
only issues fresh tokens, which expire after a day so that runs leave no lasting credentials.

`dispatch run` needs only the three tokens it prints for the pages (page_tokens): those are
labelled `pages`, and each new batch revokes the batch before, so one set is valid at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from pydantic import SecretStr

from consumers.auth import (
    Role,
    create_principal,
    issue_token,
    list_principals,
    list_tokens,
    revoke_token,
)
from dispatch.events import PlaceType
from dispatch.zone import UnitKind, Zone

ACTOR = "simulator"
HOTLINE_ID = "hotline"
COMMANDER_ID = "commander-duty"
TOKEN_LABEL = "simulator"  # noqa: S105  # what the tokens are for, not a secret
PAGES_LABEL = "pages"  # the tokens `dispatch run` prints for the pages

UNIT_ROLE = {
    UnitKind.PATROL: Role.PATROL,
    UnitKind.SCHOOL_OFFICER: Role.PATROL,
    UnitKind.GUARD: Role.GUARD,
    UnitKind.FIRE: Role.UNIT,
    UnitKind.MEDICAL: Role.UNIT,
    UnitKind.MEDIATOR: Role.UNIT,
}


class PrincipalMismatch(ValueError):
    """Raised when a principal of a demo id exists but is not what the demo needs."""


@dataclass(frozen=True)
class DemoPrincipal:
    """A principal of the demo and a fresh token of it (never printed: a SecretStr)."""

    id: str
    role: Role
    token: SecretStr
    unit_id: str | None = None
    enterprise_id: str | None = None


@dataclass(frozen=True)
class DemoPrincipals:
    """Every demo principal: units by unit id, desks by enterprise id, the hotline, a commander."""

    units: dict[str, DemoPrincipal]
    desks: dict[str, DemoPrincipal]
    hotline: DemoPrincipal
    commander: DemoPrincipal


def desk_id(enterprise_id: str) -> str:
    """Return the demo desk's principal id of an enterprise (ent-hengtong: desk-hengtong)."""
    return "desk-" + enterprise_id.removeprefix("ent-")


def _wanted(zone: Zone) -> list[tuple[str, Role, str, str | None, str | None]]:
    """Return (id, role, name, enterprise, unit) of every demo principal of the zone."""
    wanted: list[tuple[str, Role, str, str | None, str | None]] = []
    for unit in zone.units:
        enterprise = unit.home_place_id if unit.kind is UnitKind.GUARD else None
        wanted.append((unit.id, UNIT_ROLE[unit.kind], unit.name, enterprise, unit.id))
    for place in zone.places_of_type(PlaceType.ENTERPRISE):
        wanted.append((desk_id(place.id), Role.DESK, f"{place.name} 值班室", place.id, None))
    wanted.append((HOTLINE_ID, Role.SENSOR, "警企热线 police-enterprise hotline", None, None))
    wanted.append((COMMANDER_ID, Role.COMMANDER, "值班指挥长 duty commander", None, None))
    return wanted


async def _ensure_principals(
    conn: asyncpg.Connection, zone: Zone
) -> list[tuple[str, Role, str, str | None, str | None]]:
    """Create the zone's demo principals that are missing; return every one (see _wanted)."""
    existing = {p.id: p for p in await list_principals(conn)}
    wanted = _wanted(zone)
    for principal_id, role, name, enterprise_id, unit_id in wanted:
        found = existing.get(principal_id)
        if found is None:
            await create_principal(
                conn,
                principal_id=principal_id,
                role=role,
                name=name,
                enterprise_id=enterprise_id,
                unit_id=unit_id,
                actor=ACTOR,
            )
        elif (found.role, found.enterprise_id, found.unit_id) != (role, enterprise_id, unit_id):
            raise PrincipalMismatch(
                f"principal {principal_id!r} exists as {found.role} (enterprise "
                f"{found.enterprise_id}, unit {found.unit_id}); the demo needs {role} "
                f"(enterprise {enterprise_id}, unit {unit_id})"
            )
    return wanted


async def ensure_demo_principals(
    conn: asyncpg.Connection, zone: Zone, *, token_days: int = 1
) -> DemoPrincipals:
    """Create the zone's demo principals that are missing; issue each a fresh token."""
    expires_at = datetime.now(UTC) + timedelta(days=token_days)
    made: dict[str, DemoPrincipal] = {}
    for principal_id, role, _, enterprise_id, unit_id in await _ensure_principals(conn, zone):
        token = await issue_token(
            conn, principal_id=principal_id, label=TOKEN_LABEL, expires_at=expires_at, actor=ACTOR
        )
        made[principal_id] = DemoPrincipal(
            principal_id, role, token.secret, unit_id=unit_id, enterprise_id=enterprise_id
        )
    return DemoPrincipals(
        units={unit.id: made[unit.id] for unit in zone.units},
        desks={
            place.id: made[desk_id(place.id)] for place in zone.places_of_type(PlaceType.ENTERPRISE)
        },
        hotline=made[HOTLINE_ID],
        commander=made[COMMANDER_ID],
    )


async def revoke_page_tokens(conn: asyncpg.Connection, principal_ids: Sequence[str]) -> int:
    """Revoke the page tokens of these principals that still work; return how many."""
    now = datetime.now(UTC)
    revoked = 0
    for principal_id in principal_ids:
        for token in await list_tokens(conn, principal_id=principal_id):
            live = token.revoked_at is None and (token.expires_at is None or token.expires_at > now)
            if token.label == PAGES_LABEL and live:
                revoked += await revoke_token(conn, token_id=token.token_id, actor=ACTOR)
    return revoked


async def page_tokens(
    conn: asyncpg.Connection, zone: Zone, principal_ids: Sequence[str], *, days: int = 7
) -> dict[str, SecretStr]:
    """Make the zone's demo principals; give these a fresh page token each, the earlier ones
    revoked.

    Only the tokens that are printed are issued (a secret can be shown only when it is made:
    the store keeps hashes), and the batch before is revoked, so a run leaves one set that
    works; `dispatch run` revokes that set too when it stops. The expiry is only a backstop
    for a run that never stopped cleanly.
    """
    known = {principal_id for principal_id, *_ in await _ensure_principals(conn, zone)}
    unknown = [p for p in principal_ids if p not in known]
    if unknown:
        raise PrincipalMismatch(f"no demo principal {unknown[0]!r} in zone {zone.id}")
    await revoke_page_tokens(conn, principal_ids)
    expires_at = datetime.now(UTC) + timedelta(days=days)
    issued = {}
    for principal_id in principal_ids:
        token = await issue_token(
            conn, principal_id=principal_id, label=PAGES_LABEL, expires_at=expires_at, actor=ACTOR
        )
        issued[principal_id] = token.secret
    return issued
