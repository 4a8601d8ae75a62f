"""nnictl against real managers: the whole life of an experiment, the error paths, and a
registered custom tuner used by name."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from nni.server.testing import wait_until as _wait, experiment_id_of as _id_of

pytestmark = pytest.mark.slow

TRIAL = """\
import os, time, nni
p = nni.get_next_parameter()
nni.report_intermediate_result(p["x"] / 2)
# the first trial runs long so that the test can kill it
time.sleep(60 if os.environ.get("NNI_TRIAL_SEQ_ID") == "0" else 0.1)
nni.report_final_result(p["x"])
"""


def _final(trial):
    finals = trial.get("finalMetricData") or []
    return json.loads(finals[-1]["data"]) if finals else None


def _trials(nnictl, eid):
    """``nnictl trial ls`` prints v2.5's JSON: the REST trial-job objects."""
    out = nnictl("trial", "ls", eid).stdout
    return [{"id": t["trialJobId"], "seq": t["sequenceId"], "status": t["status"], "final": _final(t)} for t in json.loads(out)]


def test_lifecycle(nnictl, write_config, free_port, tmp_path):
    config = write_config(TRIAL, maxTrialNumber=6)
    out = nnictl("create", "--config", str(config), "--port", str(free_port)).stdout
    eid = _id_of(out)
    assert "INFO: Successfully started experiment!" in out and f"http://127.0.0.1:{free_port}" in out
    assert "1. nnictl experiment show" in out
    assert eid in nnictl("experiment", "list").stdout
    token = (nnictl.root / eid / "access_token").read_text()
    assert nnictl("webui", "url").stdout.strip() == f"Web UI urls: http://127.0.0.1:{free_port}/?token={token}"

    # update: every field, checked through the profile
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"x": {"_type": "uniform", "_value": [0, 0.5]}}))
    nnictl("update", "concurrency", eid, "--value", "3")
    nnictl("update", "trialnum", "--value", "8")
    nnictl("update", "duration", eid[:4], "-v", "10m")
    nnictl("update", "searchspace", eid, "--filename", str(space))
    params = json.loads(nnictl("experiment", "show", eid).stdout)["params"]
    assert (params["trialConcurrency"], params["maxTrialNum"], params["maxExecDuration"]) == (3, 8, 600)
    assert json.loads(params["searchSpace"])["x"]["_value"] == [0, 0.5]
    bad = nnictl("update", "duration", eid, "-v", "soon", ok=False)
    assert bad.returncode == 1 and bad.stderr.startswith("ERROR: --value: expected a duration")

    # trial kill of the long first trial
    first = _wait(lambda: next((t for t in _trials(nnictl, eid) if t["seq"] == 0 and t["status"] == "RUNNING"), None), what="trial 0 running")
    assert "was killed" in nnictl("trial", "kill", eid, "--trial_id", first["id"]).stdout
    _wait(lambda: next(t for t in _trials(nnictl, eid) if t["seq"] == 0)["status"] == "USER_CANCELED", what="USER_CANCELED")
    _wait(lambda: json.loads(nnictl("experiment", "status", eid).stdout)["status"] == "DONE", what="DONE")
    trials = _trials(nnictl, eid)
    assert len(trials) == 8 and sum(t["status"] == "SUCCEEDED" for t in trials) == 7
    head = [t for t in _trials_from(nnictl("trial", "ls", eid, "--head", "2", "--table").stdout)]
    best = sorted((float(t["final"]) for t in trials if t["status"] == "SUCCEEDED"), reverse=True)[:2]
    assert [float(t["final"]) for t in head] == best
    assert [_final(t) for t in json.loads(nnictl("trial", "ls", eid, "--head", "2").stdout)] == best

    # export / import
    exported = tmp_path / "export.json"
    nnictl("experiment", "export", eid, "--filename", str(exported), "--type", "json", "--intermediate")
    data = json.loads(exported.read_text())
    assert len(data) == 7 and all(d["intermediate"] == [pytest.approx(d["value"] / 2)] for d in data)
    nnictl("experiment", "export", eid, "-f", str(tmp_path / "export.csv"), "--type", "csv")
    assert len((tmp_path / "export.csv").read_text().splitlines()) == 8
    imported = nnictl("experiment", "import", eid, "--filename", str(exported)).stdout
    assert "Import data success! Sent 7 records" in imported and "the manager stored 7" in imported
    assert "The tuner (RandomTuner) received 7 records" in imported
    imported = nnictl("experiment", "import", eid, "--filename", str(tmp_path / "export.csv")).stdout
    assert "Sent 7 records" in imported and "the manager stored 7" in imported

    # top shows the running experiment until interrupted
    top = subprocess.Popen([nnictl.executable, "top", "--time", "0.2"], stdout=subprocess.PIPE, text=True, env=nnictl.env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(top.stdout), daemon=True)
    reader.start()
    # interrupt once it drew the table (its start-up takes seconds on a loaded machine)
    _wait(lambda: any(f"| {eid} |" in line for line in list(lines)), timeout=60, what="nnictl top output")
    time.sleep(0.5)
    top.send_signal(signal.SIGINT)
    top.wait(timeout=30)
    reader.join(timeout=30)
    top_out = "".join(lines)
    assert top.returncode == 0 and f"| {eid} |" in top_out and "SUCCEEDED: 7" in top_out
    assert f"experimentName: cli-e2e" in nnictl("config", "show").stdout
    assert nnictl("log", "stderr", eid, "--path").stdout.split()[0].endswith("log/nnictl_stderr.log")

    # stop; a stopped experiment can be read but not changed
    assert "Stop experiment success" in nnictl("stop", eid).stdout
    assert "No experiment is running" in nnictl("experiment", "list").stdout
    refused = nnictl("update", "concurrency", eid, "-v", "1", ok=False)
    assert refused.returncode == 1 and refused.stderr.strip() == f"ERROR: experiment {eid} is not running (status STOPPED); resume it with 'nnictl resume {eid}'"
    assert len(_trials(nnictl, eid)) == 8

    # resume, then view
    out = nnictl("resume", eid, "--port", str(free_port)).stdout
    assert "Successfully resumed experiment!" in out
    assert json.loads(nnictl("experiment", "status").stdout)["status"] in ("INITIALIZED", "RUNNING", "DONE", "NO_MORE_TRIAL")
    nnictl("stop", "--port", str(free_port))
    nnictl("view", eid, "--port", str(free_port))
    assert "VIEWED" in nnictl("experiment", "list").stdout
    refused = nnictl("trial", "kill", eid, "-T", first["id"], ok=False)
    assert refused.returncode == 1
    view_refused = nnictl("update", "trialnum", "-v", "9", ok=False)
    assert "view mode" in view_refused.stderr
    nnictl("stop", eid[:3] + "*")

    # delete
    assert nnictl.managers() == []
    for answer in ("n\n", ""):  # "n", then no stdin at all (EOF): nothing is deleted
        kept = subprocess.run([nnictl.executable, "experiment", "delete", eid], input=answer, capture_output=True, text=True,
                              env=nnictl.env, timeout=60)
        assert kept.returncode == 0 and "[y/N]" in kept.stdout and "Nothing deleted." in kept.stdout
        assert (nnictl.root / eid).exists()
    nnictl("experiment", "delete", eid, "-y")
    assert not (nnictl.root / eid).exists() and eid not in nnictl("experiment", "list", "--all").stdout


