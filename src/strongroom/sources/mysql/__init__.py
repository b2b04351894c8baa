"""The ``mysql`` source: every database of a MySQL or MariaDB server, plus its accounts.

``source`` (the class the registry names), ``target`` (its restore-target model), ``dump``,
``restore``, ``facts`` (what a restore is checked against) and ``server`` (connections and
tools). See ``docs/sources/mysql.md``.
"""
