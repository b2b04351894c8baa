"""The job service: creating jobs from rules, looking them up, and refusing bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest

from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.events import Event
from strongroom.engine.jobs import JobService
from strongroom.engine.retry import RetryPolicy
from strongroom.errors import ConfigError, NotFoundError
from tests.support.catalog import T0


def test_a_job_from_a_rule_takes_its_vault_policy_partial_setting_and_windows(
    service: JobService, events: list[Event]
) -> None:
    job_id = service.create_job("backup", "orders-db", rule="daily/fast", params={"full": True})
    windowed = service.get(service.create_job(JobKind.BACKUP, "cache", rule="daily/windowed"))
    partial = service.get(service.create_job(JobKind.BACKUP, "cache", rule="daily/partial"))

    job = service.get(job_id)
    assert (job.kind, job.state, job.vault, job.rule, job.params) == (
        JobKind.BACKUP,
        JobState.PENDING,
        "main",
        "daily/fast",
        {"full": True},
    )
    assert RetryPolicy(job.max_attempts, job.retry_interval_seconds, job.retry_backoff_rate) == (
        RetryPolicy(max_attempts=2, interval_seconds=10, backoff_rate=2.0)
    )
    assert (job.allow_partial, partial.allow_partial) == (False, True)
    assert (windowed.start_by, windowed.complete_by) == (
        T0 + timedelta(minutes=60),
        T0 + timedelta(minutes=120),
    )
    assert [(t.from_state, t.to_state) for t in service.transitions(job_id)] == [
        (None, JobState.CREATED),
        (JobState.CREATED, JobState.PENDING),
    ]
    assert [e.type for e in events if e.subject == job_id] == [
        "backup.job.state_changed",
        "backup.job.created",
        "backup.job.state_changed",
        "backup.job.queued",
    ]


def test_explicit_settings_win_over_the_rules(service: JobService) -> None:
    job = service.get(
        service.create_job(
            JobKind.BACKUP,
            "orders-db",
            "dr",
            rule="daily/partial",
            allow_partial=False,
            retry_policy=RetryPolicy(max_attempts=7),
        )
    )
    assert (job.vault, job.allow_partial, job.max_attempts) == ("dr", False, 7)


def test_a_job_without_rule_gets_the_default_policy(service: JobService) -> None:
    job = service.get(service.create_job(JobKind.VERIFY, vault="main"))
    assert (job.resource, job.vault, job.rule, job.max_attempts) == (None, "main", None, 4)
    assert job.retry_interval_seconds == 300


def test_jobs_are_listed_and_filtered(service: JobService) -> None:
    first = service.create_job(JobKind.BACKUP, "orders-db", "main")
    second = service.create_job(JobKind.RESTORE, "cache", "dr")
    service.cancel(first)

    assert [job.id for job in service.list()] in ([second, first], [first, second])
    assert [job.id for job in service.list(states=[JobState.ABORTED])] == [first]
    assert [job.id for job in service.list(kinds=[JobKind.RESTORE])] == [second]
    assert [job.id for job in service.list(resource="cache")] == [second]
    assert [job.id for job in service.list(vault="main")] == [first]


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"kind": "snapshot"}, ConfigError, "unknown job kind"),
        ({"kind": "backup", "resource": "nope"}, NotFoundError, "no resource"),
        ({"kind": "backup", "vault": "nope"}, NotFoundError, "no vault"),
        ({"kind": "backup", "rule": "nightly"}, ConfigError, "plan/rule"),
        ({"kind": "backup", "rule": "daily/nope"}, NotFoundError, "no rule"),
    ],
)
def test_bad_job_requests_are_refused_and_create_nothing(
    service: JobService, arguments: dict[str, str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        service.create_job(**arguments)  # type: ignore[arg-type]
    assert service.list() == []


def test_an_unknown_job_is_not_found(service: JobService) -> None:
    for call in (service.get, service.transitions, service.cancel):
        with pytest.raises(NotFoundError):
            call("no-such-job")


def test_running_jobs_needs_an_executor(service: JobService) -> None:
    with pytest.raises(ConfigError, match="no executor"):
        service.run_until_idle()
