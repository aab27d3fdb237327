"""Shared test machinery: real Postgres, real HTTP servers, a real S3 protocol server.

Fixtures used by more than one file live in `fixtures.py` (a plugin of conftest.py);
every wait for a condition goes through `wait.wait_until`.
"""

# The LYTICS_SECRET_KEY of every test process and server.
TEST_SECRET = "test-secret-key-not-for-production"
