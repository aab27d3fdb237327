"""Metric logic shared by the pipeline and the read API (no Dagster, no web framework)."""
