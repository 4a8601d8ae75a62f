"""Shared plumbing of the NAS benchmark databases: where they live, how they are opened, the JSON
field that stores architecture dicts canonically, and the query helpers common to every benchmark."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from peewee import Field, ForeignKeyField, Model, SqliteDatabase, TextField

__all__ = [
    "DEFAULT_DATABASE_DIR", "BenchmarkDatabaseNotFoundError", "database_dir", "canonical_json",
    "JSONField", "BenchmarkDatabase", "nan_to_none", "table_base", "config_link", "trial_link",
]

#: The folder the databases live in when ``NASBENCHMARK_DIR`` is not set.
DEFAULT_DATABASE_DIR = "~/.cache/nni/nasbenchmark"

REDUCTIONS = (None, "none", "mean")


class BenchmarkDatabaseNotFoundError(FileNotFoundError):
    """A benchmark database file is missing; the one-line message says how to make it."""


def database_dir() -> Path:
    """The folder holding the databases: ``$NASBENCHMARK_DIR``, else ``~/.cache/nni/nasbenchmark``."""
    return Path(os.environ.get("NASBENCHMARK_DIR") or DEFAULT_DATABASE_DIR).expanduser()


def canonical_json(value: Any) -> str:
    """JSON text with sorted keys and no spaces, so equal dicts give equal text whatever their key order."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class JSONField(TextField):
    """A dict or list stored as canonical JSON text (matching is then a plain string comparison)."""

    def db_value(self, value):
        return None if value is None else canonical_json(value)

    def python_value(self, value):
        return None if value is None else json.loads(value)


def nan_to_none(value: float | None) -> float | None:
    """NaN (a diverged loss in the raw releases) is stored as None."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


class BenchmarkDatabase:
    """One SQLite database file of one benchmark, opened lazily from :func:`database_dir`.

    The path is resolved again at every query, so changing ``NASBENCHMARK_DIR`` (even after import)
    switches to the database in the new folder.
    """

    def __init__(self, filename: str, title: str, make_command: str):
        self.filename = filename
        self.title = title
        self.make_command = make_command
        self.db = SqliteDatabase(None)

    def path(self) -> Path:
        return database_dir() / self.filename

    def connect(self) -> SqliteDatabase:
        """Point the models at the current database file, which must exist."""
        path = str(self.path())
        if not os.path.isfile(path):
            # Connecting would silently create an empty database, so check first.
            raise BenchmarkDatabaseNotFoundError(
                f"{self.title} database not found: {path}; create it with "
                f"`{self.make_command}` (or set NASBENCHMARK_DIR to the folder that holds it)")
        if self.db.database != path:
            if not self.db.is_closed():
                self.db.close()
            self.db.init(path, pragmas={"query_only": 1})
        return self.db

    def create(self, path: str | os.PathLike, models: Sequence[type[Model]]) -> SqliteDatabase:
        """Open ``path`` for writing (a database generator), creating ``models``' tables."""
        if not self.db.is_closed():
            self.db.close()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db.init(str(path), pragmas={"journal_mode": "wal", "synchronous": "off"})
        self.db.connect()
        self.db.create_tables(models)
        return self.db

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()
        self.db.database = None


def table_base(db: BenchmarkDatabase) -> type[Model]:
    """The base class of one benchmark's tables (config, trial stats, intermediate stats): bound to
    ``db``, each table named after its class in lower case (``Nb201TrialConfig`` -> ``nb201trialconfig``)."""

    class Table(Model):
        class Meta:
            database = db.db
            table_function = _lower_class_name

    return Table


def _lower_class_name(model: type[Model]) -> str:
    return model.__name__.lower()


def config_link(config_model: type[Model]) -> ForeignKeyField:
    """The ``config`` column of a trial-stats table (:func:`run_query` joins on it)."""
    return ForeignKeyField(config_model, backref="trial_stats", index=True)


