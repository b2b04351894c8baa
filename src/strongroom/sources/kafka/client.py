"""How the ``kafka`` source reaches a cluster: client settings and typed errors.

:class:`Cluster` holds the resolved settings of one operation (the SASL password is
resolved from its reference when the operation starts). librdkafka reports a refused
login or an unreachable broker only through its error callback and keeps retrying, so
every client built here records those errors, and :meth:`Cluster.translate` turns a
failed or timed-out call into the error tree with the cause it saw: a refused login is
``AccessDeniedError``, an unreachable broker ``NetworkError`` (retryable), an unknown
topic ``NotFoundError``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from strongroom.config.resources import KafkaResource
from strongroom.config.secrets import resolve_secret
from strongroom.errors import (
    AccessDeniedError,
    ConflictError,
    NetworkError,
    NotFoundError,
    StrongroomError,
    TimeoutError_,
)

ResultT = TypeVar("ResultT")


_ACCESS: Final = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    }
)
_UNREACHABLE: Final = frozenset(
    {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE}
)
_LEADER_MOVING: Final = frozenset(
    {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE}
)
"""A new topic's partition whose broker has not taken up leadership yet: retried, although
librdkafka does not flag these as retriable when they answer a watermark query."""
_NOT_FOUND: Final = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC})


@dataclass
class Cluster:
    """One cluster's client settings (password resolved) and the errors its clients saw."""

    bootstrap_servers: str
    security: dict[str, str] = field(default_factory=dict, repr=False)
    timeout: float = 30.0
    seen: list[KafkaError] = field(default_factory=list, repr=False)
    pollable: list[AdminClient | Producer] = field(default_factory=list, repr=False)
    _admin: AdminClient | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: KafkaResource, *, timeout: float = 30.0) -> Cluster:
        """Build from a resource (``SecretError`` when the password reference does not resolve).

        ``timeout``: seconds a request may take before it counts as unanswered.
        """
        security: dict[str, str] = {"security.protocol": settings.security_protocol}
        if settings.sasl_mechanism is not None:
            security["sasl.mechanisms"] = settings.sasl_mechanism
        if settings.username is not None:
            security["sasl.username"] = settings.username
        if settings.password is not None:
            security["sasl.password"] = resolve_secret(settings.password)
        return cls(",".join(settings.bootstrap_servers), security, timeout)

    def _record(self, error: KafkaError) -> None:
        self.seen.append(error)
        del self.seen[:-20]

    def config(self, **extra: Any) -> dict[str, Any]:
        """A librdkafka configuration for this cluster plus ``extra``."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "error_cb": self._record,
            "logger": logging.getLogger("strongroom.sources.kafka.librdkafka"),
            "socket.connection.setup.timeout.ms": 10000,
            **self.security,
            **extra,
        }

    def admin(self) -> AdminClient:
        """The Admin API client of this cluster, made on first use and then shared.

        One client for every admin call of an operation: each new one would connect and
        fetch the cluster's metadata again, a fixed cost an incremental backup feels.
        """
        if self._admin is None:
            self._admin = AdminClient(self.config())
            self.pollable.append(self._admin)
            del self.pollable[:-20]
        return self._admin

    def producer(self, **extra: Any) -> Producer:
        """A producer; ``extra`` goes to its configuration."""
        producer = Producer(self.config(**extra))
        self.pollable.append(producer)
        del self.pollable[:-20]
        return producer

    @contextmanager
    def consumer(self, **extra: Any) -> Iterator[Consumer]:
        """A consumer that never commits (it is only assigned partitions), closed on exit."""
        consumer = Consumer(
            self.config(
                **{
                    "group.id": "strongroom-reader",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "enable.partition.eof": True,
                    "isolation.level": "read_committed",
                    "auto.offset.reset": "earliest",
                    # Bounds what the client prefetches (its default is 64 MiB a
                    # partition), so memory does not grow with the records waiting;
                    # one partition is read at a time, so this is the whole prefetch.
                    "queued.max.messages.kbytes": 8192,
                    # A fetch answers up to 8 MiB of one partition (the default, 1 MiB,
                    # costs a round trip per MiB when one partition is read at a time),
                    # and a full queue delays the next fetch by 5 ms, not the default 1 s.
                    "fetch.max.bytes": 16 * 1024 * 1024,
                    "max.partition.fetch.bytes": 8 * 1024 * 1024,
                    "fetch.queue.backoff.ms": 5,
                    **extra,
                }
            )
        )
        try:
            yield consumer
        finally:
            consumer.close()

    def wait(self, future: Future[ResultT], doing: str) -> ResultT:
        """Return the result of an Admin API future; translate its failure (see :meth:`translate`)."""
        try:
            return future.result(timeout=self.timeout)
        except KafkaException as exc:
            raise self.translate(exc, doing) from exc
        except TimeoutError as exc:
            raise self.translate(None, doing) from exc

    def call(self, function: Callable[[], ResultT], doing: str) -> ResultT:
        """Run a client call; translate a ``KafkaException`` it raises.

        An error the client calls retriable (a partition whose leader is still being
        elected, right after a topic was created) is retried for up to ``timeout`` seconds.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return function()
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                retriable = isinstance(error, KafkaError) and (
                    error.retriable() or error.code() in _LEADER_MOVING
                )
                if not retriable or time.monotonic() >= deadline:
                    raise self.translate(exc, doing) from exc
            time.sleep(0.5)

    def translate(self, exc: KafkaException | KafkaError | None, doing: str) -> StrongroomError:
        """Return the typed error for a failed call (``None``: it was not answered in time)."""
        for client in self.pollable:
            client.poll(0)  # serves the error callbacks: a refused login is only reported there
        error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
        errors = [error] if isinstance(error, KafkaError) else []
        errors += reversed(self.seen)
        for candidate in errors:
            code = candidate.code()
            if code in _ACCESS:
                return AccessDeniedError(
                    f"{doing}: the cluster refused access: {candidate.str()}",
                    hint="Check username, password, sasl_mechanism and the ACLs of the user.",
                )
            if code in _NOT_FOUND:
                return NotFoundError(f"{doing}: {candidate.str()}")
            if code == KafkaError.GROUP_SUBSCRIBED_TO_TOPIC or code == KafkaError.UNKNOWN_MEMBER_ID:
                return ConflictError(f"{doing}: {candidate.str()}")
        for candidate in errors:
            if candidate.code() in _UNREACHABLE:
                return NetworkError(
                    f"{doing}: cannot reach {self.bootstrap_servers}: {candidate.str()}",
                    hint="Check that the brokers run and bootstrap_servers names them.",
                )
        if errors:
            first = errors[0]
            return StrongroomError(f"{doing}: {first.str()}", retryable=first.retriable())
        return TimeoutError_(
            f"{doing}: {self.bootstrap_servers} did not answer within {self.timeout:.0f} s",
            hint="Check that the brokers run and bootstrap_servers names them.",
        )


def check_message(cluster: Cluster, error: KafkaError | None, doing: str) -> None:
    """Raise the typed error of a consumed message's error (end-of-partition is not one)."""
    if error is None or error.code() == KafkaError._PARTITION_EOF:
        return
    raise cluster.translate(error, doing)


def offset_of(message: Message) -> int:
    """A consumed message's offset (-1 when the client gives none)."""
    offset = message.offset()
    return -1 if offset is None else offset
