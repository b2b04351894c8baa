"""``strongroom report compliance``, ``report verify`` and ``report signing-key create``."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import app_context
from strongroom.cli.render import stdout

signing_key_app = typer.Typer(
    help="The Ed25519 key compliance reports are signed with.", no_args_is_help=True
)


def register(report_app: typer.Typer) -> None:
    """Add ``compliance``, ``verify`` and ``signing-key`` to the ``report`` group."""
    report_app.command("compliance")(compliance)
    report_app.command("verify")(verify)
    report_app.add_typer(signing_key_app, name="signing-key")


def compliance(
    ctx: typer.Context,
    framework: Annotated[
        list[str],
        typer.Option(
            help="soc2, gdpr, pci-dss, hipaa, all, or a custom framework file (.yaml); repeatable."
        ),
    ],
    period: Annotated[str, typer.Option(help="How far back from --until: 30d, 12w …")] = "30d",
    until: Annotated[
        str | None,
        typer.Option(
            help="End of the period (ISO 8601, UTC if no zone; default now).", show_default=False
        ),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="json, html or pdf.")] = "json",
    to: Annotated[
        Path | None,
        typer.Option(
            help="The report file (default strongroom-compliance-DATE.FORMAT here).",
            show_default=False,
        ),
    ] = None,
    signing_key: Annotated[
        Path | None,
        typer.Option(
            help="Ed25519 signing key (default HOME/keys/report-signing.key).", show_default=False
        ),
    ] = None,
    unsigned: Annotated[bool, typer.Option(help="Write the report without a signature.")] = False,
    restore_procedure: Annotated[
        Path | None,
        typer.Option(
            help="The documented restore procedure the controls look for.", show_default=False
        ),
    ] = None,
) -> None:
    """Evaluate compliance frameworks over the catalog and write a dated, signed report."""
    from strongroom.errors import ConfigError
    from strongroom.services.reports.compliance import ComplianceService, ReportFormat
    from strongroom.services.retention.periods import parse_duration, parse_since

    context = app_context(ctx)
    try:
        chosen_format = ReportFormat(output_format.lower())
    except ValueError:
        raise ConfigError(
            f"unknown report format {output_format!r}", hint="Use json, html or pdf."
        ) from None
    end = parse_since(until, context.now(), future=True) if until else None
    service = ComplianceService(context)
    document = service.build(
        framework,
        period=parse_duration(period),
        until=end,
        restore_procedure=restore_procedure,
    )
    day = (end or context.now()).astimezone(UTC).strftime("%Y%m%d")
    path = to or Path(f"strongroom-compliance-{day}.{chosen_format.value}")
    written = service.write(
        document, path, chosen_format, signing_key=signing_key, unsigned=unsigned
    )
    stdout.print(f"report {written.path}: {written.status}")
    for name, status in written.frameworks.items():
        stdout.print(f"  {name}: {status}")
    stdout.print(f"signature {written.signature}" if written.signature else "unsigned (--unsigned)")


def verify(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The report file; its signature is FILE.sig.")],
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="The signer's public key (default: this home's signing key).", show_default=False
        ),
    ] = None,
) -> None:
    """Check a report against its signature; exit 6 when one byte differs."""
    from strongroom.services.reports.signing import (
        default_key_path,
        load_public_key,
        public_key_path,
        verify_file,
    )

    context = app_context(ctx)
    if public_key is None:
        own = default_key_path(context.home)
        public_key = public_key_path(own) if public_key_path(own).exists() else own
    verified = verify_file(file, load_public_key(public_key))
    stdout.print(
        f"{verified.path}: signature good (key {verified.key_fingerprint}, signed "
        f"{verified.signed_at}, sha256 {verified.sha256})"
    )


@signing_key_app.command("create")
def create_signing_key(
    ctx: typer.Context,
    key: Annotated[
        Path | None,
        typer.Option(help="Where (default HOME/keys/report-signing.key).", show_default=False),
    ] = None,
) -> None:
    """Create the Ed25519 key reports are signed with (never overwrites one)."""
    from strongroom.services.reports.signing import (
        create_key,
        default_key_path,
        fingerprint,
        public_key_path,
    )

    path = key or default_key_path(app_context(ctx).home)
    public = create_key(path)
    stdout.print(
        f"signing key {path} (public key {public_key_path(path)}, fingerprint "
        f"{fingerprint(public)}); keep a copy of the public key where reports are checked"
    )
