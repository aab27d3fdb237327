"""`lytics dev`: one command that runs Postgres, the ingest API and Dagster together."""
