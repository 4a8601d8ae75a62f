"""Training platforms against the local platform on the same workload, in the same run.

``python -m nni.platform_benchmark --platform slurm|ray [options]`` prints one JSON line per
result. Each platform's benchmark is its own module (:mod:`.slurm`, :mod:`.ray`) with a
``main(argv)``; :mod:`.common` runs one timed experiment through the real manager.
"""
