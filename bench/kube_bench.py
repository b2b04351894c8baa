"""Kubernetes benchmark (issue #16): strongroom's kubernetes source vs the plain client.

    .venv/bin/python bench/kube_bench.py [--namespaces 50] [--per-namespace 20]

Against the API server of ``dev/services up kube`` (its kubeconfig from
``services.json``), fills ``--namespaces`` namespaces with ``--per-namespace`` objects of
each of five kinds: config maps (1 KiB), secrets (512 B binary), deployments, services
and custom resources of a CRD made for the run (defaults: 50 x 20 x 5 = 5,000 objects),
then measures in one run, wall seconds of each step in this process:

* plain listing: the official client's ``ApiClient`` lists every type the backup lists
  (the discovered types less the never-restored ones, cluster-wide, 500 a page) and writes
  the raw JSON answers to a file: the least any tool can do to read the same objects
  (discovery itself is not timed here; the backup's time includes it);
* plain listing with the typed client: ``CoreV1Api``/``AppsV1Api``/``CustomObjectsApi``
  list the five kinds in the run's namespaces and ``sanitize_for_serialization`` writes them;
* ``kubectl get … -A -o yaml`` of the five kinds to a file, when a ``kubectl`` is on PATH
  (Debian 12's ``kubernetes-client`` is v1.20, too old for this server's API; the row
  names the kubectl that ran);
* strongroom backup (source into files): ``KubernetesSource.backup`` of the run's
  namespaces into files (streams as files, no vault: the source's own cost);
* strongroom backup (CLI into a vault): ``strongroom start-backup RESOURCE --vault V
  --wait`` as a user runs it, a new process (interpreter start, catalog, discovery,
  listing, encryption and upload into a local vault, commit) after ``apply``;
* strongroom restore: ``KubernetesSource.restore`` of those streams into new namespaces
  (``namespace_map``), objects per second.

Prints a table with ratios; the namespaces and CRD are deleted at the end. The machine's
load average is printed: on a shared machine wall times are noisy.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from strongroom.config.resources import KubernetesResource
from strongroom.sources.base import SourceContext
from strongroom.sources.kubernetes.client import connect
from strongroom.sources.kubernetes.discovery import discover
from strongroom.sources.kubernetes.objects import NEVER_RESTORED_TYPES
from strongroom.sources.kubernetes.source import KubernetesSource

# The test helpers that make and delete objects with the plain client: repository root.
sys.path.insert(0, str(Path(__file__).parent.parent))
from tests.integration.sources.kube_data import (
    call,
    crd_body,
    delete_crd,
    delete_namespaces,
    wait_established,
)
from tests.support.services import load_settings


class FileSink:
    """Streams as files in a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextmanager
    def open_stream(self, name: str) -> Iterator[Any]:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            yield handle


class FileReader:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def stream_names(self) -> list[str]:
        return sorted(str(p.relative_to(self.folder)) for p in self.folder.rglob("*.jsonl"))

    @contextmanager
    def open_stream(self, name: str) -> Iterator[Any]:
        with (self.folder / name).open("rb") as handle:
            yield handle


def populate(api_client: Any, namespaces: list[str], per: int, group: str) -> int:
    """Create the objects with 8 threads; return how many."""
    payload = "x" * 1024

    def fill(namespace: str) -> int:
        call(api_client, "POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        base = f"/api/v1/namespaces/{namespace}"
        for index in range(per):
            name = f"obj-{index}"
            call(
                api_client,
                "POST",
                f"{base}/configmaps",
                {"metadata": {"name": name}, "data": {"v": payload}},
            )
            secret = base64.b64encode(os.urandom(512)).decode()
            call(
                api_client,
                "POST",
                f"{base}/secrets",
                {"metadata": {"name": name}, "data": {"v": secret}},
            )
            call(
                api_client,
                "POST",
                f"/apis/apps/v1/namespaces/{namespace}/deployments",
                {
                    "metadata": {"name": name},
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": {"app": name}},
                        "template": {
                            "metadata": {"labels": {"app": name}},
                            "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
                        },
                    },
                },
            )
            call(
                api_client,
                "POST",
                f"{base}/services",
                {
                    "metadata": {"name": name},
                    "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
                },
            )
            call(
                api_client,
                "POST",
                f"/apis/{group}/v1/namespaces/{namespace}/widgets",
                {
                    "apiVersion": f"{group}/v1",
                    "kind": "Widget",
                    "metadata": {"name": name},
                    "spec": {"size": index},
                },
            )
        return per * 5 + 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        return sum(pool.map(fill, namespaces))


