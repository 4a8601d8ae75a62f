"""The machine-wide list of experiments (``nnictl experiment list``, the "All experiments" page).

One SQLite file, ``<root>/.experiments.sqlite``, where ``<root>`` is ``$NNI_EXPERIMENTS_DIR``
or ``~/nni-experiments``. SQLite's own locking makes concurrent writers (several managers,
nnictl) safe; every write is one short transaction with a busy timeout.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any, Optional

from nni.runtime.states import LIVE_STATES, ExperimentStatus

from nni.runtime.access import REGISTRY_FILE, experiments_root, private_dir, private_file

_COLUMNS = ("id", "name", "port", "pid", "status", "start_time", "end_time", "platform", "workdir", "tag")




class ExperimentsRegistry:
    """Rows: ``id, name, port, pid, status, start_time, end_time (ms), platform, workdir``
    (``workdir`` is the experiment's own folder ``<experimentWorkingDirectory>/<id>``)."""

    def __init__(self, root: Optional[str | os.PathLike] = None) -> None:
        self.root = Path(root) if root is not None else experiments_root()
        self.path = self.root / REGISTRY_FILE

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():  # lists every experiment of this user: owner only
            if not self.root.exists():
                private_dir(self.root)
            private_file(self.path)
        conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS experiments (id TEXT PRIMARY KEY, name TEXT, port INTEGER, pid INTEGER,"
            " status TEXT, start_time INTEGER, end_time INTEGER, platform TEXT, workdir TEXT, tag TEXT)"
        )
        return conn

    def upsert(self, experiment_id: str, **fields: Any) -> None:
        """Insert or update the row of ``experiment_id`` (only the given fields change)."""
        bad = set(fields) - set(_COLUMNS)
        if bad:
            raise ValueError(f"unknown registry field(s): {', '.join(sorted(bad))}")
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR IGNORE INTO experiments (id) VALUES (?)", (experiment_id,))
            if fields:
                sets = ", ".join(f"{k} = ?" for k in fields)
                conn.execute(f"UPDATE experiments SET {sets} WHERE id = ?", (*fields.values(), experiment_id))
            conn.execute("COMMIT")
        finally:
            conn.close()

    def get(self, experiment_id: str) -> Optional[dict]:
        conn = self._connect()
        try:
            cur = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM experiments WHERE id = ?", (experiment_id,))
            row = cur.fetchone()
        finally:
            conn.close()
        return dict(zip(_COLUMNS, row)) if row else None

    def list(self) -> list[dict]:
        conn = self._connect()
        try:
            rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM experiments ORDER BY start_time").fetchall()
        finally:
            conn.close()
        return [dict(zip(_COLUMNS, r)) for r in rows]

    def remove(self, experiment_id: str) -> None:
        conn = self._connect()
        try:
            conn.execute("DELETE FROM experiments WHERE id = ?", (experiment_id,))
        finally:
            conn.close()

    @staticmethod
    def effective_status(row: dict) -> Optional[str]:
        """The recorded status, or STOPPED when the manager that should be running is gone
        (killed or crashed without updating the registry)."""
        status = row.get("status")
        pid = row.get("pid")
        if status in ExperimentStatus.__members__ and status != ExperimentStatus.STOPPED and pid:
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return ExperimentStatus.STOPPED.value if status in LIVE_STATES else status
            except (PermissionError, ValueError, OverflowError):
                pass
        return status

    @staticmethod
    def to_metadata(row: dict) -> dict:
        """NNI's experiment-metadata entry (camelCase) for one registry row."""
        return {
            "id": row["id"],
            "experimentName": row.get("name"),
            "port": row.get("port"),
            "pid": row.get("pid"),
            "status": ExperimentsRegistry.effective_status(row),
            "startTime": row.get("start_time"),
            "endTime": row.get("end_time"),
            "platform": row.get("platform"),
            "logDir": row.get("workdir"),
            "tag": [],
        }
