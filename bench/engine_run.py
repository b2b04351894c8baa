"""Drive the vault engine without the CLI: what a backup costs apart from CLI start-up.

    python bench/engine_run.py create REPO CACHE
    python bench/engine_run.py backup REPO CACHE STREAM < data      # prints the point id
    python bench/engine_run.py restore REPO CACHE POINT STREAM > out

The vault is opened through the public API with the passphrase in STRONGROOM_PASSPHRASE
(the default Argon2id wrapping, like the CLI) over the same wrapped store the CLI uses; no
catalog, no CLI imports. ``vault_bench.py`` runs it as the "strongroom engine" row.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from strongroom.keys import PassphraseProvider
from strongroom.storage.open import open_store
from strongroom.vault import Vault


def main() -> None:
    command, repo, cache = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    store = open_store(repo.absolute().as_uri())
    key = PassphraseProvider(os.environ["STRONGROOM_PASSPHRASE"])
    if command == "create":
        Vault.create(store, key, cache_dir=cache).close()
        return
    with Vault.open(store, key, cache_dir=cache) as vault:
        if command == "backup":
            with vault.writer() as writer:
                writer.add_stream(sys.argv[4], sys.stdin.buffer)
                print(writer.commit())
        elif command == "restore":
            out = sys.stdout.buffer
            with vault.reader(sys.argv[4]) as reader:
                for piece in reader.iter_stream(sys.argv[5]):
                    out.write(piece)
            out.flush()
        else:
            raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
