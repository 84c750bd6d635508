"""The human-readable release report."""
