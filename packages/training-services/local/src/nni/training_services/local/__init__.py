"""Local training service: runs trials as processes on this machine."""
