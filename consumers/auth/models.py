"""Who may call the system: principals, their roles, their tokens, and the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_core import PydanticCustomError

from dispatch.events import Identifier, Name


class AuthModel(BaseModel):
    """Base of every model here: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Role(StrEnum):
    """What a principal is; the role decides what it may do (see consumers.auth.policy)."""

    DESK = "desk"
    GUARD = "guard"
    PATROL = "patrol"
    UNIT = "unit"
    SENSOR = "sensor"
    COMMANDER = "commander"
    ADMIN = "admin"


UNIT_ROLES = frozenset({Role.GUARD, Role.PATROL, Role.UNIT})
"""Roles that stand for one unit of the zone and must name it."""

ENTERPRISE_ROLES = frozenset({Role.DESK, Role.GUARD, Role.SENSOR})
"""Roles that may be bound to an enterprise (a desk must be)."""


class Principal(AuthModel):
    """An authenticated caller: a desk, a unit, a sensor, a commander or an administrator."""

    id: Identifier
    role: Role
    enterprise_id: Identifier | None = None
    unit_id: Identifier | None = None
    name: Name

    # The same rules as the CHECK constraints of table `principals`; keep the two in step.
    @model_validator(mode="after")
    def _bindings_fit_role(self) -> Self:
        if self.role is Role.DESK and self.enterprise_id is None:
            raise PydanticCustomError(
                "enterprise_required", "a desk principal must be bound to an enterprise"
            )
        if self.enterprise_id is not None and self.role not in ENTERPRISE_ROLES:
            raise PydanticCustomError(
                "enterprise_not_allowed",
                "only desk, guard and sensor principals can be bound to an enterprise",
            )
        if self.role in UNIT_ROLES and self.unit_id is None:
            raise PydanticCustomError(
                "unit_required", "a {role} principal must name its unit", {"role": self.role}
            )
        if self.unit_id is not None and self.role not in UNIT_ROLES:
            raise PydanticCustomError(
                "unit_not_allowed", "only guard, patrol and unit principals have a unit"
            )
        return self


class PrincipalInfo(Principal):
    """A stored principal, as listed: when it was created and whether it is disabled."""

    created_at: datetime
    disabled_at: datetime | None = None


class IssuedToken(AuthModel):
    """A freshly issued token; the only place its secret ever appears, so show it once."""

    token_id: uuid.UUID
    principal_id: Identifier
    secret: SecretStr
    label: str
    expires_at: datetime | None = None


class TokenState(StrEnum):
    """Whether a token authenticates right now."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class TokenInfo(AuthModel):
    """A stored token, as listed: never its secret, nor its hash."""

    token_id: uuid.UUID
    principal_id: Identifier
    label: str
    created_at: datetime
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def state(self, now: datetime) -> TokenState:
        """Tell whether the token is active, expired or revoked at now."""
        if self.revoked_at is not None:
            return TokenState.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return TokenState.EXPIRED
        return TokenState.ACTIVE


class AuditEntry(AuthModel):
    """One recorded change: who did what to which subject, when, with what detail."""

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any] = Field(default_factory=dict)
