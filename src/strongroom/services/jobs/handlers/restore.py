"""Restore and verify jobs: reading recovery points back, and proving they restore.

Restore: the job's params name the recovery point (``point_id``) and the source's target
options (``target``: ``{"path": "/new/folder"}`` for files, ``{"database": "copy"}`` for
postgres …; each source's restore documents what it accepts). The point's streams are
read through the vault (every chunk checked) into ``source.restore``; the report, check
by check, is the job result. A restore with failed checks fails the job with an
``IntegrityError`` naming them.

Verify: params ``point_id`` (or none: the whole vault of the job), ``read_data`` and
``restore_test``. ``vault.verify`` checks structure (and every byte with ``read_data``);
with ``restore_test`` each point (for a whole vault: the newest point of each resource)
is restored into a scratch target by its source and compared with its recorded
metadata. Every result is kept as evidence on the recovery point in the catalog
(``verification_result``, ``restore_test_result``) before the job ends; any damage or
failed check fails the job with an ``IntegrityError`` naming the point and the checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Final

from strongroom.catalog.points import (
    get_recovery_point,
    list_recovery_points,
    record_restore_test,
    record_verification,
)
from strongroom.catalog.types import PointState
from strongroom.engine.context import JobContext, JobResult
from strongroom.errors import ConfigError, IntegrityError, NotFoundError
from strongroom.services.context import AppContext
from strongroom.services.declare.resources import resource_config
from strongroom.services.erasure.restores import keep_evidence, open_erasures
from strongroom.services.jobs.handlers.common import (
    build_source,
    failures_text,
    report_json,
    required,
    scratch_folder,
    source_context,
)
from strongroom.services.jobs.handlers.streams import PointStreams
from strongroom.services.retention.cold_tier import point_to_read
from strongroom.services.vaults.point_audit import audit_points, with_problems
from strongroom.services.vaults.service import VaultService
from strongroom.sources.base import (
    Check,
    JsonObject,
    PointOpener,
    ReadableStream,
    RestoreReport,
    StreamReader,
)
from strongroom.vault import Vault, VerifyReport

_MAX_LISTED: Final = 100
_MAX_FINDINGS: Final = 5


class _CountingReader:
    """A readable stream that reports the bytes read from it."""

    def __init__(self, stream: ReadableStream, progress: Callable[[int], None]) -> None:
        self._stream = stream
        self._progress = progress

    def read(self, size: int = -1, /) -> bytes:
        data = self._stream.read(size)
        if data:
            self._progress(len(data))
        return data


class _CountingStreams:
    """The streams of a point, reporting bytes read as progress (restores report none)."""

    def __init__(self, streams: PointStreams, progress: Callable[[int], None]) -> None:
        self._streams = streams
        self._progress = progress

    def stream_names(self) -> list[str]:
        return self._streams.stream_names()

    def open_stream(self, name: str) -> AbstractContextManager[ReadableStream]:
        return self._open(name)

    def read_ahead(self, names: Sequence[str]) -> None:
        self._streams.read_ahead(names)

    @contextmanager
    def _open(self, name: str) -> Iterator[ReadableStream]:
        with self._streams.open_stream(name) as stream:
            yield _CountingReader(stream, self._progress)


def source_metadata(metadata: Mapping[str, Any], point_id: str, resource_type: str) -> Any:
    """Return the source's own metadata from a point's manifest metadata.

    Raises ``ConfigError`` for a point no resource backup made (``vault backup``), or one
    made by a source of another type than the resource has now.
    """
    source = metadata.get("source")
    result = metadata.get("result")
    if not isinstance(source, Mapping) or not isinstance(result, Mapping):
        raise ConfigError(
            f"recovery point {point_id} was not made by a resource backup",
            hint="Restore its streams with 'strongroom vault restore'.",
        )
    if source.get("type") != resource_type:
        raise ConfigError(
            f"recovery point {point_id} holds a {source.get('type')!r} backup, but resource "
            f"{source.get('resource')!r} is now of type {resource_type!r}"
        )
    return dict(result)


def _point_opener(vault: Vault, resource_type: str, progress: Callable[[int], None]) -> PointOpener:
    """Open the other points of ``vault`` for a source (the earlier points of a chain)."""

    @contextmanager
    def open_point(point_id: str) -> Iterator[tuple[StreamReader, JsonObject]]:
        with vault.reader(point_id) as reader:
            metadata = source_metadata(reader.point.metadata, point_id, resource_type)
            yield _CountingStreams(PointStreams(reader), progress), metadata

    return open_point


def _param(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"the job has no {key} parameter")
    return value


def run_restore(context: AppContext, job_context: JobContext) -> JobResult:
    """Restore the point the job names into its target; see the module docstring."""
    job = job_context.job
    point_id = _param(job.params, "point_id")
    target = job.params.get("target") or {}
    if not isinstance(target, Mapping):
        raise ConfigError("the restore target must be a mapping of options")
    with context.catalog.session(readonly=True) as session:
        row = get_recovery_point(session, point_id)
        vault_name, resource = row.vault.name, row.resource.name
        cold_point_id = row.cold_point_id
        model = resource_config(session, resource)
    source = build_source(context, resource, model)
    erasures = open_erasures(context, resource)
    with (
        # A point moved to a separate-store cold tier is read from its copy there.
        point_to_read(context, vault_name, point_id, cold_point_id) as (vault, read_id),
        vault.reader(read_id) as reader,
        scratch_folder(context, job) as scratch,
    ):
        metadata = source_metadata(reader.point.metadata, point_id, model.type)
        source_ctx = source_context(job_context, scratch, "bytes restored")
        source_ctx.points = _point_opener(vault, model.type, source_ctx.progress)
        source_ctx.erasures = erasures
        streams = _CountingStreams(PointStreams(reader), source_ctx.progress)
        report = source.restore(source_ctx, streams, metadata, dict(target))
    erased = keep_evidence(
        context, report, erasures, job_id=job.id, point_id=point_id, restore_test=False
    )
    if report.failures:
        raise IntegrityError(
            f"restore of recovery point {point_id} into {report.target}: "
            f"{len(report.failures)} check(s) failed: {failures_text(report)}",
            hint="The entries that failed were not written; see 'describe-job' for the rest.",
        )
    return JobResult(
        data={
            "point_id": point_id,
            "vault": vault_name,
            "resource": resource,
            **report_json(report),
            "erasures": erased,
        },
        message=f"restored recovery point {point_id} to {report.target}"
        + (f", {len(erased)} erasure request(s) re-applied" if erased else ""),
    )


def run_verify(context: AppContext, job_context: JobContext) -> JobResult:
    """Verify one point or a whole vault, optionally restore-test; see the module docstring."""
    job = job_context.job
    vault_name = required(job.vault, "vault to verify")
    point_id = job.params.get("point_id") or None
    read_data = bool(job.params.get("read_data"))
    restore_test = bool(job.params.get("restore_test"))
    findings: list[str] = []
    tests: list[dict[str, Any]] = []
    with VaultService(context).open(vault_name) as vault:
        job_context.progress(0, None, "reading every pack" if read_data else "checking structure")
        report = vault.verify(read_data=read_data, point_ids=[point_id] if point_id else None)
        if point_id is None:
            report = with_problems(report, audit_points(context, vault_name, vault))
        job_context.cancel.raise_if_cancelled()
        checked = [point_id] if point_id else [str(item) for item in vault.point_ids()]
        damaged = _damage_by_point(report)
        _record_verifications(context, job_context, checked, damaged, report, read_data)
        for damaged_id, streams in damaged.items():
            names = ", ".join(
                "(whole point)" if item["stream"] is None else item["stream"] for item in streams
            )
            findings.append(
                f"recovery point {damaged_id}: damaged stream(s) {names}: {streams[0]['reason']}"
            )
        # Named findings of the catalog comparison, each on its own; damage as a count.
        findings.extend(problem.message for problem in report.problems if problem.kind != "damaged")
        damage = [problem for problem in report.problems if problem.kind == "damaged"]
        if point_id is None and damage:
            first = damage[0]
            findings.append(
                f"vault {vault_name}: {len(damage)} problem(s), e.g. "
                f"{first.object_name}: {first.message}"
            )
        if restore_test:
            for tested_id in _restore_test_points(context, vault_name, point_id):
                if tested_id in damaged:
                    continue  # already failed; a restore would only fail on the same damage
                job_context.cancel.raise_if_cancelled()
                test = _restore_test(context, job_context, vault, tested_id)
                tests.append({"point_id": tested_id, **test})
                if not test["ok"]:
                    findings.append(
                        f"recovery point {tested_id}: restore test failed: {test['failures']}"
                    )
    if findings:
        shown = " | ".join(findings[:_MAX_FINDINGS])
        more = len(findings) - _MAX_FINDINGS
        raise IntegrityError(
            f"verify of {_subject(vault_name, point_id)} failed: {shown}"
            + (f" | and {more} more" if more > 0 else ""),
            hint="Restore damaged points from a copy; the evidence is on each recovery point "
            "('list-recovery-points -o json').",
        )
    return JobResult(
        data={
            "vault": vault_name,
            "point_id": point_id,
            "read_data": read_data,
            "restore_test": restore_test,
            "ok": True,
            "points_checked": report.points_checked,
            "streams_checked": report.streams_checked,
            "packs_checked": report.packs_checked,
            "bytes_read": report.bytes_read,
            "unindexed_packs": report.unindexed_packs,
            "vault_problems": [
                {"object": problem.object_name, "kind": problem.kind, "message": problem.message}
                for problem in report.problems[:_MAX_LISTED]
            ],
            "restore_tests": tests[:_MAX_LISTED],
        },
        message=f"{_subject(vault_name, point_id)} verified",
    )


def _subject(vault_name: str, point_id: str | None) -> str:
    return f"recovery point {point_id}" if point_id else f"vault {vault_name}"


def _damage_by_point(report: VerifyReport) -> dict[str, list[dict[str, Any]]]:
    damaged: dict[str, list[dict[str, Any]]] = {}
    for item in report.damaged:
        damaged.setdefault(item.point_id, []).append({"stream": item.stream, "reason": item.reason})
    return damaged


def _record_verifications(
    context: AppContext,
    job_context: JobContext,
    point_ids: list[str],
    damaged: Mapping[str, list[dict[str, Any]]],
    report: VerifyReport,
    read_data: bool,
) -> None:
    """Keep each checked point's verdict as evidence (points the catalog lacks are skipped)."""
    at = job_context.clock.now()
    with context.catalog.session() as session:
        for point_id in point_ids:
            evidence = {
                "ok": point_id not in damaged,
                "job_id": job_context.job.id,
                "read_data": read_data,
                "damaged_streams": damaged.get(point_id, [])[:_MAX_LISTED],
                "vault_problems": len(report.problems),
            }
            try:
                record_verification(session, point_id, result=evidence, at=at)
            except NotFoundError:
                continue  # a point written by 'vault backup': no catalog record to keep it on


