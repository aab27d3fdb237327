"""`lytics demo`: deterministic traffic sent through the real ingest API, and its ground truth.

- `model`: the events and email webhooks a seed produces (pure: no I/O, no clock).
- `truth`: what those events add up to per project and UTC day, as a JSON file.
- `sender`: the HTTP requests that carry them, sent concurrently with retries.

The command itself (`lytics.cli.demo`) provisions the projects and keys and
ties the three together.
"""
