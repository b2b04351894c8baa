"""Shared pytest wiring for every test tier (unit, integration, e2e)."""

# The one fixture module through which tests find the real servers of dev/services.
pytest_plugins = ["tests.support.services"]
