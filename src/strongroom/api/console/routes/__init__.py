"""The console's pages, one module per section (login, overview, resources and points,
jobs, plans, vaults, reports)."""
