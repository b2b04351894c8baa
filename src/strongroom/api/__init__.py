"""The REST API (FastAPI), served by ``strongroom serve --api-address``.

``app.create_app`` builds the application; ``auth`` resolves a request's API token to a
principal (the console reuses it); ``routes`` holds one module per group of endpoints,
each calling the same services and returning the same JSON as ``--output json``.
See ``docs/api.md``.
"""
