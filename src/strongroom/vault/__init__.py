"""Adapters layer: the recovery-point format (chunking, packs, index, manifests, keys in use) over a blob store.

The format is specified in ``docs/vault-format.md``. Public API::

    vault = Vault.create(store, key_provider, VaultSettings(...))   # or Vault.open(...)
    with vault.writer() as writer:
        writer.add_stream("dump.sql", source)
        point_id = writer.commit(metadata={...}, tags={...})
    with vault.reader(point_id) as reader:
        for piece in reader.iter_stream("dump.sql"): ...
    report = vault.verify(read_data=True)
    vault.delete_point(old_id); vault.gc()                       # reclaim space
    vault.repair_index()                                         # rebuild index/ from packs
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strongroom.vault.config import VaultConfig, VaultSettings
    from strongroom.vault.gc import GcReport
    from strongroom.vault.lease_objects import LeaseInfo, LeaseSettings, LeaseStatus
    from strongroom.vault.manifest import PointStats, RecoveryPoint, RecoveryPointId, StreamRecord
    from strongroom.vault.pack import PackHeader, read_pack_header
    from strongroom.vault.reader import ReaderOptions, StreamReader, VaultReader
    from strongroom.vault.repair import RepairReport
    from strongroom.vault.stream_writer import StreamWriter
    from strongroom.vault.vault import KeyInfo, Vault, VaultDescription
    from strongroom.vault.verify import DamagedStream, Problem, VerifyReport
    from strongroom.vault.writer import VaultWriter, WriterOptions

_HOMES = {
    "DamagedStream": "strongroom.vault.verify",
    "GcReport": "strongroom.vault.gc",
    "KeyInfo": "strongroom.vault.vault",
    "LeaseInfo": "strongroom.vault.lease_objects",
    "LeaseSettings": "strongroom.vault.lease_objects",
    "LeaseStatus": "strongroom.vault.lease_objects",
    "PackHeader": "strongroom.vault.pack",
    "PointStats": "strongroom.vault.manifest",
    "Problem": "strongroom.vault.verify",
    "ReaderOptions": "strongroom.vault.reader",
    "RecoveryPoint": "strongroom.vault.manifest",
    "RecoveryPointId": "strongroom.vault.manifest",
    "RepairReport": "strongroom.vault.repair",
    "StreamReader": "strongroom.vault.reader",
    "StreamRecord": "strongroom.vault.manifest",
    "StreamWriter": "strongroom.vault.stream_writer",
    "Vault": "strongroom.vault.vault",
    "VaultConfig": "strongroom.vault.config",
    "VaultDescription": "strongroom.vault.vault",
    "VaultReader": "strongroom.vault.reader",
    "VaultSettings": "strongroom.vault.config",
    "VaultWriter": "strongroom.vault.writer",
    "VerifyReport": "strongroom.vault.verify",
    "WriterOptions": "strongroom.vault.writer",
    "read_pack_header": "strongroom.vault.pack",
}
"""Where each public name lives: the package imports a module on first use of one of its
names, so a command loads only the parts of the engine it needs."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "DamagedStream",
    "GcReport",
    "KeyInfo",
    "LeaseInfo",
    "LeaseSettings",
    "LeaseStatus",
    "PackHeader",
    "PointStats",
    "Problem",
    "ReaderOptions",
    "RecoveryPoint",
    "RecoveryPointId",
    "RepairReport",
    "StreamReader",
    "StreamRecord",
    "StreamWriter",
    "Vault",
    "VaultConfig",
    "VaultDescription",
    "VaultReader",
    "VaultSettings",
    "VaultWriter",
    "VerifyReport",
    "WriterOptions",
    "read_pack_header",
]
