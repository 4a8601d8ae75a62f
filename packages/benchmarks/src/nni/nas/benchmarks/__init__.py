"""NAS benchmark databases: NAS-Bench-101 (:mod:`.nasbench101`), NAS-Bench-201 (:mod:`.nasbench201`),
NDS (:mod:`.nds`) and NAS-Bench-NLP (:mod:`.nlp`), stored as SQLite files and queried through peewee.

The files live in ``$NASBENCHMARK_DIR`` (default ``~/.cache/nni/nasbenchmark``); each benchmark's
``db_gen`` module makes its file from the official raw release, e.g.
``python -m nni.nas.benchmarks.nasbench201.db_gen NAS-Bench-201-v1_1-096897.pth``.
"""
from .utils import DEFAULT_DATABASE_DIR, BenchmarkDatabaseNotFoundError, database_dir

__all__ = ["DEFAULT_DATABASE_DIR", "BenchmarkDatabaseNotFoundError", "database_dir"]
