"""Restore API objects in dependency order, each one reported.

Order: CRDs first (then wait until each is Established and discover again, so their
custom resources are served), namespaces, cluster-wide settings (storage and priority
classes), service accounts and quotas, config maps and secrets, RBAC, volumes claims,
workloads, then everything else. Within a stage objects are sent by several threads.

Each object is sent as backed up, namespaces rewritten by the target's ``namespace_map``
and owner references dropped (they name owners by uid, which restored owners do not
keep). One that exists already is kept (``existing: skip``) or replaced (``update``); one
the server rejects is reported with the server's reason and the rest go on.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from strongroom.errors import IntegrityError
from strongroom.sources.base import (
    Check,
    JsonObject,
    RestoreReport,
    SourceContext,
    StreamReader,
    iter_stream,
)
from strongroom.sources.kubernetes.backup import CRDS_KEY, NAMESPACES_KEY
from strongroom.sources.kubernetes.client import KubeApi, KubeError
from strongroom.sources.kubernetes.discovery import Discovery, ResourceType, discover
from strongroom.sources.kubernetes.objects import (
    namespace_selected,
    object_name,
    prepared_for_restore,
    type_selected,
)
from strongroom.sources.kubernetes.target import KubernetesRestoreTarget

WORKERS = 8
"""Objects sent at once within a stage."""

STAGES: tuple[tuple[str, ...], ...] = (
    ("namespaces",),
    ("storageclasses.storage.k8s.io", "priorityclasses.scheduling.k8s.io"),
    ("serviceaccounts", "limitranges", "resourcequotas"),
    ("configmaps", "secrets"),
    (
        "clusterroles.rbac.authorization.k8s.io",
        "roles.rbac.authorization.k8s.io",
        "clusterrolebindings.rbac.authorization.k8s.io",
        "rolebindings.rbac.authorization.k8s.io",
    ),
    ("persistentvolumes", "persistentvolumeclaims"),
    (
        "deployments.apps",
        "statefulsets.apps",
        "daemonsets.apps",
        "replicasets.apps",
        "replicationcontrollers",
        "jobs.batch",
        "cronjobs.batch",
        "pods",
    ),
)
"""Restore stages after the CRDs, by ``RESOURCE.GROUP``; every other type comes last."""

WORKLOADS = frozenset(STAGES[-1])


def stage_of(rtype: ResourceType) -> int:
    """The stage a type is restored in (0 for namespaces … ``len(STAGES)`` for the rest)."""
    for index, names in enumerate(STAGES):
        if rtype.group_resource in names:
            return index
    return len(STAGES)


@dataclass
class Applied:
    """One object sent: the type, the object as sent, what happened, the server's answer."""

    rtype: ResourceType
    sent: JsonObject
    action: str
    reason: str = ""
    answer: JsonObject | None = None

    @property
    def in_place(self) -> bool:
        """True when the object is now on the server (or would be, in a dry run)."""
        return self.action != "rejected"


@dataclass
class Restoring:
    """What a restore is given besides the objects (see :func:`restore_objects`)."""

    api: KubeApi
    options: KubernetesRestoreTarget
    context: SourceContext
    dry_run: bool = False
    dry_run_types: frozenset[str] = frozenset()
    established_wait_seconds: float = 60.0
    applied: list[Applied] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def read_type(reader: StreamReader, entry: JsonObject) -> Iterator[JsonObject]:
    """The objects of one type's stream, its SHA-256 checked against the metadata.

    Raises ``IntegrityError`` naming the stream when the bytes differ from the backup's.
    """
    digest = hashlib.sha256()
    pending = b""
    with reader.open_stream(entry["stream"]) as stream:
        for block in iter_stream(stream):
            digest.update(block)
            pending += block
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield json.loads(line)
    if pending.strip():
        yield json.loads(pending)
    if digest.hexdigest() != entry["sha256"]:
        raise IntegrityError(f"stream {entry['stream']} differs from what the backup wrote")


def _chosen(options: KubernetesRestoreTarget, entry: JsonObject) -> bool:
    rtype = ResourceType.from_json(entry)
    if rtype.key == NAMESPACES_KEY:
        return type_selected(rtype, [], options.exclude_resources)
    if not rtype.namespaced and not options.cluster_scoped:
        return False
    return type_selected(rtype, options.include_resources, options.exclude_resources)


def _wanted(options: KubernetesRestoreTarget, rtype: ResourceType, item: JsonObject) -> bool:
    """Whether an object is in the namespaces the target restores."""
    metadata = item["metadata"]
    if rtype.key == NAMESPACES_KEY:
        return namespace_selected(metadata["name"], options.namespaces, [])
    if rtype.namespaced:
        return namespace_selected(metadata.get("namespace", ""), options.namespaces, [])
    return True


def load_objects(
    reader: StreamReader, metadata: JsonObject, options: KubernetesRestoreTarget
) -> list[tuple[ResourceType, list[JsonObject]]]:
    """The backed-up objects the target selects, by type, in the order the backup kept."""
    loaded = []
    for entry in metadata["types"]:
        if not _chosen(options, entry):
            continue
        rtype = ResourceType.from_json(entry)
        items = [item for item in read_type(reader, entry) if _wanted(options, rtype, item)]
        if items:
            loaded.append((rtype, items))
    return loaded


