"""The one place tests find the real servers that `dev/services` starts.

Settings are read per service from the environment when its `STRONGROOM_TEST_<NAME>_URL` is
set there, else from `$STRONGROOM_SERVICES_DIR/services.json` (default folder
`/var/tmp/strongroom-services`), which `dev/services up` writes. The other keys of the same
service (`_HOST`, `_PORT`, `_USER`, `_PASSWORD`, …) override what the URL says.

Each fixture checks that its server really answers, once per session. When a service is not
configured or does not answer, its tests are skipped with a message naming the command that
starts it; under `CI=true` they fail instead, because in CI a missing service is a failure.
No other module may skip a test for a missing service; what a test needs of the machine
itself (mounting, extended attributes) goes through ``tests.support.environment``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlencode, urlsplit
from urllib.request import urlopen

import boto3
import psycopg
import pymysql
import pymysql.connections
import pytest
import redis
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from strongroom.storage.s3 import S3Connection
from tests.support.environment import unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

DEFAULT_SERVICES_DIR = Path("/var/tmp/strongroom-services")
CONNECT_TIMEOUT_SECONDS = 5

ServiceT = TypeVar("ServiceT")


class ServiceUnavailableError(Exception):
    """A service is not configured, is misconfigured, or does not answer."""


def services_dir() -> Path:
    """Return the folder `dev/services` keeps its data and `services.json` in."""
    return Path(os.environ.get("STRONGROOM_SERVICES_DIR") or DEFAULT_SERVICES_DIR)


def unique_name(prefix: str) -> str:
    """Return `prefix` plus a suffix no other test run uses, for databases, tables and keys.

    Several engineers' test runs share one set of servers, so tests never reuse fixed names.
    """
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, kw_only=True)
class Server:
    """Where a server listens and how to log in; `url` holds the same, password included."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    url: str = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class PostgresService(Server):
    """PostgreSQL 15; `user` is a superuser. `bindir` holds the matching server tools."""

    database: str
    bindir: str | None = None

    def connect(self, database: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
        """Open a psycopg connection to `database` (default: `self.database`).

        Extra keyword arguments (e.g. `autocommit=True`) go to `psycopg.connect`.
        """
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            **kwargs,
        )

    def child_environment(self, database: str | None = None) -> dict[str, str]:
        """Return libpq variables for a child process (`pg_dump`, `psql`): no password in argv."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": database or self.database,
        }


@dataclass(frozen=True, kw_only=True)
class MariaDBService(Server):
    """MariaDB; `user` has all privileges with GRANT OPTION."""

    def connect(
        self, database: str | None = None, **kwargs: Any
    ) -> pymysql.connections.Connection[Any]:
        """Open a PyMySQL connection, optionally to `database`; kwargs go to `pymysql.connect`."""
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            **kwargs,
        )


@dataclass(frozen=True, kw_only=True)
class RedisService(Server):
    """Redis; `user` is an ACL user allowed every command, key and channel."""

    db: int = 0

    def connect(self, db: int | None = None, **kwargs: Any) -> redis.Redis:
        """Return a redis-py client for database `db` (default: `self.db`); kwargs go to it."""
        return redis.Redis(
            host=self.host,
            port=self.port,
            username=self.user,
            password=self.password,
            db=self.db if db is None else db,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=CONNECT_TIMEOUT_SECONDS,
            **kwargs,
        )


@dataclass(frozen=True, kw_only=True)
class KafkaService(Server):
    """Apache Kafka 4 in KRaft mode (one node, broker and controller).

    `port` is the PLAINTEXT listener (no login); `sasl_port` is SASL_PLAINTEXT with the PLAIN
    mechanism, where `user` and `password` log in. `version` is the broker's release.
    """

    sasl_port: int
    version: str = ""

    @property
    def bootstrap(self) -> str:
        """The PLAINTEXT listener as `host:port`, for `bootstrap.servers` and `kcat -b`."""
        return f"{self.host}:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The SASL_PLAINTEXT listener as `host:port`."""
        return f"{self.host}:{self.sasl_port}"

    def client_config(self, **extra: Any) -> dict[str, Any]:
        """Return a confluent-kafka configuration for the PLAINTEXT listener, plus `extra`."""
        return {"bootstrap.servers": self.bootstrap, **extra}

    def sasl_config(self, password: str | None = None, **extra: Any) -> dict[str, Any]:
        """Return a configuration for the SASL listener (another `password` to test a refusal)."""
        return {
            "bootstrap.servers": self.sasl_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": self.user,
            "sasl.password": self.password if password is None else password,
            **extra,
        }

    def connect(self, **extra: Any) -> AdminClient:
        """Return an Admin API client on the PLAINTEXT listener; `extra` goes to its config."""
        return AdminClient(self.client_config(**extra))


