"""Vaults as the services see them: registration, opening with their keys, rebuilding the catalog from them."""
