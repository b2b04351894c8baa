"""Infrastructure layer: blob stores (local, memory, S3) and the wrappers composed over them (retry, metrics)."""
