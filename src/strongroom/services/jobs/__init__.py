"""Jobs users start and watch: backup, restore, verify; the handlers that run them; job history."""
