"""The console over HTTP: login, sessions bound to their token, CSRF, roles, pages, headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from strongroom.api.console.pages import PAGE_SIZE
from strongroom.catalog.audit import EntryFilter
from strongroom.catalog.models import Resource, Vault
from strongroom.catalog.points import record_recovery_point
from strongroom.catalog.types import JobState
from strongroom.services.access.roles import Role
from strongroom.services.access.tokens import TokenService, split_token
from strongroom.services.audit.service import AuditService
from tests.unit.api.console.support import Console, console_world, csrf_of


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    world = console_world(tmp_path)
    yield world
    world.close()


def test_login_opens_a_session_cookie_that_holds_no_token(console: Console) -> None:
    browser = console.client()
    form = browser.get("/console/login")
    assert form.status_code == 200
    response = browser.post(
        "/console/login",
        data={"token": console.tokens[Role.VIEWER], "csrf": csrf_of(form.text)},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith("strongroom_session=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the TLS test
    token_secret = split_token(console.tokens[Role.VIEWER])
    assert token_secret is not None and token_secret[1] not in cookie
    overview = browser.get("/console/")
    assert overview.status_code == 200
    assert "Overview" in overview.text and "docs" in overview.text


def test_over_tls_the_cookie_is_secure_and_hsts_is_sent(console: Console) -> None:
    browser = console.client(base_url="https://testserver")
    form = browser.get("/console/login")
    response = browser.post(
        "/console/login",
        data={"token": console.tokens[Role.VIEWER], "csrf": csrf_of(form.text)},
    )
    cookie = response.headers["set-cookie"]
    assert "Secure" in cookie
    assert form.headers["Strict-Transport-Security"].startswith("max-age=")


def test_pages_carry_a_strict_content_security_policy_and_no_inline_script(
    console: Console,
) -> None:
    browser = console.login(Role.ADMIN)
    for path in ("/console/", "/console/resources", "/console/jobs", "/console/plans"):
        response = browser.get(path)
        assert response.status_code == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        assert '<meta name="viewport"' in response.text
        # Scripts only by src: no inline <script> body, no inline handlers.
        assert "<script>" not in response.text and "onclick" not in response.text


def test_a_refused_token_a_stale_form_and_no_session_are_refused(console: Console) -> None:
    browser = console.client()
    form = browser.get("/console/login")
    wrong = browser.post(
        "/console/login", data={"token": "srt_0123456789ab_nope", "csrf": csrf_of(form.text)}
    )
    assert wrong.status_code == 401
    assert "refused" in wrong.text
    forged = console.client().post(
        "/console/login", data={"token": console.tokens[Role.ADMIN], "csrf": "made-up"}
    )
    assert forged.status_code == 403
    assert "strongroom_session" not in forged.headers.get("set-cookie", "")
    anonymous = console.client().get("/console/resources")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login"


def test_revoking_the_token_ends_its_sessions_at_the_next_click(console: Console) -> None:
    browser = console.login(Role.OPERATOR)
    assert browser.get("/console/").status_code == 200
    parts = split_token(console.tokens[Role.OPERATOR])
    assert parts is not None
    TokenService(console.ops.context).revoke(parts[0])
    ended = browser.get("/console/")
    assert ended.status_code == 303
    assert ended.headers["location"] == "/console/login?ended=expired"
    # The session is gone for good: the token being valid again would not revive it.
    assert browser.get("/console/jobs").headers["location"] == "/console/login"


def test_logout_forgets_the_session(console: Console) -> None:
    browser = console.login(Role.VIEWER)
    page = browser.get("/console/")
    cookie = browser.cookies.get("strongroom_session")
    response = browser.post("/console/logout", data={"csrf": csrf_of(page.text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?ended=logout"
    browser.cookies.set("strongroom_session", cookie or "", path="/console")
    assert browser.get("/console/").status_code == 303  # the old cookie opens nothing


def test_a_post_without_the_csrf_token_is_refused_and_does_nothing(console: Console) -> None:
    browser = console.login(Role.OPERATOR)
    response = browser.post("/console/resources/docs/backup", data={"csrf": "wrong"})
    assert response.status_code == 403
    assert "CSRF" in response.text
    assert console.ops.service.list_jobs() == []


def test_a_role_without_the_permission_sees_the_refusal_and_it_is_audited(
    console: Console,
) -> None:
    browser = console.login(Role.VIEWER)
    page = browser.get("/console/resources/docs")
    assert "needs operator, admin" in page.text  # the button says who may
    response = browser.post("/console/resources/docs/backup", data={"csrf": csrf_of(page.text)})
    assert response.status_code == 403
    assert "Not allowed" in response.text
    assert "role viewer" in response.text and "backup.start" in response.text
    assert console.ops.service.list_jobs() == []
    [entry] = AuditService(console.ops.context).list(EntryFilter(action="api.authorize"))
    assert entry["outcome"] == "refused"
    assert entry["actor"].startswith("token:console-viewer:")


def test_an_operator_starts_a_backup_watches_it_and_opens_its_point(console: Console) -> None:
    browser = console.login(Role.OPERATOR)
    page = browser.get("/console/resources/docs")
    assert '<option value="vault:main">' in page.text
    started = browser.post(
        "/console/resources/docs/backup", data={"csrf": csrf_of(page.text), "into": "vault:main"}
    )
    assert started.status_code == 303
    job_path = started.headers["location"]
    job_id = job_path.rsplit("/", 1)[-1]
    assert browser.get(f"{job_path}/progress").json()["state"] == "PENDING"
    finished = console.ops.run(console.ops.service.describe_job(job_id).job)
    assert finished.state is JobState.COMPLETED
    progress = browser.get(f"{job_path}/progress").json()
    assert progress["terminal"] is True
    assert progress["point_id"] == (finished.result or {})["point_id"]
    job_page = browser.get(job_path)
    assert "COMPLETED" in job_page.text and progress["point_id"] in job_page.text
    point_page = browser.get(f"/console/points/{progress['point_id']}")
    assert point_page.status_code == 200
    assert "Restore test" in point_page.text and "Never." in point_page.text


def test_a_verify_with_a_restore_test_shows_its_evidence(console: Console) -> None:
    job = console.ops.backup("docs")
    point_id = (job.result or {})["point_id"]
    browser = console.login(Role.OPERATOR)
    page = browser.get(f"/console/points/{point_id}")
    response = browser.post(
        f"/console/points/{point_id}/verify",
        data={"csrf": csrf_of(page.text), "restore_test": "on"},
    )
    assert response.status_code == 303
    verify_id = response.headers["location"].rsplit("/", 1)[-1]
    verified = console.ops.run(console.ops.service.describe_job(verify_id).job)
    assert verified.state is JobState.COMPLETED
    evidence = browser.get(f"/console/points/{point_id}").text
    assert evidence.count("Passed on") == 2  # the restore test and the verification
    assert verify_id[:8] in evidence


def test_a_restore_is_confirmed_naming_its_target_before_it_starts(
    console: Console, tmp_path: Path
) -> None:
    point_id = (console.ops.backup("docs").result or {})["point_id"]
    browser = console.login(Role.RESTORER)
    form = browser.get(f"/console/points/{point_id}/restore")
    assert form.status_code == 200 and 'name="target.path"' in form.text
    target = str(tmp_path / "restored")
    confirm = browser.post(
        f"/console/points/{point_id}/restore",
        data={"csrf": csrf_of(form.text), "target.path": target},
    )
    assert confirm.status_code == 200
    assert f"path={target}" in confirm.text and "Restore into this target" in confirm.text
    assert len(console.ops.service.list_jobs()) == 1  # only the backup: nothing started yet
    started = browser.post(
        f"/console/points/{point_id}/restore",
        data={"csrf": csrf_of(confirm.text), "target.path": target, "confirmed": "yes"},
    )
    assert started.status_code == 303
    restore_id = started.headers["location"].rsplit("/", 1)[-1]
    restored = console.ops.run(console.ops.service.describe_job(restore_id).job)
    assert restored.state is JobState.COMPLETED
    assert (tmp_path / "restored").is_dir()


def test_legal_hold_is_placed_by_an_operator_and_removed_only_by_an_admin_with_a_reason(
    console: Console,
) -> None:
    point_id = (console.ops.backup("docs").result or {})["point_id"]
    operator = console.login(Role.OPERATOR)
    page = operator.get(f"/console/points/{point_id}")
    placed = operator.post(
        f"/console/points/{point_id}/legal-hold",
        data={"csrf": csrf_of(page.text), "reason": "case 42"},
    )
    assert placed.status_code == 303
    assert console.ops.point(point_id).legal_hold is True
    held = operator.get(f"/console/points/{point_id}").text
    assert "on hold" in held and "case 42" in held
    refused = operator.post(
        f"/console/points/{point_id}/legal-hold",
        data={"csrf": csrf_of(held), "reason": "done", "remove": "yes"},
    )
    assert refused.status_code == 403
    admin = console.login(Role.ADMIN)
    page = admin.get(f"/console/points/{point_id}")
    no_reason = admin.post(
        f"/console/points/{point_id}/legal-hold",
        data={"csrf": csrf_of(page.text), "reason": " ", "remove": "yes"},
    )
    assert no_reason.status_code == 422
    assert console.ops.point(point_id).legal_hold is True
    removed = admin.post(
        f"/console/points/{point_id}/legal-hold",
        data={"csrf": csrf_of(page.text), "reason": "case closed", "remove": "yes"},
    )
    assert removed.status_code == 303
    assert console.ops.point(point_id).legal_hold is False


def test_every_section_renders_for_a_viewer(console: Console) -> None:
    console.ops.backup("docs")
    console.ops.rule("daily", "nightly", selects=("docs",), schedule="cron(0 3 * * ? *)")
    browser = console.login(Role.VIEWER)
    for path, expected in (
        ("/console/resources", "docs"),
        ("/console/plans", "nightly"),
        ("/console/vaults", "main"),
        ("/console/vaults/main", "Lifecycle"),
        ("/console/jobs?kind=backup&state=COMPLETED", "COMPLETED"),
        ("/console/reports", "Summary"),
    ):
        response = browser.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert expected in response.text, path
    assert browser.get("/console/jobs?state=NOPE").status_code == 422
    assert browser.get("/console/resources/unknown").status_code == 404
    assert browser.get("/console/jobs?cursor=garbage").status_code == 422


def test_a_long_list_pages_by_keyset_showing_every_point_once(console: Console) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    with console.ops.context.catalog.session() as session:
        vault_id = session.scalars(select(Vault.id).where(Vault.name == "main")).one()
        resource_id = session.scalars(select(Resource.id).where(Resource.name == "docs")).one()
        for number in range(PAGE_SIZE + 7):
            point_id = f"{number:03d}" + "cd" * 30
            # Every third point shares its time with the one before: the keyset keeps ties.
            created = start + timedelta(minutes=number - number % 3)
            record_recovery_point(
                session,
                point_id=point_id,
                vault_id=vault_id,
                resource_id=resource_id,
                created_at=created,
            )
            made.append(point_id)
    browser = console.login(Role.VIEWER)
    first = browser.get("/console/resources/docs")
    older = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert older is not None
    second = browser.get(older.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    assert 'rel="next"' not in second.text
    shown = re.findall(r'class="point-link">([0-9a-f]{8})<', first.text + second.text)
    assert len(shown) == len(made)
    assert sorted(shown) == sorted(point_id[:8] for point_id in made)
