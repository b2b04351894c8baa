"""The lean path of ``vault points`` and ``vault restore``: the same commands without Typer.

Building a Typer command tree costs more than the rest of a ``vault points`` start-up
together (Typer, the Click it carries, Rich and the command modules; about 0.1 s of CPU),
and the two commands an operator or a script runs most often need none of it. This module
recognises their command lines with plain string tests, from the grammar in
:data:`VERBS` (the same option spellings as the Typer commands; a test compares the two
so they cannot drift), and runs them through the same code the Typer commands call
(:mod:`strongroom.cli.vault_read`): same output, same errors, same exit codes.

Anything it is not certain about is left to the Typer path: ``--help``, an option or
verb it does not know, a repeated option, a missing or empty value, a ``--output`` value
Typer would refuse, a stray argument. :func:`parse` then returns None and the full CLI
parses the command line and reports the problem as it always did.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from strongroom.cli.plain import OutputFormat

ROOT_OPTIONS: Final[Mapping[str, str]] = {
    "--home": "home",
    "--catalog": "catalog",
    "--log-level": "log_level",
    "--server": "server",
    "--token-file": "token_file",
}
"""The root options with a value the lean path takes, and where each goes."""
ROOT_FLAGS: Final[Mapping[str, str]] = {"--log-json": "log_json", "--debug": "debug"}
ROOT_ENVIRONMENT: Final[Mapping[str, str]] = {
    "home": "STRONGROOM_HOME",
    "catalog": "STRONGROOM_CATALOG_URL",
    "log_level": "STRONGROOM_LOG_LEVEL",
    "server": "STRONGROOM_SERVER",
}
"""The variables a root option falls back to (as Typer's ``envvar``: an empty one is unset)."""
LOG_LEVELS: Final = frozenset({"debug", "info", "warning", "error", "critical"})


@dataclass(frozen=True, slots=True)
class Verb:
    """The grammar of one ``vault`` verb: its arguments in order, its options (spelling ->
    destination; each takes one value) and the destinations that must be given."""

    arguments: tuple[str, ...]
    options: Mapping[str, str]
    required: frozenset[str] = frozenset()


_KEY_OPTIONS: Final = {"--passphrase-env": "passphrase_env", "--key-file": "key_file"}

VERBS: Final[Mapping[str, Verb]] = {
    "points": Verb(("name",), {"--output": "output", "-o": "output", **_KEY_OPTIONS}),
    "restore": Verb(
        ("name", "point"),
        {"--to": "to", "--stream": "stream", **_KEY_OPTIONS},
        required=frozenset({"to"}),
    ),
}
"""The verbs the lean path runs (``strongroom vault VERB ...``)."""


@dataclass(frozen=True, slots=True)
class LeanCommand:
    """A parsed ``vault points`` or ``vault restore`` command line."""

    verb: str
    values: Mapping[str, str]
    """Arguments and options by destination (absent: not given)."""
    root: Mapping[str, str] = field(default_factory=dict)
    """Root options by destination, the environment filled in."""
    debug: bool = False
    log_json: bool = False


def parse(argv: Sequence[str], environment: Mapping[str, str]) -> LeanCommand | None:
    """Return the command ``argv`` asks for, or None when the lean path does not take it
    (the Typer path then parses it)."""
    root: dict[str, str] = {}
    flags: set[str] = set()
    index = _take_root_options(argv, root, flags)
    if index is None or index + 2 > len(argv) or argv[index] != "vault":
        return None
    verb = VERBS.get(argv[index + 1])
    if verb is None:
        return None
    values = _take_verb(verb, argv[index + 2 :])
    if values is None:
        return None
    for destination, variable in ROOT_ENVIRONMENT.items():
        if destination not in root and environment.get(variable):
            root[destination] = environment[variable]
    if root.get("log_level", "warning").lower() not in LOG_LEVELS:
        return None
    if "server" in root or "token_file" in root:  # a client of a server: the full CLI refuses
        return None
    return LeanCommand(
        verb=argv[index + 1],
        values=values,
        root=root,
        debug="debug" in flags,
        log_json="log_json" in flags,
    )


def _take_root_options(argv: Sequence[str], root: dict[str, str], flags: set[str]) -> int | None:
    """Read the root options into ``root`` and ``flags``; return the index of the first
    word after them, or None for anything the lean path leaves to Typer."""
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        option, equals, value = argv[index].partition("=")
        if option in ROOT_FLAGS and not equals and ROOT_FLAGS[option] not in flags:
            flags.add(ROOT_FLAGS[option])
            index += 1
            continue
        destination = ROOT_OPTIONS.get(option)
        if destination is None or destination in root:
            return None
        if not equals:
            if index + 1 >= len(argv):
                return None
            value = argv[index + 1]
            index += 1
        if not _plain_value(value):
            return None
        root[destination] = value
        index += 1
    return index


def _take_verb(verb: Verb, words: Sequence[str]) -> dict[str, str] | None:
    """Read a verb's arguments and options; None for anything left to Typer."""
    values: dict[str, str] = {}
    arguments: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("-") and word != "-":
            option, equals, value = word.partition("=")
            destination = verb.options.get(option)
            if destination is None or destination in values or (equals and option == "-o"):
                return None
            if not equals:
                if index + 1 >= len(words):
                    return None
                index += 1
                value = words[index]
            if not _plain_value(value):
                return None
            values[destination] = value
        else:
            arguments.append(word)
        index += 1
    if len(arguments) != len(verb.arguments) or not all(arguments):
        return None
    if not verb.required <= values.keys():
        return None
    if "output" in values and values["output"] not in {member.value for member in OutputFormat}:
        return None
    values.update(zip(verb.arguments, arguments, strict=True))
    return values


def _plain_value(value: str) -> bool:
    """A value both paths read the same way: not empty, and not one that looks like an
    option (``-`` alone, standard input or output, is fine)."""
    return bool(value) and (value == "-" or not value.startswith("-"))


def run(command: LeanCommand) -> int:
    """Run a parsed command as the Typer path would; return the exit code.

    A ``StrongroomError`` prints one line and a hint and gives its exit code (with
    ``--debug`` it propagates, traceback and all); Ctrl-C exits 130; a closed standard
    output exits 1.
    """
    from strongroom import logs
    from strongroom.cli import vault_read
    from strongroom.config.home import resolve_home
    from strongroom.errors import StrongroomError
    from strongroom.services.context import AppContext

    values = command.values
    key_file = Path(values["key_file"]) if "key_file" in values else None
    passphrase_env = values.get("passphrase_env")
    try:
        logs.configure(
            "debug" if command.debug else command.root.get("log_level", "warning"),
            json_lines=command.log_json,
        )
        home = command.root.get("home")
        context = AppContext(
            home=resolve_home(Path(home) if home else None),
            catalog_url=command.root.get("catalog"),
        )
        try:
            if command.verb == "points":
                vault_read.list_points(
                    context,
                    values["name"],
                    OutputFormat(values.get("output", "table")),
                    passphrase_env,
                    key_file,
                )
            else:
                vault_read.restore_stream(
                    context,
                    values["name"],
                    values["point"],
                    values["to"],
                    values.get("stream"),
                    passphrase_env,
                    key_file,
                )
        finally:
            context.close()
    except KeyboardInterrupt:
        return 130  # Typer turns Ctrl-C into a quiet exit 130
    except EOFError:
        from strongroom.cli.render import print_error

        sys.stderr.write("\n")  # as Typer does before it aborts
        print_error("aborted", "")
        return 130
    except StrongroomError as error:
        if command.debug:
            raise
        from strongroom.cli.render import print_error

        print_error(str(error), error.hint)
        return error.exit_code
    except OSError as error:
        if error.errno != errno.EPIPE:
            raise
        _quiet_standard_output()  # the reader went away, as Click handles it
        return 1
    return 0


def _quiet_standard_output() -> None:
    """Point standard output at /dev/null, so the interpreter's final flush of a closed
    pipe cannot fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
