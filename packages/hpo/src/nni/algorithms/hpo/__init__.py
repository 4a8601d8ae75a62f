"""Hyper-parameter tuning algorithms: tuners, assessors and advisors under `nni.algorithms.hpo`."""
