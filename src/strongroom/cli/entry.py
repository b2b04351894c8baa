"""The ``strongroom`` console script: start a vault command's key derivation, then run the CLI.

A ``vault`` command with a passphrase spends about 0.2 s of one core in Argon2id before it
can read anything, and importing the CLI and the engine takes about as long again. This
entry point looks at the command line with plain string tests before anything heavy is
imported and, for ``strongroom [ROOT OPTIONS] vault VERB NAME ...``, starts the derivation
that vault's hint describes (``strongroom.keys.derive``) on a thread of its own; the
imports then run beside it. Anything it does not recognise simply starts nothing: the
command line is parsed for real afterwards, and a derivation is only used by a request
for exactly the same parameters and passphrase. ``vault points`` and ``vault restore``
then run without Typer (:mod:`strongroom.cli.lean`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from strongroom.config.home import cache_dir, resolve_home
from strongroom.keys.derive import start_from_hint

_ROOT_OPTIONS_WITH_VALUE: Final = frozenset(
    {"--home", "--catalog", "--log-level", "--server", "--token-file"}
)
_ROOT_FLAGS: Final = frozenset({"--log-json", "--debug"})


@dataclass(frozen=True, slots=True)
class VaultCommand:
    """What the early start needs from a ``vault VERB NAME`` command line."""

    name: str
    home: Path | None
    passphrase_env: str | None


def command_word(argv: Sequence[str]) -> str | None:
    """Return the first word after the root options (``vault`` in ``--debug vault points
    main``), or None when there is none or an option this does not know comes first."""
    index = _skip_root_options(argv)
    return argv[index] if index is not None and index < len(argv) else None


def parse_vault_command(argv: Sequence[str]) -> VaultCommand | None:
    """Return the vault, home and passphrase variable of ``vault VERB NAME ...`` (root
    options first, as the CLI takes them), or None for any other command line or one
    with a key file."""
    index = _skip_root_options(argv)
    if index is None:
        return None
    home: Path | None = None
    for position, token in enumerate(argv[:index]):
        option, equals, value = token.partition("=")
        if option == "--home":
            value = value if equals else (argv[position + 1] if position + 1 < index else "")
            home = Path(value) if value else None
    rest = list(argv[index:])
    if len(rest) < 3 or rest[0] != "vault" or any(word.startswith("-") for word in rest[1:3]):
        return None
    passphrase_env = None
    for position, token in enumerate(rest[3:], start=3):
        option, equals, value = token.partition("=")
        if option == "--key-file":
            return None
        if option == "--passphrase-env":
            following = rest[position + 1] if position + 1 < len(rest) else None
            passphrase_env = value if equals else following
    return VaultCommand(rest[2], home, passphrase_env or None)


def _skip_root_options(argv: Sequence[str]) -> int | None:
    """Return the index of the first word after the root options, or None when an
    option the root does not take comes first."""
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        option, equals, _ = argv[index].partition("=")
        if option in _ROOT_OPTIONS_WITH_VALUE:
            index += 1 if equals else 2
        elif option in _ROOT_FLAGS:
            index += 1
        else:
            return None
    return index


def start_vault_key_derivation(argv: Sequence[str]) -> bool:
    """Start the passphrase derivation of the vault command ``argv`` names, if its hint
    and passphrase are there; returns whether one was started. Never raises for a
    command line or hint it does not understand."""
    command = parse_vault_command(argv)
    if command is None:
        return False
    try:
        home = resolve_home(command.home)
    except (OSError, RuntimeError):  # no home folder to expand ~ into
        return False
    return start_from_hint(cache_dir(home), command.name, command.passphrase_env)


def main() -> None:
    """Run the ``strongroom`` command line: ``vault points`` and ``vault restore`` on the
    lean path (:mod:`strongroom.cli.lean`) when it takes the command line, anything else
    through the full CLI."""
    argv = sys.argv[1:]
    start_vault_key_derivation(argv)
    from strongroom.cli import lean

    command = lean.parse(argv, os.environ)
    if command is not None:
        sys.exit(lean.run(command))
    from strongroom.cli.app import main as run_cli

    run_cli()