@dataclass(frozen=True, kw_only=True)
class S3Service(Server):
    """versitygw: `url` is the endpoint, `user`/`password` the root access key and secret.

    `bucket` and `dr_bucket` (the primary and the DR region) have Object Lock, hence
    versioning; `plain_bucket` has neither. Tests share the buckets: each works under a
    prefix of its own (`unique_name`).
    """

    region: str
    bucket: str
    dr_bucket: str
    plain_bucket: str
    server: str

    def connect(self, **config: Any) -> S3Client:
        """Return a boto3 S3 client with the root login; `config` goes to botocore's Config."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.user,
            aws_secret_access_key=self.password,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"total_max_attempts": 1},
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                **config,
            ),
        )

    def connection(self, **overrides: Any) -> S3Connection:
        """Return strongroom's connection settings for this server; `overrides` replace fields.

        The posix backend keeps objects as files, so names cannot overlap.
        """
        settings: dict[str, Any] = {
            "endpoint_url": self.url,
            "region": self.region,
            "access_key_id": self.user,
            "secret_access_key": self.password,
            "addressing_style": "path",
            "overlapping_names": False,
        }
        return S3Connection(**{**settings, **overrides})

    def empty(self, bucket: str, prefix: str) -> None:
        """Delete every version under `prefix` in `bucket` that no COMPLIANCE retention or
        legal hold keeps (GOVERNANCE retention is bypassed: the root account may)."""
        client = self.connect()
        for page in client.get_paginator("list_object_versions").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                try:
                    client.delete_object(
                        Bucket=bucket,
                        Key=entry["Key"],
                        VersionId=entry["VersionId"],
                        BypassGovernanceRetention=True,
                    )
                except ClientError:
                    continue  # kept by Object Lock until its retention ends


@dataclass(frozen=True, kw_only=True)
class KubeService:
    """kube-apiserver on etcd, no controllers; `kubeconfig` has two contexts.

    `context` is in group system:masters; `limited_context` (user `strongroom-limited`) may
    do only what a test grants it with RBAC.
    """

    host: str
    port: int
    url: str
    kubeconfig: str
    context: str
    limited_context: str
    etcd_url: str
    """etcd's client URL (its JSON gateway: /v3/kv/range, /v3/kv/compaction)."""

    def connect(self, context: str | None = None) -> Any:
        """Return an ApiClient of the official `kubernetes` client for `context` (default: admin)."""
        from kubernetes import config

        return config.new_client_from_config(
            config_file=self.kubeconfig,
            context=context or self.context,
            persist_config=False,
        )


@dataclass(frozen=True)
class PrometheusService:
    """Prometheus scraping every target file dropped into ``targets`` (file service
    discovery, every second), and the path of its ``promtool``."""

    url: str
    targets: Path
    promtool: str

    def query(self, expression: str) -> list[dict[str, Any]]:
        """Evaluate ``expression`` now through the HTTP API; return the result vector."""
        address = f"{self.url}/api/v1/query?" + urlencode({"query": expression})
        with urlopen(address, timeout=CONNECT_TIMEOUT_SECONDS) as response:  # noqa: S310 - a loopback URL from the settings
            document = json.loads(response.read())
        if document.get("status") != "success":
            raise AssertionError(f"{expression}: {document}")
        return list(document["data"]["result"])