def restore_objects(
    restoring: Restoring, loaded: list[tuple[ResourceType, list[JsonObject]]], report: RestoreReport
) -> list[Applied]:
    """Send every object in stage order; report each; return what was sent and how it went."""
    crds = [(rtype, items) for rtype, items in loaded if rtype.key == CRDS_KEY]
    rest = [(rtype, items) for rtype, items in loaded if rtype.key != CRDS_KEY]
    for rtype, items in crds:
        _send_all(restoring, rtype, items)
        if not restoring.dry_run:
            _wait_established(restoring, [item["metadata"]["name"] for item in items], report)
    discovery = discover(restoring.api)
    for _stage, group in _by_stage(rest):
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for rtype, items in group:
                restoring.context.check_cancelled()
                served = _served(discovery, rtype)
                if served is None:
                    reason = (
                        f"the server serves no {rtype.kind} in group {rtype.group or 'core'} "
                        "(its CRD or API is missing)"
                    )
                    mapping = restoring.options.namespace_map
                    for item in items:
                        sent = prepared_for_restore(item, mapping)
                        _record(restoring, Applied(rtype, sent, "rejected", reason))
                    continue
                for _ in pool.map(lambda item, t=rtype: _send(restoring, t, item), items):
                    pass
    _report(restoring, report)
    return restoring.applied


def _by_stage(
    loaded: list[tuple[ResourceType, list[JsonObject]]],
) -> list[tuple[int, list[tuple[ResourceType, list[JsonObject]]]]]:
    stages: dict[int, list[tuple[ResourceType, list[JsonObject]]]] = {}
    for rtype, items in loaded:
        stages.setdefault(stage_of(rtype), []).append((rtype, items))
    return sorted(stages.items(), key=lambda pair: pair[0])


def _served(discovery: Discovery, rtype: ResourceType) -> ResourceType | None:
    """The backed-up type as the server serves it: the backed-up version, served plural."""
    found = discovery.by_group_kind(rtype.group, rtype.kind)
    if found is None:
        return None
    return ResourceType(rtype.group, rtype.version, found.resource, rtype.kind, found.namespaced)


def _send_all(restoring: Restoring, rtype: ResourceType, items: list[JsonObject]) -> None:
    for item in items:
        _send(restoring, rtype, item)


def _record(restoring: Restoring, applied: Applied) -> None:
    with restoring.lock:
        restoring.applied.append(applied)


def _send(restoring: Restoring, rtype: ResourceType, item: JsonObject) -> None:
    """Create one object (or keep or replace the one there); record what happened."""
    sent = prepared_for_restore(item, restoring.options.namespace_map)
    dry_run = restoring.dry_run or rtype.group_resource in restoring.dry_run_types
    namespace = sent["metadata"].get("namespace") if rtype.namespaced else None
    name = sent["metadata"]["name"]
    query = {"dryRun": "All"} if dry_run else {}
    prefix = "would be " if restoring.dry_run else ""
    api = restoring.api
    try:
        answer = api.raw("POST", rtype.path(namespace), query=query, body=sent)
        _record(restoring, Applied(rtype, sent, f"{prefix}created", answer=answer))
        return
    except KubeError as exc:
        error = exc
    if error.status == 409 and error.reason == "AlreadyExists":
        if restoring.options.existing == "skip":
            _record(restoring, Applied(rtype, sent, "kept", "it exists already"))
            return
        try:
            current = api.raw("GET", rtype.path(namespace, name))
            replacement = json.loads(json.dumps(sent))
            replacement["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            answer = api.raw("PUT", rtype.path(namespace, name), query=query, body=replacement)
            _record(restoring, Applied(rtype, sent, f"{prefix}updated", answer=answer))
            return
        except KubeError as exc:
            error = exc
    if restoring.dry_run and error.status == 404 and namespace is not None:
        # Its namespace is only created by the real restore: nothing more to check here.
        _record(restoring, Applied(rtype, sent, "would be created", "after its namespace"))
        return
    reason = f"{error.status} {error.reason}: {error.message}"
    _record(restoring, Applied(rtype, sent, "rejected", reason))


def _wait_established(restoring: Restoring, names: list[str], report: RestoreReport) -> None:
    """Wait until every named CRD is Established (its custom resources are served)."""
    crd = ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "", False)
    deadline = time.monotonic() + restoring.established_wait_seconds
    waiting = set(names)
    while waiting:
        for name in sorted(waiting):
            try:
                found = restoring.api.raw("GET", crd.path(name=name))
            except KubeError:
                continue
            conditions = (found.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                waiting.discard(name)
        if waiting and time.monotonic() > deadline:
            report.notes.append(
                f"CRDs not Established after {restoring.established_wait_seconds:.0f}s: "
                + ", ".join(sorted(waiting))
            )
            return
        if waiting:
            restoring.context.cancel.wait(0.2)
            restoring.context.check_cancelled()


def _report(restoring: Restoring, report: RestoreReport) -> None:
    """One note per object, one check per type, one failing check per rejected object."""
    by_type: dict[str, list[Applied]] = {}
    for applied in restoring.applied:
        by_type.setdefault(applied.rtype.key, []).append(applied)
        name = object_name(applied.rtype, applied.sent)
        reason = f" ({applied.reason})" if applied.reason else ""
        report.notes.append(f"{applied.action}: {applied.rtype.api_version} {name}{reason}")
        if not applied.in_place:
            report.checks.append(
                Check(f"{name} ({applied.rtype.key})", "restored", f"rejected: {applied.reason}")
            )
    for key, group in by_type.items():
        report.checks.append(
            Check(f"{key}: objects in place", len(group), sum(a.in_place for a in group))
        )
