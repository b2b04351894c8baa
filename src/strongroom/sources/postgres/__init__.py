"""The ``postgres`` source: every database of a PostgreSQL server, plus its roles.

``source`` (the class the registry names), ``target`` (its restore-target model), ``dump``
and ``archive`` (what goes into a recovery point), ``restore``, ``facts`` (what a restore is
checked against) and ``server`` (connections and tools). See ``docs/sources/postgres.md``.
"""