@dataclass(frozen=True)
class ChromiumService:
    """Debian's Chromium and ChromeDriver; no daemon: ``connect`` starts a headless browser.

    ``flags`` are the command-line flags that work on a closed network as root (the
    background-networking ones keep Chromium from calling Google's hosts); Playwright adds
    ``--headless`` and a fresh profile of its own to every launch.
    """

    executable: str
    driver: str
    flags: tuple[str, ...]

    def connect(self, playwright: Any) -> Any:
        """Launch a headless Chromium through ``playwright`` (a started ``sync_playwright()``)
        with the system executable, never a downloaded browser; return the ``Browser``.

        The caller closes it.
        """
        return playwright.chromium.launch(
            executable_path=self.executable,
            headless=True,
            chromium_sandbox=False,
            args=[flag for flag in self.flags if flag != "--headless"],
        )


def load_settings(name: str) -> dict[str, str]:
    """Return the `STRONGROOM_TEST_<NAME>_*` settings of one service, keys without the prefix.

    Raises ServiceUnavailableError when the service is not configured anywhere.
    """
    prefix = f"STRONGROOM_TEST_{name.upper()}_"
    source: Mapping[str, object]
    if f"{prefix}URL" in os.environ:
        source = os.environ
    else:
        path = services_dir() / "services.json"
        try:
            source = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ServiceUnavailableError(
                f"not configured: no {prefix}URL in the environment and no {path}"
            ) from None
        except (OSError, ValueError) as exc:
            raise ServiceUnavailableError(f"cannot read {path}: {exc}") from exc
    settings = {
        key.removeprefix(prefix): str(value)
        for key, value in source.items()
        if key.startswith(prefix)
    }
    if "URL" not in settings:
        raise ServiceUnavailableError(f"not configured: no {prefix}URL")
    return settings


def _server_fields(settings: Mapping[str, str]) -> dict[str, Any]:
    """Return host, port, user, password and url: explicit keys first, else from the URL."""
    url = settings["URL"]
    try:
        parts = urlsplit(url)
        port = int(settings.get("PORT") or parts.port or 0)
    except ValueError as exc:
        raise ServiceUnavailableError(f"bad port in the settings: {exc}") from exc
    host = settings.get("HOST") or parts.hostname
    if not host or not port:
        raise ServiceUnavailableError(f"the settings name no host and port (url {parts.scheme}:…)")
    return {
        "host": host,
        "port": port,
        "user": settings.get("USER") or unquote(parts.username or ""),
        "password": settings.get("PASSWORD") or unquote(parts.password or ""),
        "url": url,
    }


def _url_path(settings: Mapping[str, str]) -> str:
    return urlsplit(settings["URL"]).path.strip("/")


def _build_postgres(settings: Mapping[str, str]) -> PostgresService:
    return PostgresService(
        **_server_fields(settings),
        database=settings.get("DATABASE") or _url_path(settings) or "postgres",
        bindir=settings.get("BINDIR") or None,
    )


def _probe_postgres(service: PostgresService) -> None:
    try:
        with service.connect() as connection:
            connection.execute("SELECT 1").fetchone()
    except psycopg.Error as exc:
        raise ServiceUnavailableError(
            f"{service.host}:{service.port} does not answer: {exc}"
        ) from exc


def _build_mariadb(settings: Mapping[str, str]) -> MariaDBService:
    return MariaDBService(**_server_fields(settings))


def _probe_mariadb(service: MariaDBService) -> None:
    try:
        connection = service.connect()
        try:
            connection.ping(reconnect=False)
        finally:
            connection.close()
    except pymysql.MySQLError as exc:
        raise ServiceUnavailableError(
            f"{service.host}:{service.port} does not answer: {exc}"
        ) from exc


def _build_redis(settings: Mapping[str, str]) -> RedisService:
    path = _url_path(settings)
    try:
        db = int(settings.get("DB") or path or 0)
    except ValueError as exc:
        raise ServiceUnavailableError(f"bad Redis database number: {exc}") from exc
    return RedisService(**_server_fields(settings), db=db)


