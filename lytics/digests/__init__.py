"""Weekly digest emails: content, rendering, Resend sending and the exactly-once outbox.

No Dagster and no web framework here: `lytics_assets.digests` schedules the runs
and `lytics_ingest_api.routes.digest` serves previews, test sends and launches.
"""
