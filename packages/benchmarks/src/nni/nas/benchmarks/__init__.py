"""Benchmarks: the HPO tuner benchmark suite and NAS benchmark databases."""
