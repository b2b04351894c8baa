"""Derivations started from a hint before the command line is parsed: they serve exactly
the unwrap they were started for, and a wrong, stale or damaged hint never yields a key."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from strongroom.errors import WrongKeyError
from strongroom.keys import KdfSettings, KeyWrapping, passphrase_material, wrap_master_key
from strongroom.keys import derive as derive_module
from strongroom.keys.derive import HINTS_FILE, remember, start_from_hint

FAST = KdfSettings(memory_kib=64, iterations=1, lanes=1)
VAULT_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The threads that ran an Argon2id derivation, in order."""
    threads: list[str] = []
    real = derive_module.argon2id

    def recorded(*args: object) -> bytes:
        threads.append(threading.current_thread().name)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(derive_module, "argon2id", recorded)
    return threads


def _hinted_wrapping(
    tmp_path: Path, passphrase: str, derivations: list[str]
) -> tuple[bytes, KeyWrapping]:
    master = secrets.token_bytes(32)
    wrapping = wrap_master_key(master, passphrase_material(passphrase), vault_id=VAULT_ID, kdf=FAST)
    remember(tmp_path, "main", wrapping.document.kdf.model_dump(mode="json"), "VAULT_PASS")
    derivations.clear()  # wrapping derived once already
    return master, wrapping


def test_a_hinted_derivation_serves_the_unwrap_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, derivations: list[str]
) -> None:
    master, wrapping = _hinted_wrapping(tmp_path, "pw ü", derivations)
    monkeypatch.setenv("VAULT_PASS", "pw u\u0308")  # NFC-normalised like the unwrap's

    assert start_from_hint(tmp_path, "main", None)
    assert wrapping.unwrap(passphrase_material("pw ü")) == master
    assert derivations == ["kdf-early"]
    assert wrapping.unwrap(passphrase_material("pw ü")) == master
    assert derivations == ["kdf-early", "MainThread"]


def test_a_hint_with_another_passphrase_is_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, derivations: list[str]
) -> None:
    master, wrapping = _hinted_wrapping(tmp_path, "right", derivations)
    monkeypatch.setenv("OTHER", "wrong")

    assert start_from_hint(tmp_path, "main", "OTHER")  # the variable the command names
    with pytest.raises(WrongKeyError):
        wrapping.unwrap(passphrase_material("wrong"))
    assert wrapping.unwrap(passphrase_material("right")) == master
    assert derivations == ["kdf-early", "MainThread"]


def test_a_stale_hint_costs_a_derivation_never_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, derivations: list[str]
) -> None:
    _hinted_wrapping(tmp_path, "pw", derivations)  # the hint describes an older wrapping
    master = secrets.token_bytes(32)
    current = wrap_master_key(master, passphrase_material("pw"), vault_id=VAULT_ID, kdf=FAST)
    derivations.clear()
    monkeypatch.setenv("VAULT_PASS", "pw")

    assert start_from_hint(tmp_path, "main", None)
    assert current.unwrap(passphrase_material("pw")) == master
    assert derivations[-1] == "MainThread"  # its own salt: derived anew


@pytest.mark.parametrize(
    "hint",
    [
        "not json",
        json.dumps([1, 2]),
        json.dumps({"main": "x"}),
        json.dumps({"main": {"kdf": {"algorithm": "scrypt"}, "passphrase_env": "VAULT_PASS"}}),
        json.dumps({"main": {"kdf": None, "passphrase_env": "VAULT_PASS"}}),
        json.dumps({"other": {"kdf": {}, "passphrase_env": "VAULT_PASS"}}),
    ],
)
def test_a_damaged_or_foreign_hint_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, derivations: list[str], hint: str
) -> None:
    (tmp_path / HINTS_FILE).write_text(hint)
    monkeypatch.setenv("VAULT_PASS", "pw")
    assert not start_from_hint(tmp_path, "main", None)
    assert derivations == []


@pytest.mark.parametrize(
    "change",
    [
        {"memory_kib": 8 * 1024 * 1024},  # beyond what a wrapping may ask for
        {"memory_kib": 4 * 1024 * 1024, "iterations": 2},  # too much work
        {"lanes": 0},
        {"iterations": True},  # a bool is not a count
        {"salt": "not base64!"},
        {"salt": "AAAA"},  # too short
    ],
)
def test_hint_parameters_out_of_bounds_start_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    derivations: list[str],
    change: dict[str, object],
) -> None:
    _, wrapping = _hinted_wrapping(tmp_path, "pw", derivations)
    kdf = {**wrapping.document.kdf.model_dump(mode="json"), **change}
    remember(tmp_path, "main", kdf, "VAULT_PASS")
    monkeypatch.setenv("VAULT_PASS", "pw")
    assert not start_from_hint(tmp_path, "main", None)
    assert derivations == []


def test_no_passphrase_in_the_environment_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, derivations: list[str]
) -> None:
    _hinted_wrapping(tmp_path, "pw", derivations)
    monkeypatch.delenv("VAULT_PASS", raising=False)
    assert not start_from_hint(tmp_path, "main", None)
    monkeypatch.setenv("VAULT_PASS", "")
    assert not start_from_hint(tmp_path, "main", None)
    assert derivations == []


def test_hints_hold_no_secret_and_a_read_only_cache_is_ignored(
    tmp_path: Path, derivations: list[str]
) -> None:
    _hinted_wrapping(tmp_path, "a secret passphrase", derivations)
    text = (tmp_path / HINTS_FILE).read_text()
    assert "a secret passphrase" not in text
    assert json.loads(text)["main"]["passphrase_env"] == "VAULT_PASS"
    remember(tmp_path / HINTS_FILE / "not-a-folder", "main", {}, None)  # no error


def test_importing_the_early_start_loads_nothing_heavy() -> None:
    probe = (
        "import sys, strongroom.cli.entry; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pydantic', 'cryptography', 'typer', 'rich', 'sqlalchemy', 'zstandard')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
