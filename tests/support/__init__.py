"""Shared test machinery: real Postgres, real HTTP servers, a real S3 protocol server."""