def plain_listing(api_client: Any, paths: list[str], out: Path) -> int:
    """List each path (500 a page) with the raw client and write the answers; return items."""
    count = 0
    with out.open("wb") as handle:
        for path in paths:
            query = [("limit", "500")]
            while True:
                prepared = api_client.param_serialize(
                    "GET",
                    path,
                    query_params=query,
                    header_params={"Accept": "application/json"},
                    auth_settings=["BearerToken"],
                )
                data = api_client.call_api(*prepared).read()
                handle.write(data)
                answer = json.loads(data)
                count += len(answer.get("items") or [])
                token = (answer.get("metadata") or {}).get("continue")
                if not token:
                    break
                query = [("limit", "500"), ("continue", token)]
    return count


def typed_listing(api_client: Any, namespaces: list[str], group: str, out: Path) -> int:
    from kubernetes.client import AppsV1Api, CoreV1Api, CustomObjectsApi

    core, apps, custom = CoreV1Api(api_client), AppsV1Api(api_client), CustomObjectsApi(api_client)
    count = 0
    with out.open("w") as handle:
        for namespace in namespaces:
            lists = [
                core.list_namespaced_config_map(namespace).items,
                core.list_namespaced_secret(namespace).items,
                core.list_namespaced_service(namespace).items,
                apps.list_namespaced_deployment(namespace).items,
                custom.list_namespaced_custom_object(group, "v1", namespace, "widgets")["items"],
            ]
            for items in lists:
                for item in items:
                    handle.write(json.dumps(api_client.sanitize_for_serialization(item)) + "\n")
                    count += 1
    return count


def kubectl_get(kubeconfig: str, context: str | None, kinds: str, out: Path) -> tuple[float, int]:
    """Time ``kubectl get KINDS -A -o yaml`` into ``out``; return (seconds, objects)."""
    command = ["kubectl", "--kubeconfig", kubeconfig, "get", kinds, "-A", "-o", "yaml"]
    if context:
        command[3:3] = ["--context", context]
    started = time.perf_counter()
    with out.open("wb") as handle:
        subprocess.run(command, stdout=handle, check=True)
    seconds = time.perf_counter() - started
    with out.open("rb") as handle:
        count = sum(1 for line in handle if line.startswith(b"- apiVersion:"))
    return seconds, count


def kubectl_version() -> str | None:
    """The client version of the ``kubectl`` on PATH, or None when there is none."""
    if shutil.which("kubectl") is None:
        return None
    answer = subprocess.run(
        ["kubectl", "version", "--client", "-o", "json"], capture_output=True, check=False
    )
    try:
        return str(json.loads(answer.stdout)["clientVersion"]["gitVersion"])
    except (ValueError, KeyError):
        return "unknown version"


