"""How long recovery points are kept: retention policy, vault lock, legal hold, deletion, lifecycle, cold tier."""
