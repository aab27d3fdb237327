"""Weekly digest emails."""
