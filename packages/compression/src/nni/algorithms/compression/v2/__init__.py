"""Compression v2 ("Pruning V2"): one-shot pruners, the pruning scheduler and task generators."""
