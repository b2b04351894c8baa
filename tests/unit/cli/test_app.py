"""The root command: version, help, and errors as one line with a hint."""

from __future__ import annotations

import pytest

from strongroom import __version__
from strongroom.cli import app as cli_app
from strongroom.errors import NotFoundError


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli_app.main(argv)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"strongroom {__version__}"


def test_unknown_subcommand_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["frobnicate"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0] == "error: No such command 'frobnicate'."
    assert lines[1].startswith("hint: ")
    assert "Traceback" not in err


def test_every_command_help_reads(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    assert "quickstart" in out
    for group in cli_app.app.registered_commands:
        name = group.name or ""
        code, out, _ = run([name, "--help"], capsys)
        assert code == 0, name
        assert "Usage" in out


def test_strongroom_errors_become_message_hint_and_exit_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise NotFoundError("vault 'prod' does not exist", hint="run 'strongroom apply' first")

    monkeypatch.setattr(cli_app, "app", fail)
    code, _, err = run(["anything"], capsys)
    assert code == NotFoundError.exit_code
    assert err.splitlines() == [
        "error: vault 'prod' does not exist",
        "hint: run 'strongroom apply' first",
    ]


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise NotFoundError("gone")

    monkeypatch.setattr(cli_app, "app", fail)
    with pytest.raises(NotFoundError):
        cli_app.main(["--debug", "anything"])


def test_restore_help_lists_the_target_keys_of_every_registered_source(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from strongroom.sources import REGISTRY
    from strongroom.sources.targets import target_keys

    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(["restore", "--help"], capsys)
    assert code == 0
    listed = out[out.index("Restore targets") :]
    for type_name, entry in REGISTRY.items():
        assert type_name in listed
        for key in target_keys(entry.target_model()):
            assert f"{key.name}=<{key.kind}>" in listed, (type_name, key.name)
    assert "database_map=<mapping>" in listed  # MySQL's keys, once missing from the help


def test_the_seed_report_type_spelling_names_the_report() -> None:
    assert cli_app.seed_spelling(["report", "--type", "compliance", "--period", "7d"]) == [
        "report",
        "compliance",
        "--period",
        "7d",
    ]
    assert cli_app.seed_spelling(["--debug", "report", "--type=summary"]) == [
        "--debug",
        "report",
        "summary",
    ]
    assert cli_app.seed_spelling(["report", "summary"]) == ["report", "summary"]
    assert cli_app.seed_spelling(["audit", "--type", "x"]) == ["audit", "--type", "x"]
