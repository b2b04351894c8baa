"""Interfaces layer: the long-running `strongroom serve` entry (scheduler, executor, lifecycle runner)."""