def trial_link(stats_model: type[Model]) -> ForeignKeyField:
    """The ``trial`` column of an intermediate-stats table (:func:`run_query` joins on it)."""
    return ForeignKeyField(stats_model, backref="intermediates", index=True)


def check_reduction(reduction: str | None) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: {reduction!r} is not supported; allowed: None, 'none', 'mean'")


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = list(allowed)
    if value is not None and value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(map(repr, allowed))} (or None for any)")


def _mean(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def run_query(db: BenchmarkDatabase, stats_model: type[Model], config_model: type[Model],
              inter_model: type[Model], conditions: list[tuple[Field, Any]], reduction: str | None,
              include_intermediates: bool) -> Iterator[dict]:
    """A generator of the rows of ``stats_model`` joined with their config, as the dicts the query functions return.

    ``conditions`` are ``(config field, value)`` pairs that must all be equal. Each dict holds the
    stats fields, ``config`` (the config row as a dict) and, when asked, ``intermediates`` (rows
    ordered by epoch, without their ``trial`` key). ``reduction='mean'`` averages every numeric
    stats field over the trials of one config (None values are skipped; ``id`` and ``seed`` are
    dropped) and the intermediates epoch by epoch.
    """
    check_reduction(reduction)
    database = db.connect()  # eagerly: a missing file fails at the call, not at the first next()
    return _iterate(database, _Sql.of(stats_model, config_model, inter_model), conditions, reduction,
                    include_intermediates)


class _Sql:
    """The SQL text of one benchmark's queries, built once: composing it with peewee's expression
    builder on every call took most of a single-architecture query's time."""
    _cache: dict = {}

    @classmethod
    def of(cls, stats_model, config_model, inter_model) -> "_Sql":
        key = (stats_model, config_model, inter_model)
        if key not in cls._cache:
            cls._cache[key] = cls(stats_model, config_model, inter_model)
        return cls._cache[key]

    def __init__(self, stats_model, config_model, inter_model):
        self.stats_fields = [f for f in stats_model._meta.sorted_fields if f.name != "config"]
        self.config_fields = list(config_model._meta.sorted_fields)
        self.inter_fields = [f for f in inter_model._meta.sorted_fields if f.name != "trial"]
        st, ct, it = (m._meta.table_name for m in (stats_model, config_model, inter_model))
        cols = ", ".join([f's."{f.column_name}"' for f in self.stats_fields] + [f'c."{f.column_name}"' for f in self.config_fields])
        join = f'FROM "{st}" AS s JOIN "{ct}" AS c ON s."{stats_model.config.column_name}" = c."id"'
        self.trials = f"SELECT {cols} {join}"
        inter_cols = ", ".join(f'i."{f.column_name}"' for f in self.inter_fields)
        self.inters = (f'SELECT i."{inter_model.trial.column_name}", {inter_cols} FROM "{it}" AS i '
                       f'JOIN "{st}" AS s ON i."{inter_model.trial.column_name}" = s."id" '
                       f'JOIN "{ct}" AS c ON s."{stats_model.config.column_name}" = c."id"')
        # (trial, id) is the order of the trial index, so SQLite needs no sort; the rows are then
        # put in epoch order per trial in Python (already sorted for generated databases).
        self.inter_order = f' ORDER BY i."{inter_model.trial.column_name}", i."id"'

    @staticmethod
    def where(conditions: list[tuple[Field, Any]]) -> tuple[str, list]:
        if not conditions:
            return "", []
        text = " WHERE " + " AND ".join(f'c."{field.column_name}" = ?' for field, _ in conditions)
        return text, [field.db_value(value) for field, value in conditions]


def _decoders(fields) -> list:
    return [f.python_value if isinstance(f, JSONField) else None for f in fields]


def _rows_to_dicts(names, decoders, rows):
    for row in rows:
        yield {name: (dec(v) if dec is not None else v) for name, dec, v in zip(names, decoders, row)}


def _epoch(record: dict):
    return record["current_epoch"]


def _iterate(database, sql: _Sql, conditions, reduction, include_intermediates):
    where, params = sql.where(conditions)
    n = len(sql.stats_fields)
    stats_names = [f.name for f in sql.stats_fields]
    config_names = [f.name for f in sql.config_fields]
    config_dec = _decoders(sql.config_fields)
    # The connection stays open between queries (peewee keeps one per thread): opening a SQLite
    # file costs about as much as a whole single-architecture query.
    database.connect(reuse_if_open=True)
    trials = []
    for row in database.execute_sql(sql.trials + where + ' ORDER BY s."id"', params):
        trial = dict(zip(stats_names, row[:n]))
        trial["config"] = next(_rows_to_dicts(config_names, config_dec, [row[n:]]))
        trials.append(trial)
    if include_intermediates:
        names = [f.name for f in sql.inter_fields]
        inters: dict[int, list[dict]] = {}
        for row in database.execute_sql(sql.inters + where + sql.inter_order, params):
            inters.setdefault(row[0], []).append(dict(zip(names, row[1:])))
        for trial in trials:
            records = inters.get(trial["id"], [])
            records.sort(key=_epoch)
            trial["intermediates"] = records
    if reduction == "mean":
        yield from _reduce_mean(trials, include_intermediates)
    else:
        yield from trials


def _reduce_mean(trials: list[dict], include_intermediates: bool) -> Iterator[dict]:
    groups: dict[int, list[dict]] = {}
    for trial in trials:
        groups.setdefault(trial["config"]["id"], []).append(trial)
    for group in groups.values():
        keys = [k for k in group[0] if k not in ("id", "seed", "config", "intermediates")]
        reduced: dict[str, Any] = {k: _mean([t[k] for t in group]) for k in keys}
        reduced["config"] = group[0]["config"]
        if include_intermediates:
            by_epoch: dict[Any, list[dict]] = {}
            for trial in group:
                for rec in trial["intermediates"]:
                    by_epoch.setdefault(rec["current_epoch"], []).append(rec)
            inter_keys = list(dict.fromkeys(k for t in group for rec in t["intermediates"] for k in rec
                                            if k not in ("id", "current_epoch")))
            reduced["intermediates"] = [
                {"current_epoch": epoch, **{k: _mean([r.get(k) for r in recs]) for k in inter_keys}}
                for epoch, recs in sorted(by_epoch.items())]
        yield reduced


def bulk_insert(model: type[Model], rows: list[dict]) -> None:
    """Insert many rows with one ``executemany`` (the caller holds the transaction).

    Every row must have the keys of the first; peewee's own ``insert_many`` builds Python
    expressions per value and is several times slower for the millions of intermediate rows.
    """
    if not rows:
        return
    fields = [model._meta.fields[name] for name in rows[0]]
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    sql = f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES ({", ".join("?" * len(fields))})'
    model._meta.database.cursor().executemany(
        sql, ([f.db_value(row[f.name]) for f in fields] for row in rows))


def progress(iterable: Iterable, desc: str, quiet: bool) -> Iterable:
    if quiet:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but the generators work without it
        return iterable
    return tqdm(iterable, desc=desc, unit=" records")


def json_files(paths: Iterable[str], recursive: bool = False) -> list[Path]:
    """The given files, and the ``*.json`` files in the given folders (also in their subfolders when
    ``recursive``), each folder's sorted; a path that does not exist is a one-line ``ValueError``."""
    files: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            files.extend(sorted(p.rglob("*.json") if recursive else p.glob("*.json")))
        elif p.is_file():
            files.append(p)
        else:
            raise ValueError(f"{item}: no such file or folder")
    return files


def run_generator(parser, db: BenchmarkDatabase, argv: list[str] | None,
                  generate: Callable[[Any], tuple[int, str]]) -> None:
    """The command line of a database generator: adds ``--out`` and ``--quiet`` to ``parser`` (which has
    the input arguments), calls ``generate(args)`` -> ``(trials written, note)`` and prints a summary.

    Bad input (``ValueError``, ``OSError``) exits with status 2 and a one-line error, no traceback.
    """
    parser.add_argument("--out", default=None,
                        help=f"database file to write (default: $NASBENCHMARK_DIR/{db.filename}, "
                             f"$NASBENCHMARK_DIR defaulting to {DEFAULT_DATABASE_DIR})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        n, note = generate(args)
    except (ValueError, OSError) as err:
        parser.exit(2, f"error: {err}\n")
    print(f"{n} trials written to {args.out or db.path()}{note}")


class generating:
    """Context manager of a database generator: writes into ``<out>.tmp`` inside one transaction,
    then renames it to ``out``, so a failed or interrupted run never leaves a half-written database."""

    def __init__(self, db: BenchmarkDatabase, out: str | os.PathLike | None, models: Sequence[type[Model]]):
        self.db = db
        self.out = Path(out) if out else db.path()
        self.tmp = self.out.with_name(self.out.name + ".tmp")
        self.models = models

    def __enter__(self) -> SqliteDatabase:
        for stale in (self.tmp, Path(str(self.tmp) + "-wal"), Path(str(self.tmp) + "-shm")):
            if stale.exists():
                stale.unlink()
        database = self.db.create(self.tmp, self.models)
        self._txn = database.atomic()
        self._txn.__enter__()
        return database

    def __exit__(self, exc_type, exc, tb) -> None:
        self._txn.__exit__(exc_type, exc, tb)
        database = self.db.db
        if exc_type is None:
            # Table statistics let SQLite pick the selective index (arch, hash) over ones every row
            # shares (num_epochs, dataset): without them a one-architecture query of NAS-Bench-201
            # scans all 15,625 configs (20 ms instead of 0.3 ms).
            database.execute_sql("ANALYZE")
            database.execute_sql("PRAGMA journal_mode=delete")  # one self-contained file
        self.db.close()
        if exc_type is None:
            os.replace(self.tmp, self.out)
        elif self.tmp.exists():
            self.tmp.unlink()


def write_database(db: BenchmarkDatabase, out: str | os.PathLike | None, models: Sequence[type[Model]],
                   trials: Iterable[tuple[dict, dict, list[dict]]], key: Callable[[dict], Any]) -> int:
    """Write a fresh database of ``models`` (config, stats, intermediates) from ``(config, stats,
    intermediates)`` triples, atomically (see :class:`generating`); trials whose configs have the same
    ``key(config)`` share one config row. Returns the number of trials."""
    with generating(db, out, models):
        writer = TrialWriter(*models)
        for config, stats, inters in trials:
            writer.add(key(config), config, stats, inters)
        writer.flush()
    return writer.count


class TrialWriter:
    """Writes ``(config, stats, intermediates)`` triples of a fresh database with explicit ids and
    batched ``executemany`` inserts; trials whose configs have the same ``key`` share one config row."""

    def __init__(self, config_model: type[Model], stats_model: type[Model], inter_model: type[Model], batch: int = 20000):
        self.models = (config_model, stats_model, inter_model)
        self.config_ids: dict[Any, int] = {}
        self.pending: tuple[list, list, list] = ([], [], [])
        self.count = 0
        self.batch = batch
        self._inter_id = 0

    def add(self, key: Any, config: dict, stats: dict, inters: list[dict]) -> None:
        configs, trials, inter_rows = self.pending
        if key not in self.config_ids:
            self.config_ids[key] = len(self.config_ids) + 1
            configs.append(dict(config, id=self.config_ids[key]))
        self.count += 1
        trials.append(dict(stats, id=self.count, config=self.config_ids[key]))
        for rec in inters:
            self._inter_id += 1
            inter_rows.append(dict(rec, id=self._inter_id, trial=self.count))
        if len(inter_rows) + len(trials) >= self.batch:
            self.flush()

    def flush(self) -> None:
        for model, rows in zip(self.models, self.pending):
            bulk_insert(model, rows)
            rows.clear()
