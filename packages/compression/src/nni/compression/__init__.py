"""Model compression: pruners, quantizers, speedup and analysis utilities."""
