"""`python -m rar` runs the `rar` command (useful from a source checkout without installing)."""

from rar.cli import main

main()
