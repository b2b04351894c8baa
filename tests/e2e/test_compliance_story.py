"""The issue's "done means" for compliance (#18), on the seed's production setup.

The seed's plan runs on a manual clock for six days (the daemon of ``strongroom serve``
fires its rules into real local vaults; a verify of each vault follows every day's
backups). Three faults are planted: a day on which the daemon was down (every firing
missed), a failed restore test, and an audit entry deleted behind strongroom's back. The
CLI's ``report compliance`` must then name exactly those failures, with their evidence,
in every framework, plus the one true finding of the seed's setup (its production vault
has no lock); ``audit verify`` catches the deletion; ``report verify`` accepts the signed
PDF and rejects one edited byte; the PDF opens in pdftoppm; the HTML renders in headless Chromium (Playwright over Debian's
browser) with the failures readable and the missed day red in the coverage calendar.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from strongroom.catalog import points as catalog_points
from strongroom.services.jobs.operations import OperationsService
from tests.e2e.test_production_story import (  # the seed's setup on a manual clock
    LONG_TERM,
    PRODUCTION,
    SUNDAY,
    World,
    fire,
    world,
)
from tests.support.cli import strongroom, text
from tests.support.services import ChromiumService

pytestmark = pytest.mark.e2e

__all__ = ["world"]  # the fixture, imported for this module's test

DAYS = 6
MISSED_DAY = SUNDAY + timedelta(days=3)  # 2030-01-09: the daemon was down all day
UNTIL = SUNDAY + timedelta(days=DAYS)


def verify_vaults(world: World, *, restore_test: bool = False) -> None:
    """Verify both vaults (restore-testing the newest points of the production vault)."""
    operations = OperationsService(world.context)
    for vault in (PRODUCTION, LONG_TERM):
        job = operations.start_verify(
            vault=vault, restore_test=restore_test and vault == PRODUCTION
        )
        ended = operations.run(job.id, poll_interval=0.05)
        assert ended.state.value == "COMPLETED", ended.error


def run_the_week(world: World) -> None:
    daemon = world.daemon()
    assert daemon.start(background=False)
    for day in range(DAYS):
        morning = SUNDAY + timedelta(days=day)
        if morning == MISSED_DAY:
            continue
        fire(world, daemon, morning + timedelta(hours=3, seconds=5))
        world.at(morning + timedelta(hours=4))
        verify_vaults(world, restore_test=day == DAYS - 1)


def cli(world: World, *args: str, expect: int = 0) -> str:
    result = strongroom(world.context.home, *args)
    assert result.returncode == expect, text(result)
    return result.stdout.decode()


def failing(report: dict[str, Any]) -> dict[str, list[str]]:
    return {
        control["control"]: control["findings"]
        for requirement in report["frameworks"][0]["requirements"]
        for control in requirement["controls"]
        if control["status"] == "fail"
    }


def rendered_in_chromium(chromium: ChromiumService, page: Path) -> dict[str, Any]:
    """Open ``page`` in headless Chromium; return what a reader sees: the visible text,
    the computed colours of the coverage calendar's cells by their title, the status
    badges' labels and colours, the page's size and a full-page screenshot."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = chromium.connect(playwright)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 800})
            tab.goto(page.as_uri())
            return {
                "text": tab.inner_text("body"),
                "cells": tab.eval_on_selector_all(
                    ".calendar tr",
                    "rows => Object.fromEntries(rows.map(row => [row.cells[0].innerText,"
                    " Array.from(row.cells).slice(1).map(cell =>"
                    " [cell.title, getComputedStyle(cell).backgroundColor])]))",
                ),
                "badges": tab.eval_on_selector_all(
                    "h1 .status, h2 .status",
                    "spans => spans.map(span => [span.innerText,"
                    " getComputedStyle(span).backgroundColor])",
                ),
                "size": tab.evaluate("[document.body.scrollWidth, document.body.scrollHeight]"),
                "png": tab.screenshot(full_page=True),
            }
        finally:
            browser.close()


