"""The ``files`` source: folders and files on the machine the worker runs on.

``source`` (the class the registry names), ``target`` (its restore-target model), ``walk``,
``content`` and ``index`` (what goes into a recovery point), ``cache`` (the unchanged-file
cache), ``restore``, ``handles`` and ``check`` (restores and their checks). See
``docs/sources/files.md``.
"""
