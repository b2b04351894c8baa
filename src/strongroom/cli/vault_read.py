"""What ``vault points`` and ``vault restore`` do once their command line is parsed.

Both command-line paths run these: the Typer commands of :mod:`strongroom.cli.vault` and
the lean path of :mod:`strongroom.cli.lean`, which parses these two commands without
importing Typer, Rich or the rest of the command tree. Nothing here imports either at
module level (Rich loads only to draw a table), so the two paths cannot print different
things.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.cli.plain import OutputFormat, echo_error_stream, human_size, print_json
from strongroom.errors import ConfigError

if TYPE_CHECKING:
    from strongroom.services.context import AppContext
    from strongroom.services.vaults.keyref import KeyOptions
    from strongroom.services.vaults.service import VaultService
    from strongroom.vault import RecoveryPoint


def vault_service(context: AppContext) -> VaultService:
    """Return the vault service on ``context`` (the vault engine loads on first use)."""
    from strongroom.services.vaults.service import VaultService

    return VaultService(context)


def key_options(passphrase_env: str | None, key_file: Path | None) -> KeyOptions:
    """Return the key options of a command line (both may be None: the registered key)."""
    from strongroom.services.vaults.keyref import KeyOptions

    return KeyOptions(passphrase_env=passphrase_env, key_file=key_file)


def list_points(
    context: AppContext,
    name: str,
    output: OutputFormat,
    passphrase_env: str | None,
    key_file: Path | None,
) -> None:
    """Print the recovery points of vault ``name``, oldest first, as a table or JSON."""
    found = vault_service(context).points(name, key_options(passphrase_env, key_file))
    if output is OutputFormat.json:
        print_json([point_json(point) for point in found])
        return
    from strongroom.cli.render import print_table

    print_table(
        f"recovery points in {name}",
        ["id", "created", "streams", "size", "new stored", "tags"],
        [
            [
                point.id[:16],
                point.created.isoformat(timespec="seconds"),
                len(point.streams),
                human_size(point.stats.logical_size),
                human_size(point.stats.new_stored_size),
                ",".join(f"{key}={value}" for key, value in point.tags.items()),
            ]
            for point in found
        ],
    )


def restore_stream(
    context: AppContext,
    name: str,
    point: str,
    to: str,
    stream: str | None,
    passphrase_env: str | None,
    key_file: Path | None,
) -> None:
    """Restore one stream of a recovery point to the file ``to`` (``-``: standard output).

    A file is written under a temporary name and renamed only when the whole stream
    checked out; an existing file is never overwritten (``ConfigError``).
    """
    service = vault_service(context)
    key = key_options(passphrase_env, key_file)
    if to == "-":
        service.copy_stream(name, point, stream, sys.stdout.buffer, key)
        sys.stdout.buffer.flush()
        return
    target = Path(to)
    if target.exists():
        raise ConfigError(f"{target} already exists; restore never overwrites a file")
    partial = target.with_name(f".{target.name}.strongroom-partial")
    try:
        with partial.open("wb") as handle:
            written = service.copy_stream(name, point, stream, handle, key)
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
    echo_error_stream(f"restored {human_size(written)} to {target}")


def point_json(point: RecoveryPoint) -> dict[str, Any]:
    """The JSON of one recovery point, as ``vault points --output json`` prints it."""
    return {
        "id": point.id,
        "created": point.created.isoformat(),
        "tags": point.tags,
        "key_generation": point.key_generation,
        "stats": point.stats.model_dump(),
        "streams": [{"name": record.name, "size": record.size} for record in point.streams],
        "metadata": point.metadata,
    }
