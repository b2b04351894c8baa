"""`strongroom report compliance` and `report verify` as an auditor would run them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import strongroom, text

pytestmark = pytest.mark.e2e

PASS = {"VAULT_PASS": "correct horse battery staple"}


def run(home: Path, *args: str, expect: int = 0) -> str:
    result = strongroom(home, *args, env=PASS)
    assert result.returncode == expect, text(result)
    return result.stdout.decode() + result.stderr.decode()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    url = (tmp_path / "vault").as_uri()
    run(home, "vault", "create", "v", "--url", url, "--passphrase-env", "VAULT_PASS")
    return home


def test_a_missing_signing_key_is_explained_and_unsigned_only_when_asked(
    home: Path, tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    refused = run(
        home, "report", "compliance", "--framework", "soc2", "--to", str(report), expect=3
    )
    assert "no report signing key" in refused and "--unsigned" in refused
    assert not report.exists()
    run(home, "report", "compliance", "--framework", "soc2", "--to", str(report), "--unsigned")
    assert report.exists() and not report.with_name("r.json.sig").exists()


def test_signed_reports_verify_and_one_edited_byte_is_rejected(home: Path, tmp_path: Path) -> None:
    run(home, "report", "signing-key", "create")
    report = tmp_path / "all.json"
    said = run(home, "report", "--type", "compliance", "--framework", "all", "--to", str(report))
    assert "soc2: no_evidence" in said
    document = json.loads(report.read_text())
    assert [item["framework"] for item in document["frameworks"]] == [
        "soc2",
        "gdpr",
        "pci-dss",
        "hipaa",
    ]
    assert document["summary"]["pci-dss"] == "fail"  # the vault has no lock
    assert "signature good" in run(home, "report", "verify", str(report))
    data = bytearray(report.read_bytes())
    data[len(data) // 2] ^= 0x20
    report.write_bytes(bytes(data))
    rejected = run(home, "report", "verify", str(report), expect=6)
    assert "changed after it was signed" in rejected


def test_html_and_pdf_reports_render(home: Path, tmp_path: Path) -> None:
    run(home, "report", "signing-key", "create")
    page = tmp_path / "gdpr.html"
    run(home, "report", "compliance", "--framework", "gdpr", "--format", "html", "--to", str(page))
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "GDPR" in html and "NO EVIDENCE" in html
    pdf = tmp_path / "hipaa.pdf"
    run(home, "report", "compliance", "--framework", "hipaa", "--format", "pdf", "--to", str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF")
    run(home, "report", "verify", str(pdf))
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm is not None, "dev/bootstrap --dev installs poppler-utils"
    subprocess.run([pdftoppm, "-r", "20", "-png", str(pdf), str(tmp_path / "page")], check=True)
    assert (tmp_path / "page-1.png").stat().st_size > 0
    trail = json.loads(
        run(home, "audit", "list", "--action", "report.generate", "--output", "json")
    )
    assert [entry["details"]["format"] for entry in trail] == ["html", "pdf"]
