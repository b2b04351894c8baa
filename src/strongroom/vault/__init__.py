"""Adapters layer: the recovery-point format (chunking, packs, index, manifests, keys in use) over a blob store."""
