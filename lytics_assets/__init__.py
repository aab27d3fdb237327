"""Dagster definitions for Lytics: thin wrappers around the `lytics` core library."""
