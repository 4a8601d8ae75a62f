"""Compression utilities: config-list validation, FLOPs counter, shape dependencies, mask conflicts, sensitivity analysis."""
