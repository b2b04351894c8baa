"""A vault's description as JSON: what ``vault describe --output json`` prints and
``GET /api/v1/vaults/{name}`` answers, written once for both."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from strongroom.services.vaults.keyref import KeyOptions
from strongroom.services.vaults.service import VaultService
from strongroom.vault.vault import KeyInfo, VaultDescription


def key_document(info: KeyInfo) -> dict[str, Any]:
    """One wrapping of the master key (never the key itself)."""
    data = asdict(info)
    data["created"] = info.created.isoformat()
    return data


def description_document(
    name: str, description: VaultDescription, *, lock_enforced_by: str
) -> dict[str, Any]:
    """The vault's format, settings, keys, points, index size, damage and lock."""
    return {
        "name": name,
        "vault_id": description.vault_id,
        "url": description.url,
        "format_version": description.format_version,
        "created": description.created.isoformat(),
        "points": description.points,
        "index_chunks": description.index_chunks,
        "index_packs": description.index_packs,
        "key_generations": list(description.key_generations),
        "keys": [key_document(info) for info in description.keys],
        "settings": description.config.model_dump(mode="json", exclude={"id_key", "vault_id"}),
        "damaged_objects": description.damaged_objects,
        "lock_enforced_by": lock_enforced_by,
    }


def describe_vault(
    service: VaultService, name: str, key: KeyOptions | None = None
) -> dict[str, Any]:
    """Open vault ``name`` (with ``key``, default its declared key) and describe it."""
    description = service.describe(name, key)
    return description_document(name, description, lock_enforced_by=service.lock_enforcement(name))
