"""The trial list's metric summary (issue 21): each trial row carries the JSON of its last FINAL
and last PERIODICAL record, kept by triggers for any writer, so that ``format=columns`` is one
scan of ``trial``; the list equals the one joined from ``metric`` (the way older, read-only
stores are still read), for trials the manager adds, trials written by raw SQL in any order,
and a store written before the summary existed once it is opened for writing."""
from __future__ import annotations

import json

from nni.server.store import ExperimentStore


def _metric(trial_id: str, kind: str, sequence: int, data: str, timestamp: int) -> dict:
    return {"trial_id": trial_id, "parameter_id": "0", "type": kind, "sequence": sequence, "data": data, "timestamp": timestamp}


def _fill(store: ExperimentStore) -> None:
    """Trials with every shape of metric history the list distinguishes."""
    for seq, tid in enumerate(["a0", "b1", "c2", "d3", "e4"]):
        store.add_trial(tid, seq, json.dumps({"parameter_id": seq, "parameters": {"x": seq}}), seq, 1000 + seq, f"/t/{tid}")
    store.trial_state("a0", "RUNNING", 2000)
    store.add_metrics([
        _metric("a0", "PERIODICAL", 0, json.dumps(json.dumps(0.25)), 1),   # double-encoded, as NNI stores it
        _metric("a0", "PERIODICAL", 1, json.dumps(json.dumps({"default": 0.5, "acc": 0.7})), 2),
        _metric("b1", "PERIODICAL", 0, json.dumps(0.1), 3),
        _metric("b1", "FINAL", 0, "NaN", 4),                               # not JSON: given as its text
        _metric("b1", "FINAL", 0, json.dumps(0.75), 5),                    # the last final record counts
        _metric("c2", "FINAL", 0, json.dumps({"default": 0.9, "loss": 0.1}), 6),
        _metric("c2", "PERIODICAL", 3, json.dumps(0.2), 7),                # after the final: sequence kept, data hidden
        _metric("d3", "CUSTOM", 0, json.dumps("x"), 8),                    # neither kind
    ])
    store.trial_state("c2", "SUCCEEDED", 3000, exit_code=0)


def test_list_from_the_summary_equals_the_list_joined_from_metric(tmp_path):
    store = ExperimentStore(tmp_path / "nni.sqlite")
    store.create_experiment("sum0001", {}, str(tmp_path), 0)
    _fill(store)
    assert store._rowid_is_sequence()  # trials the manager adds: the list is read in rowid order
    table = json.loads(store.trial_table_json())
    assert table == json.loads(store._trial_table_json_joined())
    cols = table["columns"]
    assert table["total"] == 5 and cols["trialJobId"] == ["a0", "b1", "c2", "d3", "e4"]
    assert cols["finalData"] == [None, 0.75, {"default": 0.9, "loss": 0.1}, None, None]
    assert cols["latestData"] == [json.dumps({"default": 0.5, "acc": 0.7}), None, None, None, None]
    assert cols["latestSequence"] == [1, 0, 3, None, None]
    assert cols["startTime"][0] == 2000 and cols["endTime"][2] == 3000 and cols["endTime"][0] is None
    details = json.loads(store.trial_details_json(3))["columns"]
    assert details["trialJobId"] == ["d3", "e4"] and details["workingDirectory"] == ["/t/d3", "/t/e4"]
    assert details["hyperParameter"] == [{"parameter_id": 3, "parameters": {"x": 3}}, {"parameter_id": 4, "parameters": {"x": 4}}]
    store.close()


def test_trials_written_by_raw_sql_out_of_order_are_listed_by_sequence(tmp_path):
    store = ExperimentStore(tmp_path / "nni.sqlite")
    store.create_experiment("sum0002", {}, str(tmp_path), 0)
    conn = store.db.connection()
    with store.db.atomic():
        for seq in (2, 0, 1):
            conn.execute(
                "INSERT INTO trial (trial_id, sequence_id, status, parameter, submit_time, message, working_directory,"
                " counted, generation, source) VALUES (?, ?, 'SUCCEEDED', '{}', 0, '', '', 1, 0, 'algorithm')",
                (f"r{seq}", seq),
            )
        conn.execute("INSERT INTO metric (trial_id, type, sequence, data, timestamp) VALUES ('r1', 'FINAL', 0, '0.5', 1)")
    store.add_trial("r3", 3, "{}", 3, 0)  # its rowid (3) is taken: it gets the next free one
    assert not store._rowid_is_sequence()
    table = json.loads(store.trial_table_json())
    assert table["columns"]["trialJobId"] == ["r0", "r1", "r2", "r3"]
    assert table["columns"]["finalData"] == [None, 0.5, None, None]
    assert table == json.loads(store._trial_table_json_joined())
    details = json.loads(store.trial_details_json(1))
    assert details["offset"] == 1 and details["columns"]["trialJobId"] == ["r1", "r2", "r3"]
    store.close()


def test_a_store_written_before_the_summary_is_read_joined_then_filled_on_open(tmp_path):
    path = tmp_path / "nni.sqlite"
    store = ExperimentStore(path)
    store.create_experiment("sum0003", {}, str(tmp_path), 0)
    _fill(store)
    expected = json.loads(store.trial_table_json())
    # back to the older layout: no triggers, no summary columns
    for trigger in ("metric_final_json", "metric_latest_json"):
        store.db.execute_sql(f"DROP TRIGGER {trigger}")
    for column in ("final_json", "latest_json", "latest_sequence"):
        store.db.execute_sql(f"ALTER TABLE trial DROP COLUMN {column}")
    store.close()

    view = ExperimentStore(path, readonly=True)  # nnictl view of an older experiment
    assert not view._trial_summary and json.loads(view.trial_table_json()) == expected
    assert "final_json" not in {row[1] for row in view.db.execute_sql("PRAGMA table_info(trial)").fetchall()}
    view.close()

    store = ExperimentStore(path)  # resume: columns added and filled, triggers keep them from now on
    assert json.loads(store.trial_table_json()) == expected
    store.add_metrics([_metric("e4", "PERIODICAL", 0, json.dumps(0.3), 9)])
    table = json.loads(store.trial_table_json())
    assert table["columns"]["latestData"][4] == 0.3 and table == json.loads(store._trial_table_json_joined())
    store.close()
