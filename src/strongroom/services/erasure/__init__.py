"""Erasure requests (GDPR Art. 17) that survive restores: recorded, listed, cancelled
(``requests.py``) and re-applied by every restore of the resource (``restores.py``).

Backups are immutable: a subject erased from production is still in the recovery points
taken before. A request records how to erase the subject from a restored copy; every
restore and restore test of the resource re-applies the open requests before it is
reported done, and keeps what they affected as evidence. See ``docs/erasure.md``.
"""
