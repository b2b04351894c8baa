"""Helpers shared between test tiers (unit, integration, e2e).

A helper used by one tier only lives beside its tests; once a second tier imports it, it
moves here, so that no tier imports another tier's modules:

- ``services``: the fixtures that find the real servers of ``dev/services``.
- ``cli``: run the ``strongroom`` console script as a user would.
- ``catalog``: the catalog fixtures base class and the suites every catalog backend runs.
- ``scheduling``: plans and resources seeded for scheduler and daemon tests.
- ``operations_flow``, ``declare_flow``: CLI flows run on SQLite and again on PostgreSQL.
- ``data``: trees of files and SQLite databases to back up and compare.
- ``source_fakes``: in-memory stream sinks and readers for source tests.
- ``vault``: small vault settings and the "no garbage" checks of GC and crash tests.
"""
