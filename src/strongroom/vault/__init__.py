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

from strongroom.vault.config import VaultConfig, VaultSettings
from strongroom.vault.gc import GcReport
from strongroom.vault.locks import LockInfo, LockSettings
from strongroom.vault.manifest import PointStats, RecoveryPoint, RecoveryPointId, StreamRecord
from strongroom.vault.pack import PackHeader, read_pack_header
from strongroom.vault.reader import ReaderOptions, StreamReader, VaultReader
from strongroom.vault.repair import RepairReport
from strongroom.vault.stream_writer import StreamWriter
from strongroom.vault.vault import KeyInfo, Vault, VaultDescription
from strongroom.vault.verify import DamagedStream, Problem, VerifyReport
from strongroom.vault.writer import VaultWriter, WriterOptions

__all__ = [
    "DamagedStream",
    "GcReport",
    "KeyInfo",
    "LockInfo",
    "LockSettings",
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
