"""Deleting a person's data (group `privacy`)."""
