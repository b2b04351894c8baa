"""The root ``strongroom`` command: global options, sub-command registration, error rendering."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

import strongroom
from strongroom import logs
from strongroom.cli.entry import command_word
from strongroom.cli.render import print_error
from strongroom.config.home import resolve_home
from strongroom.errors import StrongroomError
from strongroom.services.context import AppContext

_HELP = "Self-hosted backup automation: plans, encrypted deduplicated vaults, proven restores."


def build(*, only_vault: bool = False) -> typer.Typer:
    """Return the command tree: every command, or (``only_vault``) the root options and
    the ``vault`` group alone.

    Typer reads the signature and type hints of every command it registers, on every
    run, and the command modules import what their signatures name: a ``vault`` command
    line needs only its own group, and starts about a tenth of a second sooner without
    the rest.
    """
    application = typer.Typer(
        name="strongroom",
        help=_HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    application.callback()(root)
    from strongroom.cli import vault

    if only_vault:
        application.add_typer(vault.app, name="vault")
        return application
    from strongroom.cli import (
        audit,
        copies,
        declare,
        erasure,
        legal_hold,
        lifecycle,
        metrics,
        monitor,
        quickstart,
        schedule,
        serve,
        token,
    )
    from strongroom.cli import operations as operations_cli

    application.command(name="quickstart")(quickstart.quickstart)
    application.add_typer(vault.app, name="vault")
    application.command(name="validate")(declare.validate)
    application.command(name="apply")(declare.apply)
    application.command(name="create-plan")(declare.create_plan)
    application.command(name="list-plans")(declare.list_plans)
    application.command(name="list-resources")(declare.list_resources)
    application.add_typer(declare.catalog_app, name="catalog")
    application.add_typer(lifecycle.app, name="lifecycle")
    application.add_typer(legal_hold.app, name="legal-hold")
    application.add_typer(erasure.app, name="erasure")
    application.add_typer(audit.app, name="audit")
    operations_cli.register(application)
    copies.register(application, operations_cli.report_app)
    application.add_typer(schedule.app, name="schedule")
    application.command(name="serve")(serve.serve)
    application.command(name="metrics")(metrics.metrics)
    application.command(name="monitor")(monitor.monitor)
    application.add_typer(token.app, name="token")
    return application


def __getattr__(name: str) -> typer.Typer:
    # ``app``: the whole command tree, built on first use (then a plain module attribute).
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    application = globals()["app"] = build()
    return application


def _version(value: bool) -> None:
    if value:
        typer.echo(f"strongroom {strongroom.__version__}")
        raise typer.Exit


def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            envvar="STRONGROOM_HOME",
            help="Where the embedded catalog and default vault live (default ~/.strongroom).",
            show_default=False,
        ),
    ] = None,
    catalog: Annotated[
        str | None,
        typer.Option(
            envvar="STRONGROOM_CATALOG_URL",
            help="Catalog database URL (postgresql://...) (default SQLite in the home folder).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option(envvar="STRONGROOM_LOG_LEVEL", help="debug, info, warning or error.")
    ] = "warning",
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Write logs as JSON lines on stderr.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logs on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            envvar="STRONGROOM_SERVER",
            help="Act as a client of this server (https://host:port), with the token in "
            "STRONGROOM_TOKEN or --token-file; for the commands docs/api.md lists.",
            show_default=False,
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(help="File holding the API token for --server.", show_default=False),
    ] = None,
) -> None:
    """Self-hosted backup automation: plans, encrypted deduplicated vaults, proven restores."""
    logs.configure("debug" if debug else log_level, json_lines=log_json)
    from strongroom.cli.remote import refuse_unsupported, remember_server

    remember_server(ctx, server, token_file)
    if ctx.invoked_subcommand not in (None, "report"):  # report: its group checks the verb
        refuse_unsupported(ctx, ctx.invoked_subcommand)
    ctx.obj = AppContext(home=resolve_home(home), catalog_url=catalog)
    ctx.call_on_close(ctx.obj.close)


def seed_spelling(args: list[str]) -> list[str]:
    """Accept the seed's ``report --type KIND …`` as ``report KIND …``."""
    if command_word(args) != "report":
        return args
    index = args.index("report") + 1
    rest = args[index:]
    if len(rest) >= 2 and rest[0] == "--type":
        return [*args[:index], rest[1], *rest[2:]]
    if rest and rest[0].startswith("--type="):
        return [*args[:index], rest[0].removeprefix("--type="), *rest[1:]]
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn errors into one line, a hint and an exit code (traceback on --debug)."""
    args = seed_spelling(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        module = sys.modules[__name__]  # its ``app`` attribute, built or set
        application = build(only_vault=True) if command_word(args) == "vault" else module.app
        outcome = application(args=args, prog_name="strongroom", standalone_mode=False)
    except StrongroomError as error:
        if debug:
            raise
        print_error(str(error), error.hint)
        sys.exit(error.exit_code)
    except typer.Abort:
        print_error("aborted", "")
        sys.exit(130)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.TyperException as error:  # usage errors: unknown command or option, bad value
        if debug:
            raise
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        if not message:  # bare `strongroom`: the help was printed already
            sys.exit(0)
        print_error(message, "Run 'strongroom --help' to see the commands and options.")
        sys.exit(getattr(error, "exit_code", 2))
    sys.exit(outcome if isinstance(outcome, int) else 0)
