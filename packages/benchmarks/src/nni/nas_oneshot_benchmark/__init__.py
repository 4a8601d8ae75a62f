"""One-shot NAS benchmark (issue 16 target): a DARTS search epoch vs a plain epoch of the largest candidate.

``python -m nni.nas_oneshot_benchmark [--repeats N] [--batch-size N] [--unrolled]``; see ``bench.py``.
"""
