"""Adapters layer: compliance reports computed from the catalog and the vaults."""
