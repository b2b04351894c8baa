"""Interfaces layer: the `strongroom` command line (Typer + Rich); parses, calls a service, renders."""
