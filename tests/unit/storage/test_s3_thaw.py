"""Where an archived object stands, read from its HEAD answer, and how long a thaw takes.

The local S3 server keeps every object STANDARD and does not implement RestoreObject, so
the answers of a server that archives (AWS) are given here as they come in its headers;
the integration tests send the requests to the real server.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from strongroom.storage.s3_thaw import ThawReport, expected_wait, thaw_state


@pytest.mark.parametrize(
    ("storage_class", "restore", "state"),
    [
        (None, None, "readable"),  # STANDARD objects carry no storage class header
        ("STANDARD_IA", None, "readable"),
        ("GLACIER_IR", None, "readable"),
        ("GLACIER", None, "archived"),
        ("DEEP_ARCHIVE", None, "archived"),
        ("GLACIER", 'ongoing-request="true"', "thawing"),
        (
            "DEEP_ARCHIVE",
            'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"',
            "thawed",
        ),
    ],
)
def test_the_state_of_an_object_follows_its_class_and_restore_header(
    storage_class: str | None, restore: str | None, state: str
) -> None:
    assert thaw_state(storage_class, restore) == state


def test_expected_waits_are_aws_figures_and_deep_archive_has_no_expedited_tier() -> None:
    assert expected_wait("GLACIER", "Expedited") == timedelta(minutes=5)
    assert expected_wait("GLACIER", "Bulk") == timedelta(hours=12)
    assert expected_wait("DEEP_ARCHIVE", "Standard") == timedelta(hours=12)
    assert expected_wait("DEEP_ARCHIVE", "Expedited") is None


def test_a_report_is_ready_only_when_nothing_is_requested_or_thawing() -> None:
    done = ThawReport(requested=[], thawing=[], thawed=["a"], readable=["b"], wait=None)
    waiting = ThawReport(requested=[], thawing=["a"], thawed=[], readable=[], wait=None)
    assert done.ready
    assert not waiting.ready
