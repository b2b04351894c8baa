"""The codec a Kafka restore produces with: the topic's own, else none."""

from __future__ import annotations

import pytest

from strongroom.sources.kafka.restore import producer_compression


@pytest.mark.parametrize(
    ("configs", "codec"),
    [
        ({}, "none"),
        ({"compression.type": "producer"}, "none"),
        ({"compression.type": "uncompressed"}, "none"),
        ({"compression.type": "zstd"}, "zstd"),
        ({"compression.type": "lz4", "retention.ms": "-1"}, "lz4"),
    ],
)
def test_a_restore_produces_with_the_topics_codec_else_none(
    configs: dict[str, str], codec: str
) -> None:
    assert producer_compression(configs) == codec
