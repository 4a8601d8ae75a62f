"""nnictl commands on stopped experiments (read from their store), save / load, delete, clean."""
from __future__ import annotations

import csv
import json
import os
import socket
import sys
from pathlib import Path

import pytest

from nni.server.store import ExperimentStore, ExperimentsRegistry, store_path
from nni.server.testing import synthetic_experiment
from nni.tools.nnictl.__main__ import main
from nni.tools.nnictl.ports import describe_port_owner, port_is_free


@pytest.fixture()
def root(tmp_path, monkeypatch):
    root = tmp_path / "exps"
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(root))
    return root


@pytest.fixture()
def synth(root):
    summary = synthetic_experiment(root / "synth001", n_trials=12, n_intermediate=3, registry=ExperimentsRegistry(root))
    return summary


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_list_show_status(capsys, synth):
    rc, out, _ = run(capsys, "experiment", "list")
    assert rc == 0 and "No experiment is running" in out
    rc, out, _ = run(capsys, "experiment", "list", "--all")
    assert rc == 0 and "| synth001 | synthetic | DONE" in out
    rc, out, _ = run(capsys, "experiment", "show", "synth")
    assert rc == 0 and json.loads(out)["id"] == "synth001"
    rc, out, _ = run(capsys, "experiment", "status", "synth001")
    assert json.loads(out) == {"status": "DONE", "errors": []}


def test_trial_ls_prints_v25_json(capsys, synth, root):
    """NNI v2.5 prints the REST trial-job objects as one pretty-printed JSON array."""
    rc, out, _ = run(capsys, "trial", "ls", "synth001")
    trials = json.loads(out)
    store = ExperimentStore(store_path(root / "synth001"), readonly=True)
    try:
        assert rc == 0 and trials == store.trial_jobs()
    finally:
        store.close()
    assert len(trials) == 12 and out.startswith("[\n    {")
    assert {"trialJobId", "status", "hyperParameters", "logPath", "startTime", "endTime", "finalMetricData"} <= set(trials[0])
    finals = {t: (v["default"] if isinstance(v, dict) else v) for t, v in synth["finals"].items()}
    rc, out, _ = run(capsys, "trial", "ls", "synth001", "--head", "3")
    assert [t["trialJobId"] for t in json.loads(out)] == sorted(finals, key=finals.get, reverse=True)[:3]


def test_trial_ls_table_head_tail(capsys, synth):
    finals = {t: (v["default"] if isinstance(v, dict) else v) for t, v in synth["finals"].items()}
    rc, out, _ = run(capsys, "trial", "ls", "synth001", "--table")
    assert rc == 0 and out.count("| T000") == 12
    rc, out, _ = run(capsys, "trial", "ls", "synth001", "-t", "--head", "3")
    listed = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| T")]
    assert listed == sorted(finals, key=finals.get, reverse=True)[:3]
    rc, out, _ = run(capsys, "trial", "ls", "synth001", "--table", "--tail", "2")
    listed = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| T")]
    assert listed == sorted(finals, key=finals.get)[:2]
    assert "FAILED" not in out  # only trials with a final result


def test_export_of_stopped_experiment(capsys, synth, tmp_path):
    out_json, out_csv = tmp_path / "e.json", tmp_path / "e.csv"
    assert run(capsys, "experiment", "export", "synth001", "-f", str(out_json), "--type", "json", "-i")[0] == 0
    data = json.loads(out_json.read_text())
    assert {d["trialJobId"] for d in data} == set(synth["finals"])
    assert all(len(d["intermediate"]) == 3 and set(d) == {"parameter", "value", "trialJobId", "intermediate"} for d in data)
    assert {d["trialJobId"]: d["value"] for d in data} == synth["finals"]
    assert run(capsys, "experiment", "export", "synth001", "-f", str(out_csv), "--type", "csv")[0] == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == len(synth["finals"]) and {"trialJobId", "lr", "batch_size", "reward", "loss"} <= set(rows[0])


def test_errors_are_one_line(capsys, synth):
    rc, _, err = run(capsys, "update", "concurrency", "synth001", "--value", "3")
    assert rc == 1 and err.strip() == "ERROR: experiment synth001 is not running (status DONE); resume it with 'nnictl resume synth001'"
    rc, _, err = run(capsys, "experiment", "show", "nothere")
    assert rc == 1 and "experiment 'nothere' not found" in err
    rc, _, err = run(capsys, "stop")
    assert rc == 1 and "no experiment is running" in err
    rc, _, err = run(capsys, "webui", "url")
    assert rc == 1 and len(err.strip().splitlines()) == 1


