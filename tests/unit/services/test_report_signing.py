"""Ed25519 report signatures: a good one verifies, one changed byte or another key fails."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from strongroom.errors import ConflictError, IntegrityError, NotFoundError
from strongroom.services.reports.signing import (
    create_key,
    load_private_key,
    load_public_key,
    public_key_path,
    sign_file,
    verify_file,
)

AT = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_signed_file_verifies_and_one_edited_byte_is_rejected(tmp_path: Path) -> None:
    key_path = tmp_path / "keys" / "report.key"
    create_key(key_path)
    assert key_path.stat().st_mode & 0o777 == 0o600
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.7 report body" * 100)
    sign_file(report, load_private_key(key_path), at=AT)

    verified = verify_file(report, load_public_key(public_key_path(key_path)))
    assert verified.signed_at == AT.isoformat()

    data = bytearray(report.read_bytes())
    data[500] ^= 0x01
    report.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="changed after it was signed"):
        verify_file(report, load_public_key(public_key_path(key_path)))


def test_a_signature_by_another_key_is_rejected(tmp_path: Path) -> None:
    create_key(tmp_path / "a.key")
    create_key(tmp_path / "b.key")
    report = tmp_path / "r.json"
    report.write_text("{}")
    sign_file(report, load_private_key(tmp_path / "a.key"), at=AT)
    with pytest.raises(IntegrityError, match="not by the trusted key"):
        verify_file(report, load_public_key(tmp_path / "b.pub"))


def test_missing_keys_and_signatures_are_named(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no report signing key") as caught:
        load_private_key(tmp_path / "none.key")
    assert "--unsigned" in caught.value.hint
    create_key(tmp_path / "k.key")
    with pytest.raises(ConflictError):
        create_key(tmp_path / "k.key")
    report = tmp_path / "r.json"
    report.write_text("{}")
    with pytest.raises(NotFoundError, match=r"r\.json\.sig"):
        verify_file(report, load_public_key(tmp_path / "k.pub"))