def _probe_redis(service: RedisService) -> None:
    # One try: a server that is down should skip at once, not after redis-py's backoff.
    client = service.connect(retry=Retry(NoBackoff(), 0))
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ServiceUnavailableError(
            f"{service.host}:{service.port} does not answer: {exc}"
        ) from exc
    finally:
        client.close()


def _build_kafka(settings: Mapping[str, str]) -> KafkaService:
    fields = _server_fields(settings)
    try:
        sasl_port = int(settings.get("SASL_PORT") or 0)
    except ValueError as exc:
        raise ServiceUnavailableError(f"bad Kafka SASL port: {exc}") from exc
    if not sasl_port:
        raise ServiceUnavailableError("the settings name no Kafka SASL port")
    return KafkaService(**fields, sasl_port=sasl_port, version=settings.get("VERSION", ""))


def _probe_kafka(service: KafkaService) -> None:
    admin = service.connect()
    try:
        brokers = admin.list_topics(timeout=CONNECT_TIMEOUT_SECONDS).brokers
    except KafkaException as exc:
        raise ServiceUnavailableError(
            f"{service.bootstrap} does not answer: {exc.args[0]}"
        ) from exc
    if not brokers:
        raise ServiceUnavailableError(f"{service.bootstrap} names no broker")


def _build_s3(settings: Mapping[str, str]) -> S3Service:
    missing = [key for key in ("BUCKET", "DR_BUCKET", "PLAIN_BUCKET") if not settings.get(key)]
    if missing:
        raise ServiceUnavailableError(f"the settings name no {', '.join(missing)}")
    return S3Service(
        **_server_fields(settings),
        region=settings.get("REGION") or "us-east-1",
        bucket=settings["BUCKET"],
        dr_bucket=settings["DR_BUCKET"],
        plain_bucket=settings["PLAIN_BUCKET"],
        server=settings.get("SERVER") or "an S3 server",
    )


def _probe_s3(service: S3Service) -> None:
    client = service.connect()
    try:
        for bucket in (service.bucket, service.dr_bucket, service.plain_bucket):
            client.head_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError) as exc:
        raise ServiceUnavailableError(f"{service.url} does not answer: {exc}") from exc


def _build_kube(settings: Mapping[str, str]) -> KubeService:
    fields = _server_fields(settings)
    kubeconfig = settings.get("KUBECONFIG") or ""
    if not Path(kubeconfig).is_file():
        raise ServiceUnavailableError(f"no kubeconfig at {kubeconfig!r}")
    return KubeService(
        host=fields["host"],
        port=fields["port"],
        url=fields["url"],
        kubeconfig=kubeconfig,
        context=settings.get("CONTEXT") or "strongroom",
        limited_context=settings.get("LIMITED_CONTEXT") or "strongroom-limited",
        # A services.json written before ETCD_URL existed: the script's fixed etcd port.
        etcd_url=settings.get("ETCD_URL") or f"http://{fields['host']}:52379",
    )


