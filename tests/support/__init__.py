"""Shared test machinery: real Postgres, real HTTP servers, a real S3 protocol server."""

# The LYTICS_SECRET_KEY of every test process and server.
TEST_SECRET = "test-secret-key-not-for-production"
