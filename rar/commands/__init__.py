"""One module per `rar` sub-command (registered in rar/cli.py)."""
