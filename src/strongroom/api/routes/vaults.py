"""Vault locks and legal holds: read by every role, changed by the roles that may.

Lifting a governance lock, changing one, and removing a legal hold are privileged
actions: admin only, with a ``reason`` (recorded with the principal).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from strongroom.api.auth import Caller, permit
from strongroom.services.access.roles import Permission, authorize_privileged
from strongroom.services.retention.legal_hold import LegalHoldService
from strongroom.services.retention.lock import LockChange, VaultLockService, parse_lock
from strongroom.services.vaults.documents import describe_vault
from strongroom.services.vaults.service import VaultService

router = APIRouter(tags=["vaults"])
Reader = Annotated[Caller, Depends(permit(Permission.READ))]
VaultName = Annotated[str, Path(description="The vault's name.")]
PointId = Annotated[str, Path(description="Recovery point id (or a unique prefix).")]


class LockRequest(BaseModel):
    """``vault lock NAME``: the lock's settings, and for a governance lock's change a reason."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["governance", "compliance"] = "governance"
    min_retention_days: int | None = Field(default=None, ge=0)
    max_retention_days: int | None = Field(default=None, ge=0)
    changeable_for_days: int | None = Field(default=None, ge=0)
    privileged: bool = Field(
        default=False, description="Change a governance lock (admin, with a reason)."
    )
    reason: str | None = Field(default=None, max_length=1000)


class ReasonRequest(BaseModel):
    """A privileged action's reason (recorded)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000, description="Why; recorded.")


class HoldRequest(ReasonRequest):
    """``legal-hold add POINT --reason TEXT``."""


def change_json(change: LockChange) -> dict[str, Any]:
    """A lock change as ``vault lock/unlock --output json`` prints it."""
    return {
        "vault": change.vault,
        "action": change.action,
        "before": change.before.to_json(),
        "after": change.after.to_json(),
        "warnings": list(change.warnings),
    }


@router.get("/vaults/{name}")
def describe(name: VaultName, caller: Reader) -> dict[str, Any]:
    """The vault's format, settings, keys (never the key), points, index size, damage and
    lock (``vault describe --output json``), opened with its declared key."""
    return describe_vault(VaultService(caller.context), name)


@router.get("/vaults/{name}/lock")
def lock_status(name: VaultName, caller: Reader) -> dict[str, Any]:
    """The vault's lock and its history (``vault lock-status --output json``)."""
    status = VaultLockService(caller.context).status(name)
    history = [
        {"at": event.at.isoformat(), "event": event.type, "actor": event.actor, **event.details}
        for event in status.history
    ]
    return {"vault": name, "summary": status.summary, **status.state.to_json(), "history": history}


@router.put("/vaults/{name}/lock")
def lock_vault(
    name: VaultName,
    body: LockRequest,
    caller: Annotated[Caller, Depends(permit(Permission.LOCK_VAULT))],
) -> dict[str, Any]:
    """Set or change the vault's lock (``vault lock``); changing a governance lock is a
    privileged action (``privileged: true`` and a reason)."""
    if body.privileged:
        body.reason = authorize_privileged(caller.principal, body.reason)
    settings = parse_lock(
        body.mode, body.min_retention_days, body.max_retention_days, body.changeable_for_days
    )
    change = VaultLockService(caller.context).lock(
        name,
        settings,
        actor=caller.principal.name,
        privileged=body.privileged,
        reason=body.reason,
    )
    return change_json(change)


@router.post("/vaults/{name}/unlock")
def unlock_vault(
    name: VaultName,
    body: ReasonRequest,
    caller: Annotated[Caller, Depends(permit(Permission.PRIVILEGED_ACTION))],
) -> dict[str, Any]:
    """Lift the vault's lock (``vault unlock --privileged --reason``): admin, with a reason."""
    reason = authorize_privileged(caller.principal, body.reason)
    change = VaultLockService(caller.context).unlock(
        name, actor=caller.principal.name, privileged=True, reason=reason
    )
    return change_json(change)


@router.get("/legal-holds")
def list_legal_holds(
    caller: Reader, vault: Annotated[str | None, Query(description="Only this vault.")] = None
) -> list[dict[str, Any]]:
    """The recovery points on legal hold (``legal-hold list --output json``)."""
    return [hold.to_json() for hold in LegalHoldService(caller.context).list(vault=vault)]


@router.put("/recovery-points/{point_id}/legal-hold")
def place_legal_hold(
    point_id: PointId,
    body: HoldRequest,
    caller: Annotated[Caller, Depends(permit(Permission.PLACE_LEGAL_HOLD))],
) -> dict[str, Any]:
    """Put a recovery point on legal hold (``legal-hold add``)."""
    hold = LegalHoldService(caller.context).add(
        point_id, reason=body.reason, actor=caller.principal.name
    )
    return hold.to_json()


@router.delete("/recovery-points/{point_id}/legal-hold")
def remove_legal_hold(
    point_id: PointId,
    caller: Annotated[Caller, Depends(permit(Permission.PRIVILEGED_ACTION))],
    reason: Annotated[str, Query(min_length=1, max_length=1000, description="Why; recorded.")],
) -> dict[str, Any]:
    """Lift a legal hold (``legal-hold remove``): a privileged action, admin with a reason."""
    checked = authorize_privileged(caller.principal, reason)
    hold = LegalHoldService(caller.context).remove(
        point_id, actor=caller.principal.name, reason=checked
    )
    return hold.to_json()
