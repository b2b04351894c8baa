"""Infrastructure layer: the SQLAlchemy catalog of resources, plans, jobs and recovery points, with Alembic migrations."""
