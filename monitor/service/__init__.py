"""`monitor run` as a long-running service: scheduling, leases, health, metrics."""
