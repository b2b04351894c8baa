"""Interfaces layer: the REST API and web dashboard; thin handlers over the services layer."""
