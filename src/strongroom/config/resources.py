"""Resources: the things strongroom protects, one model per type, chosen by ``type``."""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from strongroom.config.types import AbsolutePath, ConfigModel, SecretRef, TagMap

ResourceType = Literal["postgres", "mysql", "redis", "kafka", "kubernetes", "files", "sqlite"]
RESOURCE_TYPES: Final[tuple[str, ...]] = get_args(ResourceType)

_HOST_PORT: Final = re.compile(r"[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}")

Port = Annotated[int, Field(ge=1, le=65535)]
NonEmptyString = Annotated[str, Field(min_length=1)]


class _Resource(ConfigModel):
    description: str | None = Field(default=None, description="Free text for people.")
    tags: TagMap = Field(
        default_factory=dict,
        description="Tags that plan selections match (e.g. BackupEnabled: 'true').",
    )


class PostgresResource(_Resource):
    """A PostgreSQL server; each database is dumped with pg_dump, globals with pg_dumpall."""

    type: Literal["postgres"] = Field(description="Selects this resource type.")
    host: str = Field(default="localhost", description="Host name, address or socket directory.")
    port: Port = Field(default=5432, description="TCP port.")
    user: str = Field(default="postgres", description="Role to connect as.")
    password: SecretRef | None = Field(
        default=None, description="Reference to the password; unset uses peer or .pgpass auth."
    )
    databases: list[NonEmptyString] = Field(
        default_factory=list, description="Databases to back up; empty means every database."
    )
    exclude_databases: list[NonEmptyString] = Field(
        default_factory=list, description="Databases to leave out when databases is empty."
    )
    jobs: int = Field(
        default=1, ge=1, le=64, description="Parallel dump jobs per database (pg_dump --jobs)."
    )
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = (
        Field(default=None, description="libpq sslmode; unset keeps the libpq default.")
    )


class MysqlResource(_Resource):
    """A MySQL or MariaDB server, dumped consistently with mariadb-dump / mysqldump."""

    type: Literal["mysql"] = Field(description="Selects this resource type.")
    host: str = Field(default="localhost", description="Host name or address.")
    port: Port = Field(default=3306, description="TCP port.")
    socket: AbsolutePath | None = Field(
        default=None, description="Unix socket path; when set, host and port are not used."
    )
    user: str = Field(default="root", description="User to connect as.")
    password: SecretRef | None = Field(
        default=None, description="Reference to the password; unset for socket authentication."
    )
    databases: list[NonEmptyString] = Field(
        default_factory=list, description="Databases to back up; empty means every database."
    )
    exclude_databases: list[NonEmptyString] = Field(
        default_factory=list, description="Databases to leave out when databases is empty."
    )


RedisMode = Literal["snapshot", "logical", "cluster"]
BUILT_REDIS_MODES: Final[frozenset[str]] = frozenset({"snapshot", "logical", "cluster"})
"""The Redis backup modes strongroom can run today; a config asking for another is refused."""


class RedisResource(_Resource):
    """A Redis server (or a protocol-compatible fork), as an RDB snapshot or key by key."""

    type: Literal["redis"] = Field(description="Selects this resource type.")
    url: str = Field(
        default="redis://localhost:6379/0",
        description="redis://host:port, rediss:// for TLS or unix:///path; no password in it. "
        "A database number in the URL is ignored: databases selects them.",
    )
    username: str | None = Field(default=None, description="ACL user name; unset for default.")
    password: SecretRef | None = Field(default=None, description="Reference to the password.")
    mode: RedisMode = Field(
        default="snapshot",
        description="snapshot: an RDB through the replication protocol (needs PSYNC, as "
        "redis-cli --rdb); logical: SCAN and DUMP of every key (managed services where SYNC "
        "is disabled); cluster: every primary of a Redis Cluster, key by key.",
    )
    fallback_to_logical: bool = Field(
        default=False,
        description="In snapshot mode, back up key by key when the server refuses PSYNC.",
    )
    databases: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=list,
        description="Logical mode: database numbers to back up; empty means every one holding "
        "keys.",
    )
    key_pattern: NonEmptyString | None = Field(
        default=None,
        description="Logical and cluster mode: back up only keys matching this glob (SCAN "
        "MATCH); unset backs up every key.",
    )
    scan_count: int = Field(
        default=1000,
        ge=10,
        le=100_000,
        description="Logical mode: keys asked for per SCAN call and pipelined per round trip; "
        "bounds the memory a backup holds.",
    )

    @field_validator("url")
    @classmethod
    def _plain_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            has_password = parts.password is not None
        except ValueError:
            raise ValueError("not a valid URL") from None
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("a Redis URL starts with redis://, rediss:// or unix://")
        if has_password:
            raise ValueError("no password in the URL; put a reference in password instead")
        return value

    @field_validator("mode")
    @classmethod
    def _built_mode(cls, value: str) -> str:
        if value not in BUILT_REDIS_MODES:
            raise ValueError(
                f"redis mode {value!r} is not built yet (issue #14); "
                f"use one of: {', '.join(sorted(BUILT_REDIS_MODES))}"
            )
        return value

    @model_validator(mode="after")
    def _options_of_mode(self) -> RedisResource:
        if self.mode == "snapshot" and (self.key_pattern is not None or self.databases):
            raise ValueError(
                "key_pattern and databases apply to logical backups; a snapshot holds every "
                "key (set mode: logical to back up a part)"
            )
        if self.mode == "cluster" and self.databases:
            raise ValueError("a cluster has database 0 only; leave databases empty")
        if self.mode != "snapshot" and self.fallback_to_logical:
            raise ValueError("fallback_to_logical applies to mode: snapshot only")
        return self