def _restore_test_points(context: AppContext, vault_name: str, point_id: str | None) -> list[str]:
    """The point given, or the newest available point of each resource in the vault."""
    if point_id is not None:
        return [point_id]
    newest: dict[int, str] = {}
    with context.catalog.session(readonly=True) as session:
        for row in list_recovery_points(
            session, vault=vault_name, states=[PointState.AVAILABLE, PointState.PARTIAL]
        ):
            newest.setdefault(row.resource_id, row.id)  # rows come newest first
    return list(newest.values())


def _restore_test(
    context: AppContext, job_context: JobContext, vault: Vault, point_id: str
) -> dict[str, Any]:
    """Restore-test one point with its resource's source; record and return the evidence."""
    job = job_context.job
    with context.catalog.session(readonly=True) as session:
        row = get_recovery_point(session, point_id)
        resource = row.resource.name
        model = resource_config(session, resource)
    source = build_source(context, resource, model)
    erasures = open_erasures(context, resource)
    with vault.reader(point_id) as reader, scratch_folder(context, job) as scratch:
        metadata = source_metadata(reader.point.metadata, point_id, model.type)
        source_ctx = source_context(job_context, scratch, f"bytes restore-tested ({resource})")
        source_ctx.erasures = erasures
        streams = _CountingStreams(PointStreams(reader), source_ctx.progress)
        try:
            report = source.restore_test(source_ctx, streams, metadata)
        except IntegrityError as error:
            report = RestoreReport(
                target="(not restored)", checks=[Check("data reads back intact", True, str(error))]
            )
    erased = keep_evidence(
        context, report, erasures, job_id=job.id, point_id=point_id, restore_test=True
    )
    evidence = {"job_id": job.id, "resource": resource, **report_json(report), "erasures": erased}
    with context.catalog.session() as session:
        record_restore_test(session, point_id, result=evidence, at=job_context.clock.now())
    return {
        "resource": resource,
        "ok": report.ok,
        "target": report.target,
        "checks_total": len(report.checks),
        "checks_failed": len(report.failures),
        "failures": "" if report.ok else failures_text(report),
    }
