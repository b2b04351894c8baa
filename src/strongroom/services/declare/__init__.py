"""Declared configuration: validate, diff and apply config documents to the catalog, list what is declared."""
