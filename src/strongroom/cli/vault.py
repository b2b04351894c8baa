"""``strongroom vault …``: the low-level commands over one vault, for operators and scripts."""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from strongroom.cli import lock, vault_read
from strongroom.cli.common import (
    KeyFileOption,
    OutputOption,
    PassphraseEnvOption,
    app_context,
)
from strongroom.cli.plain import human_size
from strongroom.cli.render import OutputFormat, print_result, print_table, stdout
from strongroom.errors import ConfigError, IntegrityError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from strongroom.services.vaults.keyref import KeyOptions
    from strongroom.services.vaults.service import VaultService
    from strongroom.vault import LeaseStatus, VerifyReport

app = typer.Typer(
    help="Low-level commands over one vault: create, backup, points, restore, verify, keys, "
    "leases.",
    no_args_is_help=True,
)
key_app = typer.Typer(help="Manage the wrappings of a vault's master key.", no_args_is_help=True)
app.add_typer(key_app, name="key")

NameArgument = Annotated[str, typer.Argument(help="The vault's registered name.")]


def _service(ctx: typer.Context) -> VaultService:
    return vault_read.vault_service(app_context(ctx))


def _key(passphrase_env: str | None, key_file: Path | None) -> KeyOptions:
    return vault_read.key_options(passphrase_env, key_file)


@app.command()
def create(
    ctx: typer.Context,
    name: NameArgument,
    url: Annotated[str, typer.Option(help="Where the vault lives: file:///PATH or memory://NAME.")],
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
    chunk_avg_size: Annotated[
        int,
        typer.Option(
            help="Average chunk size in bytes (content-defined chunking; chunks are half to "
            "four times this size)."
        ),
    ] = 1024 * 1024,
    pack_size: Annotated[int, typer.Option(help="Target pack size in bytes.")] = 16 * 1024 * 1024,
    compression_level: Annotated[int, typer.Option(help="zstd level, 1-22.")] = 3,
) -> None:
    """Create an encrypted vault at URL and register it as NAME.

    The key is a passphrase read from an environment variable (--passphrase-env VAR) or a
    key file (--key-file F, generated if it does not exist). Only that setting is
    stored; later commands find the key the same way.
    """

    from pydantic import ValidationError

    from strongroom.config.vaults import VaultConfig  # pydantic loads only for this command

    setting = _key(passphrase_env, key_file).setting()
    if setting is None:
        raise ConfigError("a new vault needs a key: give --passphrase-env VAR or --key-file FILE")
    try:
        config = VaultConfig.model_validate(
            {
                "url": url,
                "key": setting.model_dump(mode="json"),
                "chunking": {
                    "min_size_bytes": chunk_avg_size // 2,
                    "average_size_bytes": chunk_avg_size,
                    "max_size_bytes": chunk_avg_size * 4,
                },
                "pack_size_bytes": pack_size,
                "compression": {"level": compression_level},
            }
        )
    except ValidationError as error:
        raise ConfigError(_validation_message(error)) from None
    description = _service(ctx).create(name, config)
    stdout.print(f"created vault {name} ({description.vault_id}) at {description.url}")


def _validation_message(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
    )


