"""Secret references: parsed early, resolved late, masked in logs, never echoed in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom import logs
from strongroom.config.secrets import (
    SecretReference,
    is_secret_reference,
    parse_secret_reference,
    resolve_secret,
)
from strongroom.errors import ConfigError, SecretError


def test_references_parse_into_kind_and_target() -> None:
    assert parse_secret_reference("env:PGPASSWORD") == SecretReference("env", "PGPASSWORD")
    assert parse_secret_reference("file:/run/secrets/db") == SecretReference(
        "file", "/run/secrets/db"
    )
    assert str(parse_secret_reference("file:/run//secrets/db")) == "file:/run/secrets/db"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hunter2-password", "a literal secret is not allowed"),
        ("env:", "needs a variable name"),
        ("env:1BAD", "needs a variable name"),
        ("env:with space", "needs a variable name"),
        ("file:relative/path", "needs an absolute path"),
        ("", "a literal secret is not allowed"),
    ],
)
def test_malformed_references_are_refused_without_echoing_them(value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_secret_reference(value)
    assert expected in caught.value.message
    if value not in ("", "env:"):  # the bare prefix is part of the explanation
        assert value not in caught.value.message
    assert not is_secret_reference(value)


def test_env_reference_resolves_and_is_masked_in_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRONGROOM_TEST_SECRET", "s3cr3t-from-env")
    assert resolve_secret("env:STRONGROOM_TEST_SECRET") == "s3cr3t-from-env"
    assert logs.mask("dsn=pg://u:s3cr3t-from-env@h") == "dsn=pg://u:***@h"


def test_file_reference_strips_trailing_newlines_only(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("  pass phrase with spaces  \r\n\n", encoding="utf-8")
    assert resolve_secret(f"file:{secret}") == "  pass phrase with spaces  "
    assert logs.mask("x  pass phrase with spaces  x") == "x***x"


def test_unset_variable_names_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRONGROOM_NOT_SET", raising=False)
    with pytest.raises(SecretError) as caught:
        resolve_secret("env:STRONGROOM_NOT_SET")
    assert "env:STRONGROOM_NOT_SET" in caught.value.message
    assert "not set" in caught.value.message


def test_missing_file_names_the_reference(tmp_path: Path) -> None:
    with pytest.raises(SecretError) as caught:
        resolve_secret(f"file:{tmp_path}/absent")
    assert f"file:{tmp_path}/absent" in caught.value.message
    assert "does not exist" in caught.value.message


def test_unreadable_file_is_a_secret_error(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="cannot be read"):
        resolve_secret(f"file:{tmp_path}")  # a directory


def test_empty_secret_is_refused_without_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRONGROOM_EMPTY", "")
    with pytest.raises(SecretError, match="empty"):
        resolve_secret("env:STRONGROOM_EMPTY")
    newline_only = tmp_path / "newline"
    newline_only.write_text("\n", encoding="utf-8")
    with pytest.raises(SecretError, match="empty"):
        resolve_secret(f"file:{newline_only}")


def test_non_utf8_file_is_a_secret_error(tmp_path: Path) -> None:
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00secret")
    with pytest.raises(SecretError, match="not UTF-8"):
        resolve_secret(f"file:{binary}")


def test_a_secret_error_is_a_config_error_with_a_hint() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_secret("env:STRONGROOM_SURELY_NOT_SET_ANYWHERE")
    assert isinstance(caught.value, SecretError)
    assert caught.value.hint
    assert not caught.value.retryable


def test_resolving_a_literal_is_a_config_error_not_a_lookup() -> None:
    with pytest.raises(ConfigError, match="literal secret") as caught:
        resolve_secret("hunter2")
    assert not isinstance(caught.value, SecretError)
    assert "hunter2" not in caught.value.message
