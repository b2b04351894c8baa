"""The web console in headless Chromium against a real ``strongroom serve``.

A person logs in with a token, sees the overview, starts a backup and watches it finish,
opens its point and its restore test, is refused what their role lacks, and logs out.
Set ``STRONGROOM_CONSOLE_SCREENSHOTS=FOLDER`` (``dev/console-screenshots`` does) to save
screenshots of the main pages there, on a desktop and on a phone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import RULE, ServedConsole
from tests.support.waiting import PATIENCE

pytestmark = pytest.mark.browser

HANG_MS = PATIENCE * 1000  # a bound against hangs, never a speed check
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = os.environ.get("STRONGROOM_CONSOLE_SCREENSHOTS")


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (no cookies) with a desktop window; CSP violations and
    script errors on any page fail the test."""
    opened = browser.new_context(viewport=DESKTOP)
    problems: list[str] = []

    def note(message: Any) -> None:
        # Chromium logs a page answered 403 as an error; those refusals are what some
        # tests look for (no script, style or image of a page is ever refused).
        if message.type == "error" and "status of 403" not in message.text:
            problems.append(message.text)

    opened.on("console", note)
    opened.on("weberror", lambda error: problems.append(str(error.error)))
    try:
        yield opened
    finally:
        opened.close()
    assert problems == []


def _screenshot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def _login(page: Any, served: ServedConsole, role: str) -> None:
    page.goto(f"{served.url}/login")
    page.fill("#token", served.tokens[role])
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")


def _wait_for_job(page: Any) -> None:
    """Stay on a job page while its script follows the job; return once it ended well."""
    expect(page.locator("#job-state")).to_have_text("COMPLETED", timeout=HANG_MS)


def test_an_operator_backs_up_watches_the_job_and_opens_the_point_and_its_restore_test(
    context: Any, served: ServedConsole
) -> None:
    page = context.new_page()
    page.goto(f"{served.url}/")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    if SCREENSHOTS:
        _screenshot(page, "login")
    _login(page, served, "operator")
    expect(page.locator("#ages")).to_contain_text("docs")
    expect(page.locator("#ages")).to_contain_text("no point yet")

    page.click("nav >> text=Resources")
    page.click("#resources >> text=docs")
    page.select_option("#backup-into", f"rule:{RULE}")
    page.click("#start-backup")
    expect(page.locator("h1")).to_contain_text("Backup job")
    _wait_for_job(page)
    expect(page.locator("#events")).to_contain_text("backup.job.completed")
    if SCREENSHOTS:
        _screenshot(page, "job")

    page.click("#job-point-link")
    expect(page.locator("h1")).to_contain_text("Recovery point")
    point_id = page.locator("#point-id").inner_text()
    expect(page.locator("main")).to_contain_text("rule 'nightly' of plan 'daily': delete on")
    page.check("input[name=restore_test]")
    page.click("#verify")
    expect(page.locator("h1")).to_contain_text("Verify job")
    _wait_for_job(page)
    page.goto(f"{served.url}/points/{point_id}")
    evidence = page.locator("#restore-test + p")
    expect(evidence).to_contain_text("Passed")
    expect(page.locator("table.checks").first).to_contain_text("passed")
    if SCREENSHOTS:
        _screenshot(page, "point")

    page.click("nav >> text=Overview")
    expect(page.locator("#tile-success .value")).to_have_text("100.0 %")
    expect(page.locator("#ages tr", has_text="docs")).to_contain_text("within RPO")

    page.click("#logout")
    expect(page.locator("#login-message")).to_have_text("You are logged out.")
    page.goto(f"{served.url}/jobs")
    expect(page).to_have_url(re.compile(r"/console/login$"))


def test_a_viewer_sees_every_page_and_is_refused_a_backup(
    context: Any, served: ServedConsole
) -> None:
    page = context.new_page()
    _login(page, served, "viewer")
    for section in ("Resources", "Plans", "Jobs", "Vaults", "Reports"):
        page.click(f"nav >> text={section}")
        expect(page.locator("h1")).to_have_text(section)
    page.goto(f"{served.url}/resources/docs")
    button = page.locator("#start-backup")
    expect(button).to_have_class(re.compile("lacks-role"))
    expect(page.locator("small.needs")).to_have_text("needs operator, admin")
    page.click("#start-backup")
    expect(page.locator("h1")).to_have_text("Not allowed")
    expect(page.locator("#problem-message")).to_contain_text("role viewer")
    expect(page.locator("#problem-message")).to_contain_text("backup.start")


def test_a_failed_backup_shows_on_its_job_page_and_in_the_overview(
    context: Any, served: ServedConsole
) -> None:
    page = context.new_page()
    _login(page, served, "operator")
    page.goto(f"{served.url}/resources/orders-db")
    page.select_option("#backup-into", f"rule:{RULE}")
    page.click("#start-backup")
    expect(page.locator("#job-state")).to_have_text("FAILED", timeout=HANG_MS)
    expect(page.locator("#job-error")).to_contain_text("orders.db")
    page.click("nav >> text=Overview")
    expect(page.locator("#failures")).to_contain_text("orders-db")
    expect(page.locator("#tile-failures")).to_have_class(re.compile("bad"))


def test_a_post_without_the_csrf_token_is_refused(context: Any, served: ServedConsole) -> None:
    page = context.new_page()
    _login(page, served, "operator")
    page.goto(f"{served.url}/jobs?resource=orders-db")
    before = page.locator("#jobs tbody tr").count()
    # The session cookie goes along (same browser profile), the form's token does not.
    response = context.request.post(
        f"{served.url}/resources/orders-db/backup", form={"into": f"rule:{RULE}"}
    )
    assert response.status == 403
    assert "CSRF" in response.text()
    page.reload()
    assert page.locator("#jobs tbody tr").count() == before


def test_a_restorer_confirms_a_restore_that_names_its_target(
    context: Any, served: ServedConsole, tmp_path: Path
) -> None:
    page = context.new_page()
    _login(page, served, "restorer")
    page.goto(f"{served.url}/resources/docs")
    page.locator("a.point-link").first.click()
    page.click("#restore")
    target = tmp_path / "restored"
    page.fill("#target-path", str(target))
    page.click("#review-restore")
    expect(page.locator("#restore-target")).to_have_text(f"path={target}")
    if SCREENSHOTS:
        _screenshot(page, "restore-confirm")
    page.click("#confirm-restore")
    _wait_for_job(page)
    # Entries go below the target with their recorded (absolute) paths.
    restored = target / served.data.relative_to("/")
    assert (restored / "readme.md").read_text() == (served.data / "readme.md").read_text()
    assert (restored / "reports" / "q3.txt").read_bytes() == (
        served.data / "reports" / "q3.txt"
    ).read_bytes()


def test_the_overview_fits_a_phone_and_the_screenshots_are_taken(
    browser: Any, served: ServedConsole
) -> None:
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = phone.new_page()
        _login(page, served, "auditor")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        if SCREENSHOTS:
            _screenshot(page, "overview-phone")
            page.set_viewport_size(DESKTOP)
            for name, path in (
                ("overview", "/"),
                ("resources", "/resources"),
                ("plans", "/plans"),
                ("jobs", "/jobs"),
                ("vault", "/vaults/main"),
                ("reports", "/reports"),
            ):
                page.goto(f"{served.url}{path}")
                _screenshot(page, name)
    finally:
        phone.close()
