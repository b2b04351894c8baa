"""The logging setup: secrets never reach the output, JSON lines parse."""

from __future__ import annotations

import json

import pytest

from strongroom import logs


def test_registered_secrets_are_masked_in_text_logs(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info")
    logs.register_secret("hunter2-secret")
    logs.get_logger("test").info("connecting with password %s", "hunter2-secret")
    err = capsys.readouterr().err
    assert "hunter2-secret" not in err
    assert "connecting with password ***" in err


def test_json_lines_carry_extra_fields_masked(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info", json_lines=True)
    logs.register_secret("s3cr3t-token")
    logs.get_logger("strongroom.x").warning("job failed", extra={"dsn": "pg://u:s3cr3t-token@h"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["message"] == "job failed"
    assert record["level"] == "warning"
    assert record["logger"] == "strongroom.x"
    assert record["dsn"] == "pg://u:***@h"
    assert record["time"].endswith("+00:00")


def test_short_values_are_not_registered() -> None:
    logs.register_secret("ab")
    assert logs.mask("ab cd") == "ab cd"