def _probe_kube(service: KubeService) -> None:
    from kubernetes.client import VersionApi

    try:
        with service.connect() as api_client:
            VersionApi(api_client).get_code(_request_timeout=CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:  # any client failure means: not answering
        raise ServiceUnavailableError(f"{service.url} does not answer: {exc}") from exc


def _build_prometheus(settings: Mapping[str, str]) -> PrometheusService:
    if "TARGETS" not in settings:
        raise ServiceUnavailableError("the settings name no targets folder")
    return PrometheusService(
        url=settings["URL"].rstrip("/"),
        targets=Path(settings["TARGETS"]),
        promtool=settings.get("PROMTOOL") or "promtool",
    )


def _probe_prometheus(service: PrometheusService) -> None:
    try:
        with urlopen(f"{service.url}/-/ready", timeout=CONNECT_TIMEOUT_SECONDS):  # noqa: S310 - a loopback URL from the settings
            pass
    except OSError as exc:
        raise ServiceUnavailableError(f"no answer from {service.url}: {exc}") from exc
    if not service.targets.is_dir() or not Path(service.promtool).exists():
        raise ServiceUnavailableError(f"no {service.targets} or no {service.promtool}")


def _build_chromium(settings: Mapping[str, str]) -> ChromiumService:
    executable = settings.get("EXECUTABLE") or urlsplit(settings["URL"]).path
    return ChromiumService(
        executable=executable,
        driver=settings.get("DRIVER") or "/usr/bin/chromedriver",
        flags=tuple((settings.get("FLAGS") or "--headless --no-sandbox").split()),
    )


def _probe_chromium(service: ChromiumService) -> None:
    for program in (service.executable, service.driver):
        if not os.access(program, os.X_OK):
            raise ServiceUnavailableError(f"no executable {program}")
    with tempfile.TemporaryDirectory(prefix="strongroom-chromium-") as profile:
        try:
            rendered = subprocess.run(
                [
                    service.executable,
                    *service.flags,
                    f"--user-data-dir={profile}",
                    "--dump-dom",
                    "data:text/html,<p>strongroom-probe</p>",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServiceUnavailableError(f"{service.executable} rendered nothing: {exc}") from exc
    if "strongroom-probe" not in rendered.stdout:
        raise ServiceUnavailableError(
            f"{service.executable} rendered nothing (exit {rendered.returncode}): "
            f"{rendered.stderr.strip()[-300:]}"
        )


def provide(
    name: str,
    title: str,
    build: Callable[[Mapping[str, str]], ServiceT],
    probe: Callable[[ServiceT], None],
) -> ServiceT:
    """Return the settings of service `name` once its server answers.

    Otherwise skip the calling test, or fail it under CI=true, saying how to start the server.
    """
    try:
        service = build(load_settings(name))
        probe(service)
    except ServiceUnavailableError as exc:
        failure = f"{title} is not available ({exc}); run `dev/services up {name}`"
    else:
        failure = None
    if failure is not None:
        # Outside the except block, so that the report is the message alone, not a chain.
        unavailable(failure)
    return service


@pytest.fixture(scope="session")
def postgres_service() -> PostgresService:
    """The PostgreSQL 15 server of `dev/services up postgres`."""
    return provide("postgres", "PostgreSQL", _build_postgres, _probe_postgres)


@pytest.fixture(scope="session")
def mariadb_service() -> MariaDBService:
    """The MariaDB server of `dev/services up mariadb`."""
    return provide("mariadb", "MariaDB", _build_mariadb, _probe_mariadb)


@pytest.fixture(scope="session")
def redis_service() -> RedisService:
    """The Redis server of `dev/services up redis`."""
    return provide("redis", "Redis", _build_redis, _probe_redis)


@pytest.fixture(scope="session")
def kafka_service() -> KafkaService:
    """The Apache Kafka broker of `dev/services up kafka`."""
    return provide("kafka", "Kafka", _build_kafka, _probe_kafka)


@pytest.fixture(scope="session")
def s3_service() -> S3Service:
    """The S3 server (versitygw) of `dev/services up s3`."""
    return provide("s3", "S3 (versitygw)", _build_s3, _probe_s3)


@pytest.fixture(scope="session")
def kube_service() -> KubeService:
    """The kube-apiserver (with etcd) of `dev/services up kube`."""
    return provide("kube", "Kubernetes API server", _build_kube, _probe_kube)


@pytest.fixture(scope="session")
def prometheus_service() -> PrometheusService:
    """The Prometheus server (and promtool) of `dev/services up prometheus`."""
    return provide("prometheus", "Prometheus", _build_prometheus, _probe_prometheus)


@pytest.fixture(scope="session")
def chromium_service() -> ChromiumService:
    """Chromium and ChromeDriver of `dev/services up chromium` (for the browser tests)."""
    return provide("chromium", "Chromium", _build_chromium, _probe_chromium)
