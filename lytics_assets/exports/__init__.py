"""Partitioned exports (group `exports`)."""
