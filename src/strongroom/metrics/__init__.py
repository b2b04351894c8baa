"""Adapters layer: Prometheus metrics for jobs, vaults and runs."""
