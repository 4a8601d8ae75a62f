"""Remote training service: runs trials on machines reached over SSH."""
