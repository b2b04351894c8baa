"""Where and how a Kafka restore writes: the ``target`` of ``KafkaSource.restore``."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from strongroom.config.resources import NonEmptyString
from strongroom.config.types import ConfigModel


class KafkaRestoreTarget(ConfigModel):
    """How a Kafka restore writes into the backed-up cluster.

    Each topic's records go to the same partition of the target topic, in order, with
    their original timestamps and a ``strongroom.source-offset`` header.
    """

    topics: list[NonEmptyString] = Field(
        default_factory=list, description="Backed-up topics to restore; empty: all of them."
    )
    topic_map: dict[NonEmptyString, NonEmptyString] = Field(
        default_factory=dict,
        description="Restore some topics under other names: {backed-up: target}.",
    )
    create_topics: bool = Field(
        default=True,
        description="Create a missing target topic with the backed-up partition count and "
        "configs; without it a missing topic is an error.",
    )
    groups: bool = Field(
        default=True,
        description="Set the consumer groups' offsets (translated to the target offsets), "
        "only for groups with no active member.",
    )
    chain: bool = Field(
        default=True,
        description="Restore an incremental point on top of its chain: the earlier points "
        "it continues are restored first, oldest first. False: this point's records only "
        "(refused unless the target already holds the earlier records).",
    )
    until: AwareDatetime | None = Field(
        default=None,
        description="Point in time: restore only records with a timestamp at or before "
        "this time (ISO 8601 with a time zone).",
    )
    retention_ms: int | None = Field(
        default=None,
        ge=-1,
        description="Set retention.ms on created topics (-1: keep forever), so restored "
        "records with old timestamps are not deleted at once.",
    )

    def target_topic(self, topic: str) -> str:
        """The name a backed-up topic is restored under."""
        return self.topic_map.get(topic, topic)
