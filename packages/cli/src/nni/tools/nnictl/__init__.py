"""The `nnictl` command-line tool."""
