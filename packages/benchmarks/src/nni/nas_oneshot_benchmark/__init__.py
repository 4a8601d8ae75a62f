"""One-shot NAS benchmark (issue 16 targets): a DARTS search epoch vs a plain epoch of the largest candidate, and
(``--quality``) the retrained DARTS architecture vs the median of 5 random ones.

``python -m nni.nas_oneshot_benchmark [--repeats N] [--batch-size N] [--unrolled] | --quality [--seeds 0,1,2]``;
see ``bench.py``.
"""
