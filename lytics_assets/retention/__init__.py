"""Raw-data retention (group `operations`)."""
