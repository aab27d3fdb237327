"""The warehouse: connection URLs, engines, table definitions and migrations."""