def test_log_trial(capsys, synth, root):
    rc, out, _ = run(capsys, "log", "trial", "synth001")
    assert rc == 0 and f"T00000: {root / 'synth001' / 'trials' / 'T00000' / 'trial.log'}" in out
    rc, out, _ = run(capsys, "log", "trial", "synth001", "-T", "T00001", "--tail", "5")
    folder = root / "synth001" / "trials" / "T00001"
    assert rc == 0 and out == (f"==> {folder / 'trial.log'} <==\ntrial T00001 started\n\n==> {folder / 'stdout'} <==\n"
                               f"stdout of T00001\n\n==> {folder / 'stderr'} <==\n")
    rc, out, _ = run(capsys, "log", "trial", "synth001", "-T", "T00001", "--path")
    assert out.split() == [str(folder / name) for name in ("trial.log", "stdout", "stderr")]
    rc, out, err = run(capsys, "log", "stdout", "synth001", "--path")
    assert out.split() == [str(root / "synth001" / "log" / name) for name in ("nnictl_stdout.log", "nnimanager.log")]


@pytest.mark.parametrize("ext", [".zip", ".tar.gz"])
def test_save_load_roundtrip(capsys, synth, root, tmp_path, monkeypatch, ext):
    code = Path(ExperimentStore(store_path(root / "synth001"), readonly=True).config()["trialCodeDirectory"])
    package = tmp_path / f"pkg{ext}"
    rc, out, err = run(capsys, "experiment", "save", "synth001", "--path", str(package), "--saveCodeDir")
    assert rc == 0, err
    assert package.is_file()
    # another machine: another experiments root
    other = tmp_path / "other"
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(other))
    rc, _, err = run(capsys, "experiment", "load", "--path", str(package))
    assert rc == 1 and "--codeDir: required" in err
    rc, out, err = run(capsys, "experiment", "load", "--path", str(package), "--codeDir", str(tmp_path / "code2"))
    assert rc == 0, err
    dest = other / "synth001"
    store = ExperimentStore(store_path(dest), readonly=True)
    try:
        assert store.experiment_row().log_dir == str(dest)
        assert store.config()["trialCodeDirectory"] == str(tmp_path / "code2")
        assert {r.working_directory for r in store.trial_rows()} == {str(dest / "trials" / f"T{i:05d}") for i in range(12)}
    finally:
        store.close()
    assert code == root / "synth001"  # the synthetic experiment's code folder is its own folder
    assert (tmp_path / "code2" / "log" / "nnimanager.log").is_file()
    assert json.loads((tmp_path / "code2" / "search_space.json").read_text())["lr"]["_type"] == "loguniform"
    rc, out, _ = run(capsys, "experiment", "list", "--all")
    assert "| synth001 | synthetic | DONE" in out  # the saved status
    rc, out, _ = run(capsys, "trial", "ls", "synth001", "--head", "1")
    assert rc == 0 and len(json.loads(out)) == 1
    rc, _, err = run(capsys, "experiment", "load", "--path", str(package), "--codeDir", str(tmp_path / "code3"))
    assert rc == 1 and "already exists" in err


def test_delete_and_platform_clean(capsys, synth, root, tmp_path):
    leftover = root / "deadbeef"
    (leftover / "log").mkdir(parents=True)
    (leftover / "experiment_config.json").write_text("{}")
    config = tmp_path / "config.yml"
    config.write_text(f"trialCommand: python3 t.py\ntrialConcurrency: 1\nexperimentWorkingDirectory: {root}\n"
                      "searchSpace: {x: {_type: choice, _value: [1]}}\ntuner: {name: Random}\ntrainingService: {platform: local}\n")
    rc, out, err = run(capsys, "platform", "clean", "--config", str(config))
    assert rc == 0, err
    assert not leftover.exists() and (root / "synth001" / "db" / "nni.sqlite").exists()
    assert "never started" in out
    rc, out, _ = run(capsys, "experiment", "delete", "synth001", "-y")
    assert rc == 0 and not (root / "synth001").exists()
    assert ExperimentsRegistry(root).get("synth001") is None


@pytest.mark.parametrize("answer, deleted", [("y\n", True), ("yes\n", True), ("n\n", False), ("\n", False), ("", False)])
def test_delete_asks_for_confirmation(capsys, synth, root, monkeypatch, answer, deleted):
    """v2.5 asks before deleting; only y/yes deletes, no stdin at all (EOF) means no."""
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
    rc, out, _ = run(capsys, "experiment", "delete", "synth001")
    assert rc == 0 and "[y/N]" in out and "synth001" in out
    assert (root / "synth001").exists() is not deleted
    assert (ExperimentsRegistry(root).get("synth001") is None) is deleted
    assert ("Nothing deleted." in out) is not deleted


def test_delete_all_asks_and_yes_skips(capsys, synth, root, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    rc, out, _ = run(capsys, "experiment", "delete", "--all")
    assert rc == 0 and "Nothing deleted." in out and (root / "synth001").exists()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # -y: stdin is never read
    rc, out, _ = run(capsys, "experiment", "delete", "--all", "--yes")
    assert rc == 0 and "[y/N]" not in out and not (root / "synth001").exists()


def test_port_owner_is_named():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert not port_is_free(port)
        owner = describe_port_owner(port)
        if sys.platform.startswith("linux"):
            assert f"pid {os.getpid()}" in owner
    assert port_is_free(port)
