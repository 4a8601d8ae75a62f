"""One experiment's store: profile, trials, parameters, metrics and state events in SQLite.

SQLite in WAL mode with ``synchronous=NORMAL``: a committed transaction survives a ``kill -9``
of the manager (it is in the WAL file before ``commit`` returns), and a commit costs no fsync.
Each method is one transaction; the manager calls them *before* acting on what they record.

The read methods return NNI's REST shapes (camelCase dicts), so the REST layer stays thin.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Optional

from peewee import OperationalError, SqliteDatabase, fn

from nni.runtime.states import FINAL_STATES  # noqa: F401  (re-exported: the store's old public name)

from nni.runtime.access import private_dir, private_file
from nni.runtime.experiment_profile import mask_secrets

from .models import make_models



def store_path(experiment_dir: str | os.PathLike) -> Path:
    return Path(experiment_dir) / "db" / "nni.sqlite"


class ExperimentStore:
    """Open (and create) the store of one experiment.

    Args:
        path: the SQLite file, usually ``<experiment dir>/db/nni.sqlite``.
        readonly: open for ``view``: no table is created and writes raise.
    """

    def __init__(self, path: str | os.PathLike, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"no experiment store at {self.path}")
            uri = f"file:{self.path}?mode=ro"
            self.db = SqliteDatabase(uri, uri=True, pragmas={"query_only": 1})
        else:
            # Owner only, whatever the umask; SQLite gives its -wal / -shm files the same mode.
            private_dir(self.path.parent)
            private_file(self.path)
            self.db = SqliteDatabase(
                str(self.path),
                pragmas={"journal_mode": "wal", "synchronous": "normal", "busy_timeout": 10000, "cache_size": -16000},
            )
        self.m = make_models(self.db)
        self.db.connect()
        if not readonly:
            self.db.create_tables(self.m.all, safe=True)
        self._upgrade()

    #: Trial columns added after the first release: name -> SQL of the column added to older stores.
    _ADDED_TRIAL_COLUMNS = {
        "platform": "VARCHAR(255) NOT NULL DEFAULT ''",
        "final_json": "TEXT",
        "latest_json": "TEXT",
        "latest_sequence": "INTEGER",
    }

    #: SQL of a metric's ``data`` as JSON ready to embed: the text when it is JSON (minified),
    #: else the text as a JSON string (``NaN`` becomes ``"NaN"``); NULL stays NULL.
    _EMBED = "CASE WHEN {0} IS NULL THEN NULL WHEN json_valid({0}) THEN json({0}) ELSE json_quote({0}) END"

    #: Keep the trial's ``final_json`` / ``latest_json`` / ``latest_sequence`` (see the model) for
    #: every metric insert, whoever writes it; a record inserted later has a larger id, so the
    #: last one written is the one :meth:`metric_data` lists last.
    TRIGGERS = {
        "metric_final_json": "AFTER INSERT ON metric WHEN NEW.type = 'FINAL' BEGIN"
        f" UPDATE trial SET final_json = {_EMBED.format('NEW.data')} WHERE trial_id = NEW.trial_id; END",
        "metric_latest_json": "AFTER INSERT ON metric WHEN NEW.type = 'PERIODICAL' BEGIN"
        f" UPDATE trial SET latest_json = {_EMBED.format('NEW.data')}, latest_sequence = NEW.sequence"
        " WHERE trial_id = NEW.trial_id; END",
    }

    def _upgrade(self) -> None:
        """Open a store written by an older version: add the trial columns it lacks and fill the
        metric summary columns (a read-only store is left as it is; the models then leave those
        columns out, and the trial list is read the slower way)."""
        have = {row[1] for row in self.db.execute_sql("PRAGMA table_info(trial)").fetchall()}
        self._trial_platform = "platform" in have or not self.readonly
        self._trial_summary = "final_json" in have or not self.readonly
        if not have:  # read-only store without a trial table: nothing to read anyway
            return
        missing = [name for name in self._ADDED_TRIAL_COLUMNS if name not in have]
        if self.readonly:
            for name in missing:
                self.m.Trial._meta.remove_field(name)
            return
        triggers = {row[0] for row in self.db.execute_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()}
        if not missing and set(self.TRIGGERS) <= triggers:
            return  # nothing to write: opening a current store takes no write lock
        with self.db.atomic():
            for name in missing:
                self.db.execute_sql(f"ALTER TABLE trial ADD COLUMN {name} {self._ADDED_TRIAL_COLUMNS[name]}")
            for name, sql in self.TRIGGERS.items():
                self.db.execute_sql(f"CREATE TRIGGER IF NOT EXISTS {name} {sql}")
            if "final_json" in missing:  # once: the records written before the triggers existed
                last = "(SELECT m.{col} FROM metric m WHERE m.trial_id = trial.trial_id AND m.type = '{type}' ORDER BY m.id DESC LIMIT 1)"
                self.db.execute_sql(
                    f"UPDATE trial SET final_json = {self._EMBED.format(last.format(col='data', type='FINAL'))},"
                    f" latest_json = {self._EMBED.format(last.format(col='data', type='PERIODICAL'))},"
                    f" latest_sequence = {last.format(col='sequence', type='PERIODICAL')}"
                )

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()

    # ----- experiment profile -----

    def create_experiment(self, experiment_id: str, config: dict, log_dir: str, start_time: int, status: str = "INITIALIZED") -> None:
        with self.db.atomic():
            self.m.ConfigRow.create(id=experiment_id, config=json.dumps(mask_secrets(config)))
            self.m.Experiment.create(
                id=experiment_id,
                config="",
                status=status,
                start_time=start_time,
                log_dir=log_dir,
            )

    def has_experiment(self) -> bool:
        return self.m.Experiment.select().exists()

    def experiment_row(self):
        """The profile row without ``config`` (read it with :meth:`config`): the config holds the
        search space, up to 50 MB, and this row is read on every status poll and new trial."""
        E = self.m.Experiment
        return E.select(*[f for f in E._meta.sorted_fields if f.name != "config"]).get()

    def config(self) -> dict:
        try:
            row = self.m.ConfigRow.select(self.m.ConfigRow.config).first()
        except OperationalError:  # a store of an older version, opened read-only: no such table
            row = None
        if row is None:
            row = self.m.Experiment.select(self.m.Experiment.config).get()
        return json.loads(row.config)

    def _write_config(self, config: Any) -> None:
        text = json.dumps(mask_secrets(json.loads(config) if isinstance(config, str) else config))
        E = self.m.Experiment
        self.m.ConfigRow.insert(id=E.select(E.id).scalar(), config=text).on_conflict_replace().execute()
        E.update(config="").where(E.config != "").execute()  # moves an older store's copy out once

    def update_experiment(self, **fields: Any) -> None:
        config = fields.pop("config", None)
        if "errors" in fields and not isinstance(fields["errors"], str):
            fields["errors"] = json.dumps(fields["errors"])
        with self.db.atomic():
            if config is not None:
                self._write_config(config)
            if fields:
                self.m.Experiment.update(**fields).execute()

    def update_config(self, config: dict) -> int:
        """Replace the config and bump the profile revision; returns the new revision."""
        with self.db.atomic():
            row = self.experiment_row()
            self._write_config(config)
            self.m.Experiment.update(revision=row.revision + 1).execute()
            return row.revision + 1

    def set_status(self, status: str, end_time: Optional[int] = None, error: Optional[str] = None) -> None:
        with self.db.atomic():
            fields: dict[str, Any] = {"status": status}
            if end_time is not None:
                fields["end_time"] = end_time
            if error:
                errors = json.loads(self.experiment_row().errors or "[]")
                errors.append(error)
                fields["errors"] = json.dumps(errors)
            self.m.Experiment.update(**fields).execute()

    def status(self) -> dict:
        # raw SQL: asked on every status poll (``Experiment.run()`` polls 20 times a second), and
        # building peewee's query for the whole profile row cost the manager ~5 ms a poll
        status, errors = self.db.execute_sql("SELECT status, errors FROM experiment LIMIT 1").fetchone()
        return {"status": status, "errors": json.loads(errors or "[]")}

    # ----- trials -----

    def add_trial(
        self,
        trial_id: str,
        sequence_id: int,
        parameter: str,
        parameter_id: Any,
        submit_time: int,
        working_directory: str = "",
        status: str = "WAITING",
        source: str = "algorithm",
        generation: int = 0,
        counted: bool = True,
        message: str = "",
    ) -> None:
        # Raw SQL on the hot path: peewee's query building costs more than SQLite itself here.
        pid = None if parameter_id is None else str(parameter_id)
        with self.db.atomic():
            conn = self.db.connection()
            # rowid = sequence id (unless taken): the trial list then reads the table in rowid order
            conn.execute(
                "INSERT INTO trial (rowid, trial_id, sequence_id, status, parameter, parameter_id, submit_time, message,"
                " working_directory, counted, generation, source)"
                " VALUES (CASE WHEN EXISTS (SELECT 1 FROM trial WHERE rowid = ?1) THEN NULL ELSE ?1 END,"
                " ?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                (sequence_id, trial_id, status, parameter, pid, submit_time, message, working_directory, int(counted), generation, source),
            )
            conn.execute("UPDATE experiment SET next_sequence_id = ? WHERE next_sequence_id <= ?", (sequence_id + 1, sequence_id))
            conn.execute(
                "INSERT INTO trial_event (trial_id, event, timestamp, message) VALUES (?, ?, ?, ?)",
                (trial_id, status, submit_time, source),
            )

    _TRIAL_COLUMNS = frozenset(
        {"status", "parameter", "parameter_id", "submit_time", "start_time", "end_time", "message", "exit_code",
         "working_directory", "gpu_indices", "pid", "counted", "generation", "source", "sequence_id", "platform"}
    )

    def _update_trial_sql(self, conn, trial_id: str, values: dict) -> None:
        bad = set(values) - self._TRIAL_COLUMNS
        if bad:
            raise ValueError(f"unknown trial field(s): {', '.join(sorted(bad))}")
        if not values:
            return
        sets = ", ".join(f"{k} = ?" for k in values)
        params = [int(v) if isinstance(v, bool) else v for v in values.values()]
        conn.execute(f"UPDATE trial SET {sets} WHERE trial_id = ?", (*params, trial_id))

    def update_trial(self, trial_id: str, **fields: Any) -> None:
        with self.db.atomic():
            self._update_trial_sql(self.db.connection(), trial_id, fields)

    def trial_state(
        self,
        trial_id: str,
        status: str,
        timestamp: int,
        message: Optional[str] = None,
        exit_code: Optional[int] = None,
        **fields: Any,
    ) -> None:
        """Record a state change of a trial and its event in one transaction."""
        values: dict[str, Any] = {"status": status, **fields}
        if status == "RUNNING":
            values["start_time"] = timestamp
        elif status in FINAL_STATES:
            values["end_time"] = timestamp
        if message is not None:
            values["message"] = message
        if exit_code is not None:
            values["exit_code"] = exit_code
        with self.db.atomic():
            conn = self.db.connection()
            self._update_trial_sql(conn, trial_id, values)
            if status in FINAL_STATES:  # a trial cancelled while waiting never ran
                conn.execute("UPDATE trial SET start_time = ? WHERE trial_id = ? AND start_time IS NULL", (timestamp, trial_id))
            conn.execute(
                "INSERT INTO trial_event (trial_id, event, timestamp, message) VALUES (?, ?, ?, ?)",
                (trial_id, status, timestamp, message or ""),
            )

    def add_event(self, trial_id: str, event: str, timestamp: int, message: str = "") -> None:
        with self.db.atomic():
            self.db.connection().execute(
                "INSERT INTO trial_event (trial_id, event, timestamp, message) VALUES (?, ?, ?, ?)",
                (trial_id, event, timestamp, message),
            )

    def next_sequence_id(self) -> int:
        return self.db.connection().execute("SELECT next_sequence_id FROM experiment").fetchone()[0]

    def trial_rows(self, status: Optional[str] = None) -> list:
        q = self.m.Trial.select().order_by(self.m.Trial.sequence_id)
        if status:
            q = q.where(self.m.Trial.status == status)
        return list(q)

    def trial_row(self, trial_id: str):
        return self.m.Trial.get_or_none(self.m.Trial.trial_id == trial_id)

    def counted_trials(self) -> int:
        return self.m.Trial.select().where(self.m.Trial.counted == True).count()  # noqa: E712

    # ----- metrics -----

    def add_metrics(self, rows: Iterable[dict]) -> int:
        """Insert metric rows (``trial_id, parameter_id, type, sequence, data, timestamp``) in one transaction."""
        rows = list(rows)
        if not rows:
            return 0
        with self.db.atomic():
            self.db.connection().executemany(
                "INSERT INTO metric (trial_id, parameter_id, type, sequence, data, timestamp) VALUES (?, ?, ?, ?, ?, ?)",
                [(r["trial_id"], r.get("parameter_id"), r["type"], r["sequence"], r["data"], r["timestamp"]) for r in rows],
            )
        return len(rows)

    # ----- imported data -----

    def add_imported_data(self, data: list, timestamp: int) -> None:
        with self.db.atomic():
            self.m.ImportedData.create(data=json.dumps(data), timestamp=timestamp)

    def imported_data(self) -> list:
        out: list = []
        for row in self.m.ImportedData.select().order_by(self.m.ImportedData.id):
            out.extend(json.loads(row.data))
        return out

    # ----- REST shapes -----

    @staticmethod
    def metric_record(row) -> dict:
        return {
            "timestamp": row.timestamp,
            "trialJobId": row.trial_id,
            "parameterId": row.parameter_id,
            "type": row.type,
            "sequence": row.sequence,
            "data": row.data,
        }

    def metric_data(self, trial_id: Optional[str] = None, metric_type: Optional[str] = None) -> list[dict]:
        M = self.m.Metric
        q = M.select().order_by(M.id)
        if trial_id:
            q = q.where(M.trial_id == trial_id)
        if metric_type:
            q = q.where(M.type == metric_type)
        return [self.metric_record(r) for r in q]

    _METRIC_COLUMNS = "timestamp, trial_id, parameter_id, type, sequence, data"

    @staticmethod
    def _metric_dicts(rows) -> list[dict]:
        return [
            {"timestamp": r[0], "trialJobId": r[1], "parameterId": r[2], "type": r[3], "sequence": r[4], "data": r[5]}
            for r in rows
        ]

    def metric_data_latest(self) -> list[dict]:
        """NNI's ``metric-data-latest``: every non-intermediate record (final results) plus the
        latest intermediate (PERIODICAL) record of each trial."""
        return json.loads(self.metric_data_latest_json())

    def metric_data_latest_json(self) -> str:
        """NNI's ``metric-data-latest`` as JSON text, encoded by SQLite (twice as fast as json.dumps)."""
        rec = ("json_object('timestamp', timestamp, 'trialJobId', trial_id, 'parameterId', parameter_id,"
               " 'type', type, 'sequence', sequence, 'data', data)")
        sql = (
            f"SELECT json_group_array({rec}) FROM ("
            " SELECT * FROM (SELECT * FROM metric WHERE type IN ('FINAL', 'CUSTOM', 'REQUEST_PARAMETER') ORDER BY id)"
            " UNION ALL SELECT * FROM (SELECT * FROM metric WHERE id IN (SELECT (SELECT MAX(m.id) FROM metric m"
            " WHERE m.trial_id = t.trial_id AND m.type = 'PERIODICAL') FROM trial t) ORDER BY id))"
        )
        return self.db.execute_sql(sql).fetchone()[0] or "[]"

    def metric_data_range(self, min_seq: int, max_seq: int) -> list[dict]:
        M, T = self.m.Metric, self.m.Trial
        ids = T.select(T.trial_id).where((T.sequence_id >= min_seq) & (T.sequence_id <= max_seq))
        return [self.metric_record(r) for r in M.select().where(M.trial_id.in_(ids)).order_by(M.id)]

    def _final_metrics(self, trial_ids: Optional[list[str]] = None) -> dict[str, list[dict]]:
        sql = f"SELECT {self._METRIC_COLUMNS} FROM metric WHERE type = 'FINAL'"
        params: list = []
        if trial_ids is not None:
            sql += f" AND trial_id IN ({','.join('?' * len(trial_ids))})"
            params = list(trial_ids)
        out: dict[str, list[dict]] = {}
        for rec in self._metric_dicts(self.db.execute_sql(sql + " ORDER BY id", params).fetchall()):
            out.setdefault(rec["trialJobId"], []).append(rec)
        return out

    def trial_job_info(self, row, finals: Optional[list[dict]] = None) -> dict:
        """NNI's ``TrialJobInfo`` for one trial row."""
        info = {
            "trialJobId": row.trial_id,
            "sequenceId": row.sequence_id,
            "status": row.status,
            "submitTime": row.submit_time,
            "hyperParameters": [row.parameter],
            "logPath": f"file://localhost:{row.working_directory}" if row.working_directory else None,
            "finalMetricData": finals if finals is not None else self._final_metrics([row.trial_id]).get(row.trial_id, []),
        }
        if row.start_time is not None:
            info["startTime"] = row.start_time
        if row.end_time is not None:
            info["endTime"] = row.end_time
        if row.message:
            info["message"] = row.message
        if row.status == "FAILED" and row.working_directory:
            info["stderrPath"] = f"file://localhost:{os.path.join(row.working_directory, 'stderr')}"
        if getattr(row, "platform", ""):
            info["platform"] = row.platform
        return info

    def trial_jobs(self, status: Optional[str] = None) -> list[dict]:
        """Every trial's ``TrialJobInfo``, optionally only those in ``status``."""
        return json.loads(self.trial_jobs_json(status))

    def trial_jobs_json(self, status: Optional[str] = None, offset: int = 0, limit: Optional[int] = None) -> str:
        """:meth:`trial_jobs` as JSON text, assembled from SQLite-encoded final records and
        C-escaped strings (a third faster than building dicts and ``json.dumps``).

        ``offset`` / ``limit``: one page of the list (ordered by sequence id), for clients that
        read a big experiment in pieces; the records are NNI's ``TrialJobInfo`` either way.
        """
        from json.encoder import encode_basestring as q  # the C string escaper of json.dumps

        sql = ("SELECT trial_id, sequence_id, status, submit_time, parameter, working_directory, start_time, end_time, message, "
               + ("platform" if self._trial_platform else "''") + " FROM trial")
        params: list = []
        if status:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY sequence_id"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else limit, offset]
        rows = self.db.execute_sql(sql, params).fetchall()
        rec = ("json_object('timestamp', timestamp, 'trialJobId', trial_id, 'parameterId', parameter_id,"
               " 'type', type, 'sequence', sequence, 'data', data)")
        if limit is not None and limit <= 5000:
            # A page: the final records of its trials only (one seek each on (trial_id, type);
            # "+type" keeps SQLite off the (type) index, which would scan every final record).
            in_page = ",".join("?" * len(rows))
            finals = dict(self.db.execute_sql(
                f"SELECT trial_id, json_group_array({rec}) FROM (SELECT * FROM metric WHERE +type = 'FINAL'"
                f" AND trial_id IN ({in_page}) ORDER BY id) GROUP BY trial_id", [r[0] for r in rows]
            ).fetchall()) if rows else {}
        else:
            finals = dict(self.db.execute_sql(
                f"SELECT trial_id, json_group_array({rec}) FROM (SELECT * FROM metric WHERE type = 'FINAL' ORDER BY id)"
                " GROUP BY trial_id"
            ).fetchall())
        out = []
        for tid, seq, st, submit, parameter, workdir, start, end, message, platform in rows:
            p = ['{"trialJobId":', q(tid), ',"sequenceId":', str(seq), ',"status":', q(st), ',"submitTime":', str(submit),
                 ',"hyperParameters":[', q(parameter), '],"logPath":', q("file://localhost:" + workdir) if workdir else "null",
                 ',"finalMetricData":', finals.get(tid, "[]")]
            if start is not None:
                p += [',"startTime":', str(start)]
            if end is not None:
                p += [',"endTime":', str(end)]
            if message:
                p += [',"message":', q(message)]
            if st == "FAILED" and workdir:
                p += [',"stderrPath":', q("file://localhost:" + os.path.join(workdir, "stderr"))]
            if platform:
                p += [',"platform":', q(platform)]
            p.append("}")
            out.append("".join(p))
        return "[" + ",".join(out) + "]"

    #: Columns of :meth:`trial_table_json`, in order.
    #: Each column of :meth:`trial_table_json`: (name, SQL of its value, whether that value is
    #: JSON already: numbers, NULL and the JSON the TRIGGERS keep; else text to quote).
    _TRIAL_TABLE_SQL = (
        ("trialJobId", "trial_id", False), ("sequenceId", "sequence_id", True), ("status", "status", False),
        ("startTime", "start_time", True), ("endTime", "end_time", True), ("message", "message", False),
        ("platform", "platform", False), ("finalData", "final_json", True),
        ("latestData", "CASE WHEN final_json IS NULL THEN latest_json END", True),
        ("latestSequence", "latest_sequence", True),
    )
    TRIAL_TABLE_COLUMNS = tuple(name for name, _, _ in _TRIAL_TABLE_SQL)
    #: Columns of :meth:`trial_details_json`, in order.
    TRIAL_DETAILS_COLUMNS = ("trialJobId", "hyperParameter", "workingDirectory")

    def trial_table_json(self) -> str:
        """Every trial in one compact, column-wise JSON object: the web UI's trial list.

        ``{"total": n, "columns": {name: [value of each trial]}}`` in sequence-id order, with
        :data:`TRIAL_TABLE_COLUMNS`: the trial row's fields, ``finalData`` (``data`` of its last
        FINAL record, or null), ``latestSequence`` (``sequence`` of its last PERIODICAL record,
        or null) and ``latestData`` (that record's ``data``; null once a final result exists,
        which is then shown instead). A ``data`` that is valid JSON is given decoded (one level:
        ``"0.5"`` becomes ``0.5``), else as its text (``NaN``). Parameters are in
        :meth:`trial_details_json`.

        Column-wise, from one scan of the trial table: no key repeated per trial, no
        ``metric-data-latest`` beside it, a fifth of the size of ``trial-jobs``.
        """
        if not self._trial_summary:
            return self._trial_table_json_joined()
        # JSON values (the data columns, kept by TRIGGERS) are joined as they are instead of
        # parsed and re-encoded; Python puts the columns together in one copy (a chain of SQL
        # ``||`` copied the growing text ten times).
        select = ", ".join(f"group_concat(coalesce({sql}, 'null'), ',')" if is_json else f"json_group_array({sql})"
                           for _, sql, is_json in self._TRIAL_TABLE_SQL)
        # rowid order is sequence order for trials the manager added (see add_trial): a scan,
        # where the sequence_id index costs a B-tree descent per trial; checked on every call
        order = "rowid" if self._rowid_is_sequence() else "sequence_id"
        row = self.db.execute_sql(f"SELECT count(*), {select} FROM (SELECT * FROM trial ORDER BY {order})").fetchone()
        parts = ['{"total":', str(row[0]), ',"columns":{']
        for k, (name, _, is_json) in enumerate(self._TRIAL_TABLE_SQL):
            parts += [',"' if k else '"', name, '":']
            parts += ["[", row[k + 1] or "", "]"] if is_json else [row[k + 1]]
        parts.append("}}")
        return "".join(parts)

    def _rowid_is_sequence(self) -> bool:
        return not self.db.execute_sql("SELECT EXISTS (SELECT 1 FROM trial WHERE rowid != sequence_id)").fetchone()[0]

    def _trial_table_json_joined(self) -> str:
        """:meth:`trial_table_json` of a read-only store written before the summary columns."""
        platform = "platform" if self._trial_platform else "''"
        sql = (
            "SELECT json_object('total', count(*), 'columns', json_object("
            "'trialJobId', json_group_array(trial_id), 'sequenceId', json_group_array(sequence_id),"
            " 'status', json_group_array(status), 'startTime', json_group_array(start_time),"
            " 'endTime', json_group_array(end_time), 'message', json_group_array(message),"
            " 'platform', json_group_array(platform),"
            # data decoded once here when it is JSON (a number or object, or the inner text of a
            # double-encoded value); else ("NaN") its text: the client's parse does the rest
            " 'finalData', json_group_array(CASE WHEN json_valid(final_data) THEN json(final_data) ELSE final_data END),"
            " 'latestData', json_group_array(CASE WHEN json_valid(latest_data) THEN json(latest_data) ELSE latest_data END),"
            " 'latestSequence', json_group_array(latest_sequence)))"
            f" FROM (SELECT t.trial_id, t.sequence_id, t.status, t.start_time, t.end_time, t.message, {platform} AS platform,"
            " f.data AS final_data, CASE WHEN f.id IS NULL THEN p.data END AS latest_data, p.sequence AS latest_sequence"
            # MAX(id): one seek each on the (trial_id, type) index (ordered by rowid within a key)
            " FROM trial t"
            " LEFT JOIN metric f ON f.id = (SELECT MAX(m.id) FROM metric m WHERE m.trial_id = t.trial_id AND m.type = 'FINAL')"
            " LEFT JOIN metric p ON p.id = (SELECT MAX(m.id) FROM metric m WHERE m.trial_id = t.trial_id AND m.type = 'PERIODICAL')"
            " ORDER BY t.sequence_id)"
        )
        return self.db.execute_sql(sql).fetchone()[0]

    def trial_details_json(self, offset: int = 0) -> str:
        """What :meth:`trial_table_json` leaves out, of the trials from position ``offset`` on
        (in sequence-id order): ``{"offset": offset, "columns": {...}}`` with
        :data:`TRIAL_DETAILS_COLUMNS`. ``hyperParameter`` is the dispatcher's parameter record,
        as JSON when it is valid JSON, else its text. A trial's details do not change, so a
        client asks only for the trials it has not seen (``offset`` = how many it has)."""
        # a JSON record is embedded as it is (checked, not parsed and re-encoded: half the time)
        order = "rowid" if self._rowid_is_sequence() else "sequence_id"
        ids, parameters, folders = self.db.execute_sql(
            "SELECT json_group_array(trial_id),"
            " group_concat(CASE WHEN json_valid(parameter) THEN parameter ELSE json_quote(parameter) END, ','),"
            " json_group_array(working_directory)"
            f" FROM (SELECT trial_id, parameter, working_directory FROM trial ORDER BY {order} LIMIT -1 OFFSET ?)",
            [offset],
        ).fetchone()
        return "".join(['{"offset":', str(offset), ',"columns":{"trialJobId":', ids, ',"hyperParameter":[',
                        parameters or "", '],"workingDirectory":', folders, "}}"])

    def trial_job(self, trial_id: str) -> Optional[dict]:
        row = self.trial_row(trial_id)
        return None if row is None else self.trial_job_info(row)

    def job_statistics(self) -> list[dict]:
        T = self.m.Trial
        q = T.select(T.status, fn.COUNT(T.trial_id).alias("n")).group_by(T.status)
        return [{"trialJobStatus": r.status, "trialJobNumber": r.n} for r in q]

    def export_data(self) -> list[dict]:
        """``[{parameter, value, trialJobId}]`` for every trial with a final result."""
        finals = self._final_metrics()
        out = []
        for row in self.trial_rows():
            recs = finals.get(row.trial_id)
            if not recs:
                continue
            try:
                parameter = json.loads(row.parameter).get("parameters")
            except (ValueError, AttributeError):
                parameter = row.parameter
            out.append({"parameter": parameter, "value": recs[-1]["data"], "trialJobId": row.trial_id})
        return out
