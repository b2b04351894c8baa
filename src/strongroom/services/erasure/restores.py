"""Erasure requests in restores: what a restore must re-apply, and the evidence it keeps.

A restore handler gives the source the resource's open requests
(:func:`open_erasures` into ``SourceContext.erasures``); the source re-applies them to
what it wrote and reports each in ``RestoreReport.erasures``. :func:`keep_evidence`
then checks that every request was accounted for and records each re-application in the
catalog, where ``erasure show`` and the compliance report read them.
"""

from __future__ import annotations

from typing import Any

from strongroom.catalog import erasure as catalog_erasure
from strongroom.errors import ErasureError
from strongroom.services.context import AppContext
from strongroom.sources.base import Check, RestoreReport
from strongroom.sources.erasure import Erasure, ErasureKind, not_applied


def open_erasures(context: AppContext, resource: str) -> tuple[Erasure, ...]:
    """The open erasure requests of ``resource``, as its source applies them."""
    with context.catalog.session(readonly=True) as session:
        rows = catalog_erasure.open_requests(session, resource)
        return tuple(_erasure(row.id, row.subject, row.kind, row.method) for row in rows)


def _erasure(request_id: str, subject: str, kind: str, method: dict[str, Any]) -> Erasure:
    checked: ErasureKind = "sql" if kind == "sql" else "keys" if kind == "keys" else "paths"
    return Erasure(
        request_id=request_id,
        subject=subject,
        kind=checked,
        statements=tuple(method.get("statements") or ()),
        remaining=method.get("remaining"),
        patterns=tuple(method.get("patterns") or ()),
        database=method.get("database"),
    )


def keep_evidence(
    context: AppContext,
    report: RestoreReport,
    erasures: tuple[Erasure, ...],
    *,
    job_id: str,
    point_id: str,
    restore_test: bool,
) -> list[dict[str, Any]]:
    """Record the re-applications of ``report`` and return them as JSON.

    A request the source reported nothing for was not re-applied: a restore raises
    ``ErasureError`` naming it (the restored data must not be reported good); a restore
    test gets a failed check instead (its scratch target is gone already).
    """
    missing = not_applied(erasures, report.erasures)
    if missing and not restore_test:
        raise ErasureError(
            f"the restore to {report.target} did not re-apply erasure request(s) "
            f"{', '.join(missing)}",
            hint="The restored data may still hold the subject(s): do not use it. Restore into "
            "a target the source can erase in (see docs/erasure.md).",
        )
    for request_id in missing:
        report.checks.append(
            Check(f"erasure request {request_id} re-applied", "re-applied", "not re-applied")
        )
    effects = [effect.to_json() for effect in report.erasures]
    if not effects:
        return []
    at = context.now()
    with context.catalog.session() as session:
        for effect in effects:
            catalog_erasure.record_application(
                session,
                request_id=effect["request_id"],
                job_id=job_id,
                point_id=point_id,
                restore_test=restore_test,
                at=at,
                effect=effect,
            )
    return effects