def test_each_framework_names_exactly_the_planted_failures(
    world: World, tmp_path: Path, chromium_service: ChromiumService
) -> None:
    run_the_week(world)
    with world.context.catalog.session() as session:  # plant: a failed restore test
        uploads = [
            point
            for point in catalog_points.list_recovery_points(session, vault=PRODUCTION)
            if point.resource.name == "ecommerce-uploads" and point.restore_test_result
        ]
        assert uploads, "the last day's verify restore-tested the uploads"
        failed = uploads[0]
        failed.restore_test_result = {**failed.restore_test_result, "ok": False}
        failed_job = failed.restore_test_result["job_id"]
    assert json.loads(cli(world, "audit", "verify", "--output", "json"))["intact"]
    with sqlite3.connect(world.context.home / "catalog.db") as database:  # plant: a deletion
        database.execute("DELETE FROM audit_entries WHERE seq = 3")
    caught = cli(world, "audit", "verify", expect=6)
    assert "deleted: entry 3 is missing" in caught

    procedure = tmp_path / "restore-runbook.md"
    procedure.write_text("# Restoring the orders database\n1. …\n")
    cli(world, "report", "signing-key", "create")
    reports: dict[str, dict[str, Any]] = {}
    for framework in ("soc2", "gdpr", "pci-dss", "hipaa"):
        path = tmp_path / f"{framework}.json"
        cli(
            world, "report", "compliance", "--framework", framework, "--period", f"{DAYS}d",
            "--until", UNTIL.isoformat(), "--restore-procedure", str(procedure), "--to", str(path),
        )  # fmt: skip
        reports[framework] = json.loads(path.read_text())

    missed = [
        "ecommerce-orders-db: no completed backup on 2030-01-09",
        "ecommerce-uploads: no completed backup on 2030-01-09",
    ]
    restore = [
        f"ecommerce-uploads: the restore test of point {failed.id} on 2030-01-11 failed (job {failed_job})"
    ]
    deleted = ["entry 3 is missing: it was deleted"]
    no_lock = [f"vault {PRODUCTION} has no lock"]
    assert failing(reports["soc2"]) == {
        "backup-coverage-daily": missed,
        "restore-test-recent": restore,
        "audit-trail-intact": deleted,
    }
    assert failing(reports["gdpr"]) == {"audit-trail-intact": deleted}
    assert failing(reports["pci-dss"]) == {
        "backup-coverage-daily": missed,
        "restore-test-recent": restore,
        "audit-trail-intact": deleted,
        "vault-lock": no_lock,
    }
    assert failing(reports["hipaa"]) == {
        "backup-coverage-daily": missed,
        "audit-trail-intact": deleted,
    }
    for report in reports.values():
        assert report["status"] == "fail"
        assert report["audit_trail"]["intact"] is False

    pdf = tmp_path / "soc2.pdf"
    cli(
        world, "report", "--type", "compliance", "--framework", "soc2", "--period", f"{DAYS}d",
        "--until", UNTIL.isoformat(), "--format", "pdf", "--to", str(pdf),
    )  # fmt: skip
    assert "signature good" in cli(world, "report", "verify", str(pdf))
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm is not None, "dev/bootstrap --dev installs poppler-utils"
    subprocess.run([pdftoppm, "-r", "20", "-png", str(pdf), str(tmp_path / "page")], check=True)
    assert (tmp_path / "page-1.png").stat().st_size > 0
    # The HTML as a browser renders it: the failures readable, the missed day red.
    page = tmp_path / "soc2.html"
    cli(
        world, "report", "compliance", "--framework", "soc2", "--period", f"{DAYS}d",
        "--until", UNTIL.isoformat(), "--format", "html", "--to", str(page),
    )  # fmt: skip
    seen = rendered_in_chromium(chromium_service, page)
    for finding in [*missed, *restore, *deleted]:
        assert finding in seen["text"], finding
    assert "ALTERED" in seen["text"]
    red, green = "rgb(207, 34, 46)", "rgb(45, 164, 78)"
    for resource in ("ecommerce-orders-db", "ecommerce-uploads"):
        colours = dict(seen["cells"][resource])
        assert colours["2030-01-09: 0"] == red, colours  # the day the daemon was down
        backed_up = [title for title in colours if not title.endswith((": 0", ": None"))]
        assert len(backed_up) == DAYS - 1 and {colours[title] for title in backed_up} == {green}
    assert seen["badges"][0] == ["FAIL", red]  # the report's own verdict, first
    assert "SOC 2 TYPE II" in seen["text"].upper()
    width, height = seen["size"]
    assert width <= 1280 and height > 800  # laid out in the window's width, several screens
    assert seen["png"].startswith(b"\x89PNG")

    edited = bytearray(pdf.read_bytes())
    edited[len(edited) // 3] ^= 0x01
    pdf.write_bytes(bytes(edited))
    assert (
        "changed after it was signed"
        in strongroom(world.context.home, "report", "verify", str(pdf)).stderr.decode()
    )