def _trials_from(out):
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| ") and "trialJobId" not in line]
    return [{"id": r[0], "final": r[5]} for r in rows]


def test_error_paths(nnictl, write_config, free_port, tmp_path):
    config = write_config("import nni\nnni.report_final_result(nni.get_next_parameter()['x'])\n")
    # busy port: named process, a suggestion
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        busy = s.getsockname()[1]
        proc = nnictl("create", "--config", str(config), "--port", str(busy), ok=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert f"port {busy} is already in use by pid {os.getpid()}" in proc.stderr and "--port" in proc.stderr
    # malformed config: the field is named
    bad = write_config(None, name="bad.yml", trialConcurrency="two")
    proc = nnictl("create", "--config", str(bad), "--port", str(free_port), ok=False)
    assert proc.returncode == 1 and proc.stderr.startswith("ERROR: trialConcurrency:") and len(proc.stderr.strip().splitlines()) == 1
    proc = nnictl("create", "--config", str(tmp_path / "missing.yml"), ok=False)
    assert proc.returncode == 1 and "file not found" in proc.stderr
    # the manager dies at start: its log lines are shown
    gpu = write_config(None, name="gpu.yml", trialGpuNumber=64, trainingService={"platform": "local", "useActiveGpu": True})
    proc = nnictl("create", "--config", str(gpu), "--port", str(free_port), ok=False)
    assert proc.returncode == 1 and "Last lines of" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("ERROR: the experiment manager exited with code 1: trialGpuNumber:")
    # unknown ids
    for args in (["stop", "nothere"], ["experiment", "show", "nothere"], ["resume", "nothere"], ["trial", "ls", "nothere"]):
        proc = nnictl(*args, ok=False)
        assert proc.returncode == 1 and "'nothere' not found" in proc.stderr and "Traceback" not in proc.stderr, args
    proc = nnictl("stop", ok=False)
    assert proc.returncode == 1 and proc.stderr.strip() == "ERROR: no experiment is running; give an experiment id (see 'nnictl experiment list --all')"


DEMO_TUNER = """\
from nni.tuner import Tuner
from nni.utils import ClassArgsValidator


class DemoTuner(Tuner):
    def __init__(self, optimize_mode="maximize", start=0):
        self.start = start

    def update_search_space(self, search_space):
        self.space = search_space

    def generate_parameters(self, parameter_id, **kwargs):
        return {"x": self.start + parameter_id}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        pass


class DemoValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs):
        if kwargs.get("optimize_mode", "maximize") not in ("maximize", "minimize"):
            raise ValueError("optimize_mode must be maximize or minimize")
"""


def test_registered_tuner_used_by_name(nnictl, write_config, free_port, tmp_path):
    folder = tmp_path / "customized_tuner"
    folder.mkdir()
    (folder / "demo_cli_tuner.py").write_text(DEMO_TUNER)
    (folder / "meta_file.yml").write_text("algoType: tuner\nbuiltinName: demotuner\nclassName: demo_cli_tuner.DemoTuner\n"
                                          "classArgsValidator: demo_cli_tuner.DemoValidator\n")
    nnictl("algo", "register", "--meta", str(folder / "meta_file.yml"))
    assert "demotuner" in nnictl("algo", "list").stdout
    config = write_config("import nni\nnni.report_final_result(nni.get_next_parameter()['x'])\n", maxTrialNumber=3,
                          tuner={"name": "demotuner", "classArgs": {"optimize_mode": "maximize", "start": 100}})
    bad = write_config(None, name="bad.yml", tuner={"name": "demotuner", "classArgs": {"optimize_mode": "sideways"}})
    proc = nnictl("create", "--config", str(bad), "--port", str(free_port), ok=False)
    assert proc.returncode == 1 and "optimize_mode must be maximize or minimize" in proc.stderr
    eid = _id_of(nnictl("create", "--config", str(config), "--port", str(free_port)).stdout)
    _wait(lambda: json.loads(nnictl("experiment", "status", eid).stdout)["status"] == "DONE", what="DONE")
    exported = tmp_path / "e.json"
    nnictl("experiment", "export", eid, "-f", str(exported), "--type", "json")
    assert sorted(d["value"] for d in json.loads(exported.read_text())) == [100, 101, 102]
    nnictl("stop", "--all")


def test_saved_package_viewed_elsewhere(nnictl, free_port, tmp_path):
    """save -> load on "another machine" (another experiments root) -> view, logs, TensorBoard."""
    from nni.server.store import ExperimentsRegistry
    from nni.server.testing import synthetic_experiment

    synthetic_experiment(nnictl.root / "pkgexp01", n_trials=5, experiment_id="pkgexp01", registry=ExperimentsRegistry(nnictl.root))
    package = tmp_path / "saved.tar.gz"
    nnictl("experiment", "save", "pkgexp01", "--path", str(package))
    other_root = tmp_path / "other-machine"
    nnictl.env["NNI_EXPERIMENTS_DIR"] = str(other_root)
    nnictl.root = other_root
    os.environ["NNI_EXPERIMENTS_DIR"] = str(other_root)  # restored by the fixture's monkeypatch; RestClient reads the token there
    nnictl("experiment", "load", "--path", str(package), "--codeDir", str(tmp_path / "code-here"))
    out = nnictl("view", "--experiment_dir", str(other_root / "pkgexp01"), "--port", str(free_port)).stdout
    assert "The experiment id is pkgexp01" in out
    assert "| pkgexp01 | synthetic | VIEWED" in nnictl("experiment", "list").stdout
    assert nnictl("log", "trial", "-T", "T00002", "--path").stdout.split()[0] == str(other_root / "pkgexp01" / "trials" / "T00002" / "trial.log")
    from nni.runtime.rest_api import RestClient

    assert RestClient(free_port).call("get_trial_file", id="T00002", filename="stdout") == "stdout of T00002\n"
    tb = nnictl("tensorboard", "start", "-T", "T00000", ok=False)
    assert (tb.returncode == 0 and "http://127.0.0.1:" in tb.stdout) or "tensorboard" in tb.stderr.lower()
    nnictl("tensorboard", "stop")
    nnictl("stop")
    assert "| pkgexp01 | synthetic | DONE" in nnictl("experiment", "list", "--all").stdout  # the status before viewing
