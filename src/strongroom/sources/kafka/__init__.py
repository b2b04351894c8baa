"""The ``kafka`` source: topics of an Apache Kafka cluster, record by record, per partition.

:mod:`~strongroom.sources.kafka.client` reaches the cluster and translates its errors;
:mod:`~strongroom.sources.kafka.records` is the record format of the streams;
:mod:`~strongroom.sources.kafka.backup` reads topics, their metadata and the consumer
groups' offsets; :mod:`~strongroom.sources.kafka.restore` writes them back;
:mod:`~strongroom.sources.kafka.source` is the ``Source``. See ``docs/sources/kafka.md``.
"""
