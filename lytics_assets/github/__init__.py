"""GitHub extraction (group `github`)."""
