"""API tokens: shown once, stored as a hash, expiring, revocable, refusals audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from strongroom.catalog.audit import EntryFilter
from strongroom.catalog.models import ApiToken
from strongroom.engine.clock import ManualClock
from strongroom.errors import AuthenticationError, ConfigError, ConflictError, NotFoundError
from strongroom.services.access.roles import Role
from strongroom.services.access.tokens import TokenService, hash_secret, split_token
from strongroom.services.audit.service import AuditService
from strongroom.services.context import AppContext
from tests.support.api import secret_of


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def context(tmp_path: Path, clock: ManualClock) -> Iterator[AppContext]:
    context = AppContext(home=tmp_path / "home", clock=clock)
    yield context
    context.close()


def test_a_token_is_shown_once_and_only_its_hash_is_stored(context: AppContext) -> None:
    issued = TokenService(context).create(Role.OPERATOR, name="ci")

    parts = split_token(issued.token)
    assert parts is not None
    token_id, secret = parts
    assert token_id == issued.view.id
    assert len(secret) >= 43  # 256 random bits, URL-safe base64
    with context.catalog.session(readonly=True) as session:
        [row] = session.scalars(select(ApiToken)).all()
        stored = [str(value) for value in vars(row).values()]
    assert row.secret_hash == hash_secret(secret)
    assert not any(secret in value for value in stored)
    principal = TokenService(context).authenticate(issued.token, origin="test")
    assert (principal.role, principal.token_id) == (Role.OPERATOR, token_id)
    assert principal.name == f"token:ci:{token_id}"


def test_an_expired_or_revoked_token_is_refused(context: AppContext, clock: ManualClock) -> None:
    service = TokenService(context)
    short = service.create(Role.VIEWER, expires_in=timedelta(days=30))
    other = service.create(Role.ADMIN)
    clock.advance(timedelta(days=30))
    with pytest.raises(AuthenticationError, match="expired token"):
        service.authenticate(short.token, origin="test")
    service.revoke(other.view.id)
    with pytest.raises(AuthenticationError, match="revoked token"):
        service.authenticate(other.token, origin="test")
    states = {view.id: view.state(clock.now()) for view in service.list()}
    assert states == {short.view.id: "expired", other.view.id: "revoked"}


def test_a_wrong_secret_or_malformed_token_is_refused_and_audited(context: AppContext) -> None:
    service = TokenService(context)
    issued = service.create(Role.ADMIN)
    wrong = issued.token[:-4] + ("AAAA" if not issued.token.endswith("AAAA") else "BBBB")
    for presented in (wrong, "srt_nothing", "Bearer", ""):
        with pytest.raises(AuthenticationError) as refused:
            service.authenticate(presented, origin="api from 192.0.2.7")
        assert issued.token not in str(refused.value)
    entries = AuditService(context).list(EntryFilter(action="api.authenticate"), limit=None)
    assert [entry["outcome"] for entry in entries] == ["refused"] * 4
    assert {entry["origin"] for entry in entries} == {"api from 192.0.2.7"}
    assert entries[0]["subject"] == issued.view.id
    assert not any(secret_of(issued.token) in str(entry) for entry in entries)


def test_creating_and_revoking_are_audited_and_checked(context: AppContext) -> None:
    service = TokenService(context)
    issued = service.create(Role.AUDITOR, name="evidence")
    service.revoke(issued.view.id)
    with pytest.raises(ConflictError):
        service.revoke(issued.view.id)
    with pytest.raises(NotFoundError):
        service.revoke("000000000000")
    with pytest.raises(ConfigError):
        service.create(Role.VIEWER, expires_in=timedelta(0))
    with pytest.raises(ConfigError):
        service.create(Role.VIEWER, name="  ")
    actions = [
        (entry["action"], entry["subject"])
        for entry in AuditService(context).list(limit=None)
        if str(entry["action"]).startswith("token.")
    ]
    assert actions == [("token.create", issued.view.id), ("token.revoke", issued.view.id)]


def test_last_use_is_noted_at_most_once_a_minute(context: AppContext, clock: ManualClock) -> None:
    service = TokenService(context)
    issued = service.create(Role.VIEWER)
    service.authenticate(issued.token, origin="test")
    first = clock.now()
    clock.advance(30)
    service.authenticate(issued.token, origin="test")
    assert service.list()[0].last_used_at == first
    clock.advance(31)
    service.authenticate(issued.token, origin="test")
    assert service.list()[0].last_used_at == clock.now()
