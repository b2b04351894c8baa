"""Database sources against the real servers of dev/services."""
