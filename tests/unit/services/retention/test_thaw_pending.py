"""The error a restore ends with while a cold point's packs thaw: counts and when to retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from strongroom.errors import ThawPendingError, is_retryable
from strongroom.services.retention.cold_tier import pending_error
from strongroom.storage.s3_thaw import ThawReport

NOW = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)


def test_the_error_counts_the_objects_and_names_the_time_to_retry() -> None:
    report = ThawReport(
        requested=["data/aa/1", "data/bb/2"],
        thawing=["data/cc/3"],
        thawed=["data/dd/4"],
        readable=[],
        wait=timedelta(hours=12),
    )

    error = pending_error("ab" * 32, "data", report, "Bulk", NOW)

    assert isinstance(error, ThawPendingError)
    assert is_retryable(error)  # the thaw completes on its own; a retry then reads
    assert str(error) == (
        f"recovery point {'ab' * 6} is in an archive storage class: thaw requested for 2 "
        "objects (data) now, 1 already thawing, 1 of 4 readable; retry after 2026-12-08 13:00 "
        "UTC (the Bulk tier takes up to 12 hours)"
    )


def test_without_a_known_wait_the_error_says_to_wait_for_the_provider() -> None:
    report = ThawReport(requested=[], thawing=["x"], thawed=[], readable=[], wait=None)

    assert str(pending_error("cd" * 32, "chunk lists", report, "Standard", NOW)).endswith(
        "retry once the storage provider reports them restored"
    )
