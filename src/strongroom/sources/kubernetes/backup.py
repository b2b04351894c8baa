"""Back up a cluster's API objects: one stream per resource type, JSON lines.

Each stream ``objects/GROUP/VERSION/RESOURCE.jsonl`` holds the objects of one type as
canonical JSON lines sorted by namespace and name, server-set fields stripped
(:func:`.objects.strip`). The metadata records the server version, every type with its
kind, scope, count and SHA-256, the namespaces, the CRDs, what was left out and why, and
the types the account may not list (the backup is then PARTIAL).

Each type is one consistent list: its pages are read with the continue token of the first
page, so they show the type at one resourceVersion. When the store compacted that
revision before the last page was read (the server answers 410 Expired to the token),
the pages read so far are dropped and the type is listed again from the start, up to
:data:`RELISTS` times; then the backup fails with a retryable error (the job's retry
policy runs it again). Different types are listed at different revisions, as kubectl and
Velero do: the API offers no snapshot across types.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from strongroom.config.resources import KubernetesResource
from strongroom.errors import AccessDeniedError, ChangedMeanwhileError
from strongroom.logs import get_logger
from strongroom.sources.base import BackupResult, JsonObject, SourceContext, StreamSink
from strongroom.sources.kubernetes.client import KubeApi, KubeError, translate
from strongroom.sources.kubernetes.discovery import ResourceType, discover, server_version
from strongroom.sources.kubernetes.objects import (
    NEVER_RESTORED_TYPES,
    canonical_line,
    namespace_selected,
    never_restored,
    strip_in_place,
    type_selected,
)

FORMAT = "strongroom-kubernetes"
FORMAT_VERSION = 1
PAGE_SIZE = 500
RELISTS = 3
"""How many times a list whose continue token expired (410) starts again from scratch."""
EXPIRED = 410
_logger = get_logger(__name__)
LIST_WORKERS = 4
NAMESPACES_KEY = "core/v1/namespaces"
CRDS_KEY = "apiextensions.k8s.io/v1/customresourcedefinitions"


def stream_name(rtype: ResourceType) -> str:
    """The stream holding the objects of one type."""
    return f"objects/{rtype.key}.jsonl"


def list_objects(
    api: KubeApi,
    rtype: ResourceType,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    page_size: int = PAGE_SIZE,
) -> list[JsonObject]:
    """Every object of a type (in ``namespace`` when given), page by page, as one
    consistent list (see the module docstring: an expired continue token lists again).

    Items come back with ``apiVersion`` and ``kind`` set (a list leaves them out). Raises
    the translated API error (``AccessDeniedError`` naming the type and verb when RBAC
    forbids the list), ``ChangedMeanwhileError`` (retryable) when the list expired
    :data:`RELISTS` times over.
    """
    where = f" in namespace {namespace}" if namespace else ""
    doing = f"list {rtype.group_resource}{where}"
    query = {"limit": str(page_size)}
    if label_selector:
        query["labelSelector"] = label_selector
    items: list[JsonObject] = []
    relists = 0
    while True:
        try:
            answer = api.raw("GET", rtype.path(namespace), query=query)
        except KubeError as exc:
            if exc.status != EXPIRED or "continue" not in query:
                raise translate(exc, doing, api.address) from exc
            if relists == RELISTS:
                raise ChangedMeanwhileError(
                    f"{doing} on {api.address}: the list expired {RELISTS + 1} times before "
                    f"its last page was read ({exc.message})",
                    hint="The store compacts faster than the list is read: the job's retry "
                    "runs it again.",
                ) from exc
            relists += 1
            _logger.info(
                "%s: the continue token expired after %d objects; listing again (%d of %d)",
                doing,
                len(items),
                relists,
                RELISTS,
            )
            items = []
            del query["continue"]
            continue
        for item in answer.get("items") or []:
            item["apiVersion"] = rtype.api_version
            item["kind"] = rtype.kind
            items.append(item)
        token = (answer.get("metadata") or {}).get("continue")
        if not token:
            return items
        query["continue"] = token


def _selected_namespaces(api: KubeApi, settings: KubernetesResource) -> list[JsonObject]:
    """The Namespace objects the settings select (globs; every one when none are given)."""
    namespaces = ResourceType("", "v1", "namespaces", "Namespace", namespaced=False)
    try:
        every = list_objects(api, namespaces)
    except AccessDeniedError:
        literal = [name for name in settings.namespaces if not set(name) & set("*?[")]
        if not literal or len(literal) != len(settings.namespaces):
            raise
        # May not list namespaces but may work in named ones: take the names as given.
        return [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            for name in literal
        ]
    return [
        item
        for item in every
        if namespace_selected(
            item["metadata"]["name"], settings.namespaces, settings.exclude_namespaces
        )
    ]


def _list_type(
    api: KubeApi, rtype: ResourceType, settings: KubernetesResource, namespaces: list[str]
) -> list[JsonObject]:
    """The objects of a type in the selected namespaces.

    Lists across all namespaces at once; when RBAC forbids that, namespace by namespace.
    """
    selector = settings.label_selector
    try:
        found = list_objects(api, rtype, label_selector=selector)
    except AccessDeniedError:
        if not rtype.namespaced:
            raise
        found = []
        for namespace in namespaces:
            found += list_objects(api, rtype, namespace=namespace, label_selector=selector)
    if not rtype.namespaced:
        return found
    chosen = set(namespaces)
    return [item for item in found if item["metadata"].get("namespace") in chosen]


def backup(
    settings: KubernetesResource, api: KubeApi, context: SourceContext, sink: StreamSink
) -> BackupResult:
    """Write one stream per resource type that holds objects; return the metadata.

    A type the account may not list is named in ``failed_parts`` (the point is PARTIAL);
    an unreachable server or refused credentials raise.
    """
    version = server_version(api)
    discovery = discover(api)
    failed = {f"group {group}": reason for group, reason in discovery.failed_groups.items()}
    left_out: dict[str, str] = {}
    types: list[ResourceType] = []
    for rtype in discovery.types:
        if rtype.group_resource in NEVER_RESTORED_TYPES:
            left_out[rtype.key] = NEVER_RESTORED_TYPES[rtype.group_resource]
        elif rtype.key == NAMESPACES_KEY:
            if type_selected(rtype, [], settings.exclude_resources):
                types.append(rtype)
        elif type_selected(rtype, settings.include_resources, settings.exclude_resources) and (
            rtype.namespaced or settings.cluster_scoped
        ):
            types.append(rtype)
    namespace_objects = _selected_namespaces(api, settings)
    namespaces = sorted(item["metadata"]["name"] for item in namespace_objects)
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "server_version": version,
        "server": api.address,
        "context": settings.context,
        "namespaces": namespaces,
        "label_selector": settings.label_selector,
        "include_status": settings.include_status,
        "types_left_out": left_out,
    }
    if context.dry_run:
        return BackupResult(
            metadata={**metadata, "dry_run": True, "types": [t.to_json() for t in types]}
        )
    entries: list[JsonObject] = []
    skipped: Counter[str] = Counter()

    def listed(rtype: ResourceType) -> list[JsonObject] | AccessDeniedError:
        context.check_cancelled()
        if rtype.key == NAMESPACES_KEY:
            return namespace_objects
        try:
            return _list_type(api, rtype, settings, namespaces)
        except AccessDeniedError as exc:
            return exc

    # Lists are answered while the previous one is parsed and written: a few at once.
    with ThreadPoolExecutor(max_workers=LIST_WORKERS) as pool:
        for rtype, found in zip(types, pool.map(listed, types), strict=True):
            if isinstance(found, AccessDeniedError):
                failed[rtype.key] = str(found)
                continue
            kept = []
            for item in found:
                reason = never_restored(rtype, item)
                if reason is None:
                    kept.append(strip_in_place(item, keep_status=settings.include_status))
                else:
                    skipped[reason] += 1
            if kept:
                entries.append(_write_type(sink, context, rtype, kept))
    crds = next((entry for entry in entries if _key(entry) == CRDS_KEY), None)
    metadata |= {
        "types": entries,
        "counts": {_key(entry): entry["count"] for entry in entries},
        "objects": sum(entry["count"] for entry in entries),
        "objects_left_out": dict(sorted(skipped.items())),
        "crds": crds["names"] if crds else [],
        "forbidden": dict(failed),
    }
    return BackupResult(metadata=metadata, failed_parts=failed)


def _key(entry: JsonObject) -> str:
    return ResourceType.from_json(entry).key


def _write_type(
    sink: StreamSink, context: SourceContext, rtype: ResourceType, items: list[JsonObject]
) -> JsonObject:
    """Write one type's stream; return its metadata entry (count, SHA-256, names of CRDs)."""
    items.sort(key=lambda item: (item["metadata"].get("namespace", ""), item["metadata"]["name"]))
    digest = hashlib.sha256()
    with sink.open_stream(stream_name(rtype)) as stream:
        for item in items:
            line = canonical_line(item)
            digest.update(line)
            stream.write(line)
            context.progress(len(line))
    entry = rtype.to_json() | {
        "stream": stream_name(rtype),
        "count": len(items),
        "sha256": digest.hexdigest(),
    }
    if rtype.key == CRDS_KEY:
        entry["names"] = [item["metadata"]["name"] for item in items]
    return entry
