"""Compression algorithms for PyTorch (v1 API): :mod:`.pruning`."""