@app.command()
def backup(
    ctx: typer.Context,
    name: NameArgument,
    path: Annotated[str, typer.Argument(help="A file, or - for standard input.")],
    stream: Annotated[
        str | None, typer.Option(help="Stream name [default: the file's name, or 'stdin'].")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="A KEY=VALUE tag for the recovery point; repeatable.")
    ] = None,
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Back up a file or standard input into one recovery point; print its id last."""
    tags = _parse_tags(tag or [])
    service = _service(ctx)
    key = _key(passphrase_env, key_file)
    if path == "-":
        stream_name = stream or "stdin"
        point = service.backup_streams(
            name,
            {stream_name: sys.stdin.buffer},
            metadata={"source": {"type": "stdin"}},
            tags=tags,
            key=key,
        )
    else:
        source = Path(path)
        if not source.is_file():
            raise ConfigError(
                f"{path} is not a regular file",
                hint="Back up folders through a files resource, or pipe data in with '-'.",
            )
        with source.open("rb") as handle:
            point = service.backup_streams(
                name,
                {stream or source.name: handle},
                metadata={"source": {"type": "file", "path": str(source.absolute())}},
                tags=tags,
                key=key,
            )
    stats = point.stats
    typer.echo(
        f"stored {human_size(stats.logical_size)} as {human_size(stats.new_stored_size)} new "
        f"({stats.new_chunk_count} of {stats.chunk_count} chunks new)",
        err=True,
    )
    typer.echo(point.id)


@app.command()
def points(
    ctx: typer.Context,
    name: NameArgument,
    output: OutputOption = OutputFormat.table,
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """List the vault's recovery points, oldest first."""
    vault_read.list_points(app_context(ctx), name, output, passphrase_env, key_file)


