"""Interfaces layer: the composition root of ``strongroom serve``.

:func:`~strongroom.daemon.compose.open_daemon` wires the scheduler, the executor with a
handler per job kind, and the lifecycle runner (later the API server, the metrics
endpoint and the event rules) with ordinary imports, in one place.
"""