class KafkaResource(_Resource):
    """An Apache Kafka cluster: topic data (and consumer group offsets) are archived."""

    type: Literal["kafka"] = Field(description="Selects this resource type.")
    bootstrap_servers: list[Annotated[str, Field(pattern=_HOST_PORT.pattern)]] = Field(
        min_length=1, description="Brokers to bootstrap from, as host:port."
    )
    topics: list[NonEmptyString] = Field(
        min_length=1,
        description="Topics to archive: names or shell-style patterns such as 'orders.*'.",
    )
    consumer_group_offsets: bool = Field(
        default=True, description="Also save the committed offsets of consumer groups."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="Kafka security.protocol."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism when the protocol uses SASL."
    )
    username: str | None = Field(default=None, description="SASL user name.")
    password: SecretRef | None = Field(default=None, description="Reference to the SASL password.")


class KubernetesResource(_Resource):
    """The API objects of a Kubernetes cluster (not its volumes), through its API server."""

    type: Literal["kubernetes"] = Field(description="Selects this resource type.")
    kubeconfig: AbsolutePath | None = Field(
        default=None, description="kubeconfig file; unset uses in-cluster config or ~/.kube/config."
    )
    context: str | None = Field(default=None, description="kubeconfig context; unset for current.")
    namespaces: list[NonEmptyString] = Field(
        default_factory=list,
        description="Namespaces to back up, as globs (team-*); empty means all of them.",
    )
    exclude_namespaces: list[NonEmptyString] = Field(
        default_factory=list, description="Namespace globs left out; they win over namespaces."
    )
    include_resources: list[NonEmptyString] = Field(
        default_factory=list,
        description="Resource types to back up, as plural (deployments), RESOURCE.GROUP "
        "(deployments.apps) or kind (Deployment); empty means every type.",
    )
    exclude_resources: list[NonEmptyString] = Field(
        default_factory=list,
        description="Resource types left out, named as in include_resources; they win.",
    )
    label_selector: str | None = Field(
        default=None,
        min_length=1,
        description="Only objects matching this label selector (app=web,tier!=cache); the "
        "selected namespaces themselves are always kept.",
    )
    cluster_scoped: bool = Field(
        default=True,
        description="Also back up cluster-scoped objects (CRDs, cluster roles, storage classes …).",
    )
    include_status: bool = Field(
        default=False, description="Keep each object's status (stripped by default)."
    )


class FilesResource(_Resource):
    """Files and directories on the machine the worker runs on."""

    type: Literal["files"] = Field(description="Selects this resource type.")
    paths: list[AbsolutePath] = Field(min_length=1, description="Absolute paths to back up.")
    include: list[NonEmptyString] = Field(
        default_factory=list,
        description="Glob patterns (relative to each path, ** for any depth) to keep; "
        "empty keeps everything.",
    )
    exclude: list[NonEmptyString] = Field(
        default_factory=list, description="Glob patterns to leave out; they win over include."
    )
    one_file_system: bool = Field(
        default=False, description="Do not cross into other mounted file systems."
    )
    follow_symlinks: bool = Field(
        default=False, description="Back up what symlinks point to instead of the links."
    )


class SqliteResource(_Resource):
    """A SQLite database file, copied with the online backup API."""

    type: Literal["sqlite"] = Field(description="Selects this resource type.")
    path: AbsolutePath = Field(description="Absolute path of the database file.")


ResourceConfig = Annotated[
    PostgresResource
    | MysqlResource
    | RedisResource
    | KafkaResource
    | KubernetesResource
    | FilesResource
    | SqliteResource,
    Field(discriminator="type"),
]
"""One resource; ``type`` selects which settings apply."""
