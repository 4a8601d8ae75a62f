"""The config (with a search space of up to 50 MB) has its own table: status, duration and
sequence updates of the experiment row no longer rewrite it (issue 11 item 3)."""
from __future__ import annotations

import json
import sqlite3

from nni.server.store import ExperimentStore


def test_config_lives_in_its_own_table(tmp_path):
    db = tmp_path / "nni.sqlite"
    store = ExperimentStore(db)
    config = {"trialConcurrency": 1, "searchSpace": {"x": {"_type": "choice", "_value": ["v" * 100] * 1000}}}
    store.create_experiment("e1", config, str(tmp_path), 0)
    store.set_status("RUNNING")
    store.update_experiment(exec_duration=5, config=dict(config, trialConcurrency=2))
    assert store.config()["trialConcurrency"] == 2
    assert store.update_config(dict(config, trialConcurrency=3)) == 1
    row = store.experiment_row()
    assert (row.status, row.exec_duration, row.revision) == ("RUNNING", 5, 1)
    store.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT config FROM experiment").fetchone()[0] == ""
    assert json.loads(conn.execute("SELECT config FROM experiment_config").fetchone()[0])["trialConcurrency"] == 3
    conn.close()


def test_store_of_an_older_version_is_read_and_migrated(tmp_path):
    db = tmp_path / "nni.sqlite"
    ExperimentStore(db).create_experiment("old1", {"trialConcurrency": 1}, str(tmp_path), 0)
    conn = sqlite3.connect(db)  # as an older version wrote it: the config in the experiment row
    conn.execute("DROP TABLE experiment_config")
    conn.execute("UPDATE experiment SET config = ?", (json.dumps({"trialConcurrency": 4}),))
    conn.commit()
    conn.close()
    viewed = ExperimentStore(db, readonly=True)  # nnictl view: no table is created
    assert viewed.config() == {"trialConcurrency": 4}
    viewed.close()
    store = ExperimentStore(db)  # resume: the table is created, the config moves on first write
    assert store.config() == {"trialConcurrency": 4}
    store.update_config({"trialConcurrency": 5})
    assert store.config() == {"trialConcurrency": 5}
    store.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT config FROM experiment").fetchone()[0] == ""
    conn.close()
