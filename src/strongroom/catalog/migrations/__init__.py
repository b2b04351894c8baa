"""Alembic migrations of the catalog (run by :func:`strongroom.catalog.migrate.upgrade`)."""
