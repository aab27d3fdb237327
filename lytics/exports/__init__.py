"""Partitioned exports of raw data to S3 or a local folder.

Modules, one reason to change each: `windows` (partition windows and keys),
`datasets` (what is exported and its fixed schema), `source` (streaming rows
out of Postgres), `formats` (Parquet / JSON Lines / CSV files rolled by size),
`stores` (S3 and local folder), `publisher` (stage, promote, delete stale keys,
manifest last), `destinations` (configuration), `state` (per-partition outcome),
`runner` (one partition window across every destination), `backfills` (what a
backfill covers), `run_requests` (what a request to export a range gives each
destination, and what it skips), `moments` (the date and time forms requests take).
"""
