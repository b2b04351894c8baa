"""The audit trail as a service: recording operations, listing, exporting and checking it.

Every operation of the services records itself here (``trail.record`` inside the
transaction that makes the change, ``trail.record_alone`` for a refusal or a failure,
whose change rolled back). See ``docs/audit.md``.
"""
