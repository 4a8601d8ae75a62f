"""Runtime plumbing shared by trials, dispatchers and the manager."""
