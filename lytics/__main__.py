"""`python -m lytics` is the `lytics` command."""

from lytics.cli import main

main()
