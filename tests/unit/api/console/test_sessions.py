"""Console sessions: random ids, timeouts, a bound on their number, CSRF comparison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from strongroom.api.console import sessions
from strongroom.api.console.sessions import SessionStore, same_secret

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def test_a_session_is_found_by_its_id_and_holds_its_token() -> None:
    store = SessionStore()
    opened = store.open("srt_token", NOW)
    found = store.find(opened.id, NOW + timedelta(minutes=5))
    assert found is opened
    assert found.token == "srt_token"
    assert opened.id != opened.csrf and len(opened.id) >= 40
    assert "srt_token" not in repr(opened)  # secrets stay out of logs and tracebacks
    assert store.find("another", NOW) is None
    assert store.find(None, NOW) is None


def test_an_idle_session_ends_and_so_does_an_old_one_in_use() -> None:
    store = SessionStore(idle=timedelta(minutes=30), lifetime=timedelta(hours=2))
    idle = store.open("a", NOW)
    assert store.find(idle.id, NOW + timedelta(minutes=31)) is None
    assert store.find(idle.id, NOW) is None  # forgotten, not merely hidden
    busy = store.open("b", NOW)
    moment = NOW
    while moment < NOW + timedelta(hours=2):
        assert store.find(busy.id, moment) is busy
        moment += timedelta(minutes=20)
    assert store.find(busy.id, NOW + timedelta(hours=2, minutes=1)) is None


def test_closing_forgets_a_session() -> None:
    store = SessionStore()
    opened = store.open("a", NOW)
    store.close(opened.id)
    store.close(opened.id)  # twice is fine
    assert store.find(opened.id, NOW) is None
    assert len(store) == 0


def test_the_number_of_sessions_is_bounded_dropping_the_least_recently_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sessions, "MAX_SESSIONS", 3)
    store = SessionStore()
    first = store.open("1", NOW)
    second = store.open("2", NOW + timedelta(seconds=1))
    third = store.open("3", NOW + timedelta(seconds=2))
    store.find(first.id, NOW + timedelta(seconds=3))  # the first is used again
    fourth = store.open("4", NOW + timedelta(seconds=4))
    assert len(store) == 3
    assert store.find(second.id, NOW + timedelta(seconds=5)) is None
    for kept in (first, third, fourth):
        assert store.find(kept.id, NOW + timedelta(seconds=5)) is kept


def test_csrf_tokens_compare_whole() -> None:
    assert same_secret("abc", "abc")
    assert not same_secret("abc", "abd")
    assert not same_secret("ab", "abc")
    assert not same_secret(None, "abc")
