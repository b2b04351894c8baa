"""The lean path of ``vault points`` and ``vault restore`` takes exactly what the Typer
commands take, and leaves every other command line to them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from strongroom.cli import lean
from strongroom.cli.app import build

NO_ENVIRONMENT: dict[str, str] = {}


def _options(command: object) -> tuple[dict[str, str], list[str]]:
    """The spellings of a Click command's value options (spelling -> destination), and
    its arguments in order, as Typer built them."""
    options: dict[str, str] = {}
    arguments: list[str] = []
    for parameter in command.params:  # type: ignore[attr-defined]
        if parameter.param_type_name == "argument":
            arguments.append(parameter.name)
        elif parameter.name != "help":
            for spelling in (*parameter.opts, *parameter.secondary_opts):
                options[spelling] = parameter.name
    return options, arguments


def test_each_lean_verb_takes_the_options_and_arguments_of_its_typer_command() -> None:
    group = typer.main.get_command(build(only_vault=True))
    vault_group = group.commands["vault"]  # type: ignore[attr-defined]
    for name, verb in lean.VERBS.items():
        command = vault_group.commands[name]
        options, arguments = _options(command)
        assert dict(verb.options) == options, name
        assert list(verb.arguments) == arguments, name
        required = {p.name for p in command.params if p.required and p.param_type_name == "option"}
        assert set(verb.required) == required, name
        flags = [p.name for p in command.params if getattr(p, "is_flag", False)]
        assert flags == [], f"{name}: the lean path takes no flags, Typer's command has {flags}"


def test_the_root_options_are_those_of_the_typer_root() -> None:
    root = typer.main.get_command(build(only_vault=True))
    values: dict[str, str] = {}
    flags: dict[str, str] = {}
    environment: dict[str, str] = {}
    for parameter in root.params:
        if parameter.name in {"help", "version"}:
            continue  # left to Typer
        target = flags if getattr(parameter, "is_flag", False) else values
        for spelling in (*parameter.opts, *parameter.secondary_opts):
            target[spelling] = parameter.name
        if parameter.envvar:
            environment[parameter.name] = parameter.envvar
    assert values == dict(lean.ROOT_OPTIONS)
    assert flags == dict(lean.ROOT_FLAGS)
    assert environment == dict(lean.ROOT_ENVIRONMENT)


@pytest.mark.parametrize(
    ("argv", "verb", "values", "root"),
    [
        (["vault", "points", "main"], "points", {"name": "main"}, {}),
        (
            ["--home", "/h", "--debug", "vault", "points", "main", "-o", "json"],
            "points",
            {"name": "main", "output": "json"},
            {"home": "/h"},
        ),
        (
            ["--log-level=info", "vault", "restore", "main", "abc", "--to=-", "--stream", "s"],
            "restore",
            {"name": "main", "point": "abc", "to": "-", "stream": "s"},
            {"log_level": "info"},
        ),
        (
            ["vault", "restore", "--key-file", "/k", "main", "--to", "out", "abc"],
            "restore",
            {"name": "main", "point": "abc", "to": "out", "key_file": "/k"},
            {},
        ),
    ],
)
def test_the_lean_path_takes_these(
    argv: list[str], verb: str, values: dict[str, str], root: dict[str, str]
) -> None:
    command = lean.parse(argv, NO_ENVIRONMENT)
    assert command is not None
    assert (command.verb, dict(command.values), dict(command.root)) == (verb, values, root)


def test_root_options_fall_back_to_their_variables_and_an_empty_one_is_unset() -> None:
    environment = {"STRONGROOM_HOME": "/from-env", "STRONGROOM_CATALOG_URL": ""}
    command = lean.parse(["vault", "points", "v"], environment)
    assert command is not None and dict(command.root) == {"home": "/from-env"}
    command = lean.parse(["--home", "/given", "vault", "points", "v"], environment)
    assert command is not None and dict(command.root) == {"home": "/given"}


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["vault"],
        ["vault", "points"],  # the name is missing
        ["vault", "points", "--help"],
        ["vault", "points", "v", "-h"],
        ["--version", "vault", "points", "v"],
        ["vault", "verify", "v"],  # a verb the lean path does not run
        ["vault", "points", "v", "extra"],
        ["vault", "points", "v", "--output", "yaml"],
        ["vault", "points", "v", "-o=json"],
        ["vault", "points", "v", "--output", "json", "--output", "table"],
        ["vault", "points", "v", "--passphrase-env"],
        ["vault", "points", "v", "--passphrase-env", ""],
        ["vault", "points", "v", "--unknown"],
        ["vault", "points", "--", "v"],
        ["vault", "restore", "v", "p"],  # --to is required
        ["vault", "restore", "v", "p", "--to", "--stream"],
        ["--home", "vault", "points", "v"],
        ["--home", "/a", "--home", "/b", "vault", "points", "v"],
        ["--log-level", "loud", "vault", "points", "v"],
        ["--debug", "--debug", "vault", "points", "v"],
        ["backup", "v"],
    ],
)
def test_other_command_lines_are_left_to_typer(argv: list[str]) -> None:
    assert lean.parse(argv, NO_ENVIRONMENT) is None


def test_the_lean_path_imports_neither_typer_nor_rich_nor_the_catalog(tmp_path: Path) -> None:
    home = tmp_path / "home"
    environment = {**os.environ, "STRONGROOM_HOME": str(home), "VAULT_PASS": "lean test"}
    key = ("--passphrase-env", "VAULT_PASS")
    url = (tmp_path / "vault").as_uri()
    created = subprocess.run(
        [sys.executable, "-m", "strongroom", "vault", "create", "v", "--url", url, *key],
        capture_output=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stderr.decode()
    probe = (
        "import atexit, json, sys\n"
        "def report():\n"
        "    loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('typer', 'click', 'rich', 'sqlalchemy'))\n"
        "    sys.stderr.write('\\nLOADED ' + json.dumps(loaded) + '\\n')\n"
        "atexit.register(report)\n"
        "sys.argv[0] = 'strongroom'\n"
        "from strongroom.cli.entry import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "vault", "points", "v", "--output", "json", *key],
        capture_output=True,
        env=environment,
        timeout=120,
        check=False,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert json.loads(result.stdout) == []
    line = next(line for line in stderr.splitlines() if line.startswith("LOADED "))
    assert json.loads(line.removeprefix("LOADED ")) == []
