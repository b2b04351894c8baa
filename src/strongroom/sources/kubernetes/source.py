"""The ``kubernetes`` source class; see the package docstring and docs/sources/kubernetes.md."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from strongroom.config.resources import KubernetesResource
from strongroom.sources.base import (
    BackupResult,
    Description,
    JsonObject,
    RestoreReport,
    SourceContext,
    StreamReader,
    StreamSink,
    check_restorable,
)
from strongroom.sources.kubernetes import backup, testing
from strongroom.sources.kubernetes.client import KubeApi, connect
from strongroom.sources.kubernetes.discovery import discover, server_version
from strongroom.sources.kubernetes.restore import Restoring, load_objects, restore_objects
from strongroom.sources.kubernetes.target import KubernetesRestoreTarget
from strongroom.sources.targets import parse_target


class KubernetesSource:
    """Backs up, restores and restore-tests the API objects of a cluster.

    Given the resource settings and: ``request_timeout`` (seconds per API request),
    ``established_wait_seconds`` (how long a restore waits for a CRD to be Established)
    and ``namespace_wait_seconds`` (how long a restore test waits for a controller to
    remove its scratch namespaces before it finalizes them itself).
    """

    type_name: ClassVar[str] = "kubernetes"

    def __init__(
        self,
        settings: KubernetesResource,
        *,
        request_timeout: float = 60.0,
        established_wait_seconds: float = 60.0,
        namespace_wait_seconds: float = 20.0,
    ) -> None:
        self.settings = settings
        self.request_timeout = request_timeout
        self.established_wait_seconds = established_wait_seconds
        self.namespace_wait_seconds = namespace_wait_seconds

    @contextmanager
    def _api(self, settings: KubernetesResource | None = None) -> Iterator[KubeApi]:
        api = connect(settings or self.settings, timeout=self.request_timeout)
        try:
            yield api
        finally:
            api.close()

    def describe(self, context: SourceContext) -> Description:
        """Name the server version and the resource types a backup would list."""
        with self._api() as api:
            version = server_version(api)
            found = discover(api)
        return Description(
            summary=f"Kubernetes {version} at {api.address}: "
            f"{len(found.types)} resource types served",
            parts=[backup.stream_name(rtype) for rtype in found.types],
            tools={"server": version},
        )

    def backup(self, context: SourceContext, sink: StreamSink) -> BackupResult:
        """Back up every selected object, one stream per type; see :mod:`.backup`.

        Raises ``AccessDeniedError`` (credentials refused, or RBAC forbidding discovery or
        the namespace list), ``NetworkError`` (unreachable), ``ConfigError`` (kubeconfig).
        Types the account may not list make the result PARTIAL, each one named.
        """
        with self._api() as api:
            return backup.backup(self.settings, api, context, sink)

    def restore(
        self,
        context: SourceContext,
        reader: StreamReader,
        metadata: JsonObject,
        target: JsonObject,
    ) -> RestoreReport:
        """Restore as ``target`` says (see :class:`KubernetesRestoreTarget`).

        With ``dry_run`` (the target's or the context's) every object is sent as a server-side dry run and the
        report says what would be created, kept or updated. An object the server rejects
        fails its own check, naming it and the server's reason; the others are restored.
        """
        check_restorable(metadata, backup.FORMAT, self.type_name)
        options = parse_target(KubernetesRestoreTarget, target, self.type_name)
        settings = self.settings
        if options.kubeconfig is not None or options.context is not None:
            settings = settings.model_copy(
                update={
                    "kubeconfig": options.kubeconfig or settings.kubeconfig,
                    "context": options.context or settings.context,
                }
            )
        loaded = load_objects(reader, metadata, options)
        with self._api(settings) as api:
            report = RestoreReport(target=f"kubernetes {api.address}")
            restoring = Restoring(
                api,
                options,
                context,
                dry_run=context.dry_run or options.dry_run,
                established_wait_seconds=self.established_wait_seconds,
            )
            restore_objects(restoring, loaded, report)
        return report

    def restore_test(
        self, context: SourceContext, reader: StreamReader, metadata: JsonObject
    ) -> RestoreReport:
        """Restore into scratch namespaces of the same server, compare, delete them."""
        check_restorable(metadata, backup.FORMAT, self.type_name)
        with self._api() as api:
            return testing.restore_test(
                api, reader, metadata, context, wait_seconds=self.namespace_wait_seconds
            )
