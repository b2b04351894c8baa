"""Restore tests of Kubernetes recovery points, into scratch namespaces of the same server.

Every backed-up namespace ``NS`` is restored as ``srt-XXXXXX-NS`` (cut to 63 characters)
with its namespaced objects; cluster-scoped objects are not touched (the cluster keeps
its own). Workloads (deployments, pods, jobs …) are sent as server-side dry runs, so that
no pod starts: the server validates, defaults and answers them as it would store them.
Each object the server holds (or answered) is read back, normalized
(:func:`.objects.normalized`) and compared with the backed-up one; a difference names kind,
namespace and name. Secrets are compared byte for byte. The scratch namespaces are then
deleted, each object first, and waited for.
"""

from __future__ import annotations

import secrets
import time

from strongroom.errors import IntegrityError
from strongroom.sources.base import Check, JsonObject, RestoreReport, SourceContext, StreamReader
from strongroom.sources.kubernetes.client import KubeApi, KubeError
from strongroom.sources.kubernetes.discovery import ResourceType
from strongroom.sources.kubernetes.objects import normalized, object_name
from strongroom.sources.kubernetes.restore import (
    WORKLOADS,
    Applied,
    Restoring,
    load_objects,
    restore_objects,
)
from strongroom.sources.kubernetes.target import KubernetesRestoreTarget

NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", namespaced=False)


def scratch_names(namespaces: list[str]) -> dict[str, str]:
    """A fresh scratch name for each namespace: ``srt-XXXXXX-NS``, at most 63 characters."""
    tag = secrets.token_hex(3)
    names = {}
    for index, namespace in enumerate(namespaces):
        name = f"srt-{tag}-{namespace}"
        if len(name) > 63:
            name = f"srt-{tag}-{index}-{namespace}"[:63].rstrip("-")
        names[namespace] = name
    return names


def restore_test(
    api: KubeApi,
    reader: StreamReader,
    metadata: JsonObject,
    context: SourceContext,
    *,
    wait_seconds: float,
) -> RestoreReport:
    """Restore into scratch namespaces, compare object by object, delete the namespaces."""
    mapping = scratch_names(list(metadata["namespaces"]))
    options = KubernetesRestoreTarget(namespace_map=mapping, cluster_scoped=False)
    report = RestoreReport(target=f"scratch namespaces srt-* on {api.address}")
    try:
        loaded = load_objects(reader, metadata, options)
    except IntegrityError as exc:
        report.checks.append(Check(f"streams: {exc}", "intact", "damaged"))
        return report
    restoring = Restoring(api, options, context, dry_run_types=WORKLOADS)
    try:
        applied = restore_objects(restoring, loaded, report)
        report.notes = [note for note in report.notes if not note.startswith("created: ")]
        _compare(api, applied, report)
    finally:
        _delete_scratch(api, restoring.applied, sorted(mapping.values()), wait_seconds, report)
    return report


def _compare(api: KubeApi, applied: list[Applied], report: RestoreReport) -> None:
    """Read back each restored object and compare it with the backed-up one."""
    differing = 0
    secrets_equal = secrets_total = 0
    for item in applied:
        if not item.in_place or item.rtype.key == "core/v1/namespaces":
            continue
        name = object_name(item.rtype, item.sent)
        if item.rtype.group_resource in WORKLOADS:
            found = item.answer or {}
        else:
            metadata = item.sent["metadata"]
            namespace = metadata.get("namespace") if item.rtype.namespaced else None
            try:
                found = api.raw("GET", item.rtype.path(namespace, metadata["name"]))
            except KubeError as exc:
                report.checks.append(Check(f"{name}: read back", "found", str(exc)))
                differing += 1
                continue
        expected = normalized(item.sent)
        actual = normalized(found)
        if item.rtype.group_resource == "secrets":
            secrets_total += 1
            secrets_equal += expected.get("data") == actual.get("data")
        if expected != actual:
            differing += 1
            report.checks.append(
                Check(f"{name} ({item.rtype.key})", _differences(expected, actual), "equal")
            )
    report.checks.append(Check("restored objects differing from the backup", 0, differing))
    report.checks.append(Check("secrets byte-equal", secrets_total, secrets_equal))


def _differences(expected: JsonObject, actual: JsonObject) -> str:
    """The top-level fields that differ, for the failing check's message."""
    fields = sorted(key for key in {*expected, *actual} if expected.get(key) != actual.get(key))
    return "differs in " + ", ".join(fields)


def _delete_scratch(
    api: KubeApi,
    applied: list[Applied],
    namespaces: list[str],
    wait_seconds: float,
    report: RestoreReport,
) -> None:
    """Delete what the test created, then its namespaces, and wait until they are gone.

    A namespace is deleted by a controller; where none finishes it within
    ``wait_seconds`` (a server without controllers) strongroom finalizes it itself, having
    deleted every object it created in it.
    """
    for item in applied:
        if item.action != "created" or item.rtype.key == "core/v1/namespaces":
            continue
        metadata = item.sent["metadata"]
        namespace = metadata.get("namespace") if item.rtype.namespaced else None
        try:
            api.raw("DELETE", item.rtype.path(namespace, metadata["name"]))
        except KubeError as exc:
            if exc.status != 404:
                report.notes.append(f"could not delete {object_name(item.rtype, item.sent)}: {exc}")
    for name in namespaces:
        try:
            api.raw("DELETE", NAMESPACES.path(name=name))
        except KubeError as exc:
            if exc.status != 404:
                report.notes.append(f"could not delete scratch namespace {name}: {exc}")
    remaining = _wait_gone(api, namespaces, wait_seconds)
    if remaining:
        report.notes.append(
            f"no namespace controller removed {', '.join(remaining)} within {wait_seconds:.0f}s: "
            "finalized by strongroom (their objects were deleted first)"
        )
        for name in remaining:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            body["spec"] = {"finalizers": []}
            try:
                api.raw("PUT", NAMESPACES.path(name=name) + "/finalize", body=body)
            except KubeError as exc:
                if exc.status != 404:
                    report.notes.append(f"could not finalize {name}: {exc}")
        remaining = _wait_gone(api, remaining, wait_seconds)
    report.checks.append(
        Check("scratch namespaces deleted", len(namespaces), len(namespaces) - len(remaining))
    )


def _wait_gone(api: KubeApi, namespaces: list[str], wait_seconds: float) -> list[str]:
    """Poll until the namespaces are gone or ``wait_seconds`` pass; return those left."""
    deadline = time.monotonic() + wait_seconds
    left = list(namespaces)
    while left:
        still = []
        for name in left:
            try:
                api.raw("GET", NAMESPACES.path(name=name))
                still.append(name)
            except KubeError as exc:
                if exc.status != 404:
                    still.append(name)
        left = still
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.25)
    return left