def cli_backup(work: Path, resource: KubernetesResource, tag: str) -> tuple[float, float, int]:
    """``apply`` a config with the resource and a local vault, then time ``strongroom
    start-backup --wait`` in a new process; return (process seconds, the job's own
    seconds from start to finish, objects in the point)."""
    home, config = work / "home", work / "strongroom.yaml"
    document = {
        "vaults": {
            "bench": {
                "url": (work / "vault").as_uri(),
                "key": {"provider": "passphrase", "passphrase": "env:KUBE_BENCH_PASS"},
            }
        },
        "resources": {f"kube-{tag}": resource.model_dump(mode="json", exclude_none=True)},
    }
    config.write_text(json.dumps(document))
    environment = {
        **os.environ,
        "STRONGROOM_HOME": str(home),
        "KUBE_BENCH_PASS": "a passphrase for the benchmark vault",
    }
    strongroom = str(Path(sys.executable).parent / "strongroom")
    subprocess.run(
        [strongroom, "apply", "-f", str(config)], env=environment, check=True, capture_output=True
    )
    started = time.perf_counter()
    answer = subprocess.run(
        [strongroom, "start-backup", f"kube-{tag}", "--vault", "bench", "--wait", "-o", "json"],
        env=environment,
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    job = json.loads(answer.stdout)
    if job["state"] != "COMPLETED":
        raise SystemExit(f"the CLI backup ended {job['state']}: {job.get('error')}")
    points = subprocess.run(
        [strongroom, "list-recovery-points", "--output", "json"],
        env=environment,
        check=True,
        capture_output=True,
    )
    [point] = json.loads(points.stdout)
    objects = int(point["metadata"]["result"]["objects"])
    return seconds, float(job.get("duration_seconds") or 0.0), objects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--per-namespace", type=int, default=20, help="objects of each kind")
    arguments = parser.parse_args()

    from kubernetes import config

    settings = load_settings("kube")
    api_client = config.new_client_from_config(
        config_file=settings["KUBECONFIG"], context=settings.get("CONTEXT"), persist_config=False
    )
    api_client.configuration.connection_pool_maxsize = 16
    tag = secrets.token_hex(3)
    group = f"bench-{tag}.strongroom.test"
    namespaces = [f"bench-{tag}-{index:03d}" for index in range(arguments.namespaces)]
    mapping = {namespace: f"{namespace}-r" for namespace in namespaces}
    work = Path(tempfile.mkdtemp(prefix="kube-bench-"))
    crd = crd_body(group)
    call(api_client, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    wait_established(api_client, crd["metadata"]["name"])
    rows: list[tuple[str, float, int]] = []
    try:
        started = time.perf_counter()
        created = populate(api_client, namespaces, arguments.per_namespace, group)
        print(f"populated {created} objects in {time.perf_counter() - started:.1f}s", flush=True)

        resource = KubernetesResource(
            type="kubernetes",
            kubeconfig=settings["KUBECONFIG"],
            context=settings.get("CONTEXT"),
            namespaces=[f"bench-{tag}-*"],
        )
        source = KubernetesSource(resource)
        context = SourceContext(scratch=work)

        started = time.perf_counter()
        result = source.backup(context, FileSink(work / "streams"))
        backup_seconds = time.perf_counter() - started
        backed_up = result.metadata["objects"]

        # Every type the backup listed (discovered, less the never-restored ones),
        # cluster-wide, as the plain client would.
        api = connect(resource, timeout=60)
        paths = [
            rtype.path()
            for rtype in discover(api).types
            if rtype.group_resource not in NEVER_RESTORED_TYPES
        ]
        api.close()
        started = time.perf_counter()
        listed = plain_listing(api_client, paths, work / "plain.json")
        plain_seconds = time.perf_counter() - started
        started = time.perf_counter()
        typed = typed_listing(api_client, namespaces, group, work / "typed.jsonl")
        typed_seconds = time.perf_counter() - started

        cli_seconds, job_seconds, cli_objects = cli_backup(work, resource, tag)
        kubectl = kubectl_version()
        kubectl_row: tuple[str, float, int] | None = None
        if kubectl is not None:
            kinds = f"configmaps,secrets,deployments.apps,services,widgets.{group}"
            try:
                seconds, count = kubectl_get(
                    settings["KUBECONFIG"], settings.get("CONTEXT"), kinds, work / "kubectl.yaml"
                )
                kubectl_row = (f"kubectl {kubectl} get 5 kinds -A -o yaml", seconds, count)
                # -A: every namespace, as the plain listing (other tests' objects too).
            except subprocess.CalledProcessError as error:
                print(f"kubectl {kubectl} failed against this server: {error}")
        else:
            print("no kubectl on PATH (Debian 12's kubernetes-client is v1.20): row left out")

        started = time.perf_counter()
        report = source.restore(
            context, FileReader(work / "streams"), result.metadata, {"namespace_map": mapping}
        )
        restore_seconds = time.perf_counter() - started
        restored = sum(1 for note in report.notes if note.startswith("created: "))
        if not report.ok:
            print("restore failures:", report.failures[:5])

        rows = [
            ("plain listing (ApiClient, raw JSON to a file)", plain_seconds, listed),
            ("plain listing (typed client, 5 kinds x namespaces)", typed_seconds, typed),
            *([kubectl_row] if kubectl_row else []),
            ("strongroom backup (source into files)", backup_seconds, backed_up),
            ("strongroom backup (CLI start-backup into a vault)", cli_seconds, cli_objects),
            ("  of which the job itself (RUNNING to COMPLETED)", job_seconds, cli_objects),
            ("strongroom restore (into mapped namespaces)", restore_seconds, restored),
        ]
        print(f"\nload average: {os.getloadavg()}; cores: {os.cpu_count()}")
        print(f"{'step':<52} {'wall s':>8} {'objects':>8} {'objects/s':>10}")
        for name, seconds, count in rows:
            print(f"{name:<52} {seconds:>8.2f} {count:>8} {count / seconds:>10.0f}")
        print(
            f"\nCLI backup / plain raw listing: {cli_seconds / plain_seconds:.2f}x (target <= 1.5x)"
        )
        print(f"CLI job / plain raw listing: {job_seconds / plain_seconds:.2f}x")
        print(f"source backup / plain raw listing: {backup_seconds / plain_seconds:.2f}x")
        print(f"source backup / typed listing:     {backup_seconds / typed_seconds:.2f}x")
        if kubectl_row:
            print(f"CLI backup / kubectl get:          {cli_seconds / kubectl_row[1]:.2f}x")
        print(f"restore: {restored / restore_seconds:.0f} objects/s")
    finally:
        delete_namespaces(api_client, namespaces + list(mapping.values()), group)
        delete_crd(api_client, crd["metadata"]["name"])
        api_client.close()


if __name__ == "__main__":
    main()
