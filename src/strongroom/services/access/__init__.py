"""Who may do what: API tokens, roles and the one permission matrix CLI and API share.

``roles`` holds the matrix (:data:`~strongroom.services.access.roles.ROLE_PERMISSIONS`)
and :func:`~strongroom.services.access.roles.authorize`; ``tokens`` issues, lists,
revokes and checks API tokens. See ``docs/api.md`` for the roles table.
"""