@app.command()
def restore(
    ctx: typer.Context,
    name: NameArgument,
    point: Annotated[str, typer.Argument(help="Recovery point id (or a unique prefix).")],
    to: Annotated[str, typer.Option("--to", help="A file to write, or - for standard output.")],
    stream: Annotated[
        str | None, typer.Option(help="The stream to restore [default: the only one].")
    ] = None,
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Restore one stream of a recovery point to a file or standard output.

    Every chunk is checked before it is written; a file target is written under a
    temporary name and renamed only when the whole stream checked out.
    """
    vault_read.restore_stream(app_context(ctx), name, point, to, stream, passphrase_env, key_file)


@app.command()
def verify(
    ctx: typer.Context,
    name: NameArgument,
    point: Annotated[str | None, typer.Argument(help="Only this recovery point.")] = None,
    read_data: Annotated[
        bool, typer.Option("--read-data", help="Download and check every byte.")
    ] = False,
    read_data_subset: Annotated[
        str | None,
        typer.Option(help="Check the data of a random N% of the packs, e.g. 5%."),
    ] = None,
    output: OutputOption = OutputFormat.table,
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Check a vault: structure by default, every byte with --read-data.

    Exits non-zero when anything is damaged, naming each damaged point and stream.
    """
    if read_data and read_data_subset:
        raise ConfigError("give --read-data or --read-data-subset, not both")
    subset = _parse_percent(read_data_subset) if read_data_subset else None
    report = _service(ctx).verify(
        name,
        point,
        read_data=read_data,
        subset_percent=subset,
        key=_key(passphrase_env, key_file),
    )
    _render_verify(name, report, output)
    if not report.ok:
        named = sorted({p.kind for p in report.problems if p.kind != "damaged"})
        raise IntegrityError(
            f"vault {name}: {len(report.damaged_points())} damaged recovery point(s), "
            f"{len(report.problems)} problem(s)" + (f" ({', '.join(named)})" if named else ""),
            hint="Restore the damaged points from a copy; the others stay restorable. A point "
            "missing from the vault or unknown to the catalog was changed outside strongroom.",
        )


@app.command()
def describe(
    ctx: typer.Context,
    name: NameArgument,
    output: OutputOption = OutputFormat.table,
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Show the vault's format, settings, keys, number of points and index size."""
    from strongroom.services.vaults.documents import describe_vault

    data = describe_vault(_service(ctx), name, _key(passphrase_env, key_file))

    def for_people() -> None:
        print_table(
            f"vault {name}",
            ["property", "value"],
            [[key, value] for key, value in data.items() if key not in {"keys", "settings"}],
        )

    print_result(output, lambda: data, for_people)


@key_app.command("list")
def key_list(
    ctx: typer.Context,
    name: NameArgument,
    output: OutputOption = OutputFormat.table,
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """List the wrappings of the master key (never the key itself)."""
    keys = _service(ctx).list_keys(name, _key(passphrase_env, key_file))

    def for_people() -> None:
        print_table(
            f"keys of {name}",
            ["key id", "kind", "label", "created"],
            [[info.key_id, info.kind, info.label, info.created.isoformat()] for info in keys],
        )

    from strongroom.services.vaults.documents import key_document

    print_result(output, lambda: [key_document(info) for info in keys], for_people)


@key_app.command("add")
def key_add(
    ctx: typer.Context,
    name: NameArgument,
    new_passphrase_env: Annotated[
        str | None, typer.Option(help="Variable holding the new passphrase.")
    ] = None,
    new_key_file: Annotated[
        Path | None, typer.Option(help="New key file (generated if missing).")
    ] = None,
    label: Annotated[str, typer.Option(help="A label to tell keys apart.")] = "",
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Add a passphrase or key file that opens the vault; no data is rewritten."""
    key_id = _service(ctx).add_key(
        name,
        _key(new_passphrase_env, new_key_file),
        label=label,
        key=_key(passphrase_env, key_file),
    )
    typer.echo(key_id)


@key_app.command("remove")
def key_remove(
    ctx: typer.Context,
    name: NameArgument,
    key_id: Annotated[str, typer.Argument(help="The key id, as 'vault key list' shows it.")],
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Remove one wrapping of the master key (the last one is never removed)."""
    _service(ctx).remove_key(name, key_id, _key(passphrase_env, key_file))
    typer.echo(f"removed key {key_id}", err=True)


@key_app.command("rotate")
def key_rotate(
    ctx: typer.Context,
    name: NameArgument,
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Start a new data key: new recovery points use it, old ones stay readable."""
    generation = _service(ctx).rotate_data_key(name, _key(passphrase_env, key_file))
    typer.echo(f"data key generation {generation} is now in use")


@app.command()
def gc(
    ctx: typer.Context,
    name: NameArgument,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, change nothing.")] = False,
    repack_threshold: Annotated[
        float | None,
        typer.Option(help="Repack packs whose live share is below this (0-1) [default: 0.5]."),
    ] = None,
    grace_hours: Annotated[
        float | None,
        typer.Option(help="Keep packs younger than this many hours [default: 1]."),
    ] = None,
    output: OutputOption = OutputFormat.table,
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Delete data no recovery point references and repack mostly-dead packs.

    Runs under the vault's exclusive lease; a backup in progress makes it refuse,
    and packs younger than the grace period are never touched.
    """

    report = _service(ctx).gc(
        name,
        dry_run=dry_run,
        repack_threshold=repack_threshold,
        grace=timedelta(hours=grace_hours) if grace_hours is not None else None,
        key=_key(passphrase_env, key_file),
    )
    data = asdict(report) | {"bytes_freed": report.bytes_freed}

    def for_people() -> None:
        print_table(
            f"gc {name}{' (dry run)' if dry_run else ''}",
            ["measure", "value"],
            [
                [key, human_size(value) if key.startswith("bytes") else value]
                for key, value in data.items()
                if key != "problems"
            ],
        )
        for pack, problem in report.problems.items():
            stdout.print(f"[yellow]kept[/] {pack}: {escape(problem)}", highlight=False)

    print_result(output, lambda: data, for_people)


@app.command()
def leases(
    ctx: typer.Context,
    name: NameArgument,
    output: OutputOption = OutputFormat.table,
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """List the vault's leases: backups, GC and repair running now (or that died).

    A lease is live while its holder renews it, stale once it ended or its process on
    this machine is gone, damaged when its object cannot be read (it counts as live
    until it is older than a lease). Not the retention lock: see 'vault lock-status'.
    """
    found = _service(ctx).leases(name, _key(passphrase_env, key_file))

    def for_people() -> None:
        print_table(
            f"leases of {name}",
            ["object", "kind", "state", "age", "holder", "purpose", "why"],
            [
                [
                    status.name,
                    status.kind,
                    status.state,
                    _age(status.age),
                    f"pid {status.info.pid} on {status.info.host}" if status.info else "",
                    status.info.purpose if status.info else "",
                    status.reason,
                ]
                for status in found
            ],
        )

    print_result(output, lambda: [_lease_json(status) for status in found], for_people)


@app.command("clear-stale-leases")
def clear_stale_leases(
    ctx: typer.Context,
    name: NameArgument,
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Remove stale and damaged leases (left by backups or GCs that died); never a live one.

    Say which were removed. A live holder whose damaged lease object is removed stops at
    its next renewal, before it deletes or commits anything more.
    """
    removed = _service(ctx).remove_stale_leases(name, _key(passphrase_env, key_file))
    for status in removed:
        typer.echo(f"removed {status.state} {status.kind} lease {status.name}: {status.reason}")
    typer.echo(f"{len(removed)} lease(s) removed", err=True)


@app.command()
def repair(
    ctx: typer.Context,
    name: NameArgument,
    output: OutputOption = OutputFormat.table,
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Rebuild the vault's index from the pack headers; name packs that cannot be read."""
    report = _service(ctx).repair_index(name, _key(passphrase_env, key_file))
    data = asdict(report) | {"ok": report.ok}
    print_result(
        output,
        lambda: data,
        lambda: print_table(
            f"repair {name}", ["measure", "value"], [[k, v] for k, v in data.items()]
        ),
    )
    if not report.ok:
        raise IntegrityError(f"vault {name}: some packs could not be read; see the report")


def _parse_tags(values: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for value in values:
        key, separator, text = value.partition("=")
        if not separator or not key:
            raise ConfigError(f"tag {value!r} is not KEY=VALUE")
        tags[key] = text
    return tags


def _parse_percent(value: str) -> float:
    try:
        percent = float(value.strip().removesuffix("%"))
    except ValueError:
        raise ConfigError(f"--read-data-subset {value!r} is not a percentage like 5%") from None
    if not 0 < percent <= 100:
        raise ConfigError(f"--read-data-subset {value!r} must be above 0% and at most 100%")
    return percent


def _lease_json(status: LeaseStatus) -> dict[str, Any]:
    info = status.info
    return {
        "object": status.name,
        "kind": status.kind,
        "state": status.state,
        "age_seconds": round(status.age.total_seconds()),
        "reason": status.reason,
        "holder": None
        if info is None
        else {
            "id": info.holder,
            "host": info.host,
            "pid": info.pid,
            "purpose": info.purpose,
            "created": info.created.isoformat(),
            "expires": info.expires.isoformat(),
        },
    }


def _age(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def _render_verify(name: str, report: VerifyReport, output: OutputFormat) -> None:
    damaged = report.damaged_points()

    def for_people() -> None:
        print_table(
            f"verify {name}: {'ok' if report.ok else 'DAMAGED'}",
            ["checked", "count"],
            [
                ["recovery points", report.points_checked],
                ["streams", report.streams_checked],
                ["packs read", report.packs_checked],
                ["bytes read", human_size(report.bytes_read)],
                ["unreferenced packs (garbage, not damage)", report.unindexed_packs],
            ],
        )
        for point, streams in damaged.items():
            names = ", ".join("(all)" if stream is None else stream for stream in streams)
            stdout.print(
                f"[red]damaged[/] recovery point {point}: {escape(names)}", highlight=False
            )
        for problem in report.problems[:50]:
            label = "problem" if problem.kind == "damaged" else problem.kind
            stdout.print(
                f"[red]{label}[/] {problem.object_name}: {escape(problem.message)}", highlight=False
            )

    print_result(
        output,
        lambda: {
            "vault": name,
            "ok": report.ok,
            "points_checked": report.points_checked,
            "streams_checked": report.streams_checked,
            "packs_checked": report.packs_checked,
            "bytes_read": report.bytes_read,
            "unindexed_packs": report.unindexed_packs,
            "damaged": [{"point": point, "streams": streams} for point, streams in damaged.items()],
            "problems": [
                {"object": p.object_name, "kind": p.kind, "message": p.message}
                for p in report.problems
            ],
        },
        for_people,
    )


lock.register(app)  # vault lock, unlock, lock-status (cli/lock.py)
