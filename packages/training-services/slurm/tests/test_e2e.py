"""The slurm platform through ``nnictl create`` and the real manager, on a real SLURM cluster.

Trials complete and report metrics, a job cancelled with ``scancel`` re-queues its trial, a
hybrid local + slurm experiment uses both, and ``nnictl stop`` leaves ``squeue`` empty.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

server_testing = pytest.importorskip("nni.server.testing")  # nni-webui-server (the manager)
from nni.server.testing import experiment_id_of, free_port, rest_get, wait_until  # noqa: E402

pytestmark = pytest.mark.slow

NNICTL = str(Path(sys.executable).parent / "nnictl")

TRIAL = """\
import os, time, nni
p = nni.get_next_parameter()
for i in range(2):
    nni.report_intermediate_result(p["x"] * i)
    time.sleep(float(os.environ.get("TRIAL_SLEEP", "%(sleep)s")) / 2)
nni.report_final_result(p["x"])
print("on", os.environ.get("NNI_PLATFORM"), "job", os.environ.get("SLURM_JOB_ID"))
"""


class Nnictl:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "nni-experiments"
        self.env = dict(os.environ, NNI_EXPERIMENTS_DIR=str(self.root), NNI_CONFIG_DIR=str(tmp_path / "config"),
                        HOME=str(tmp_path / "home"))
        self.tmp = tmp_path

    def __call__(self, *args: str, ok: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        if not os.path.exists(NNICTL):
            pytest.skip("nnictl is not installed (nni-cli)")
        proc = subprocess.run([NNICTL, *args], capture_output=True, text=True, env=self.env, cwd=self.tmp, timeout=timeout)
        if ok:
            assert proc.returncode == 0, f"nnictl {' '.join(args)}: {proc.stderr}{proc.stdout}"
        return proc

    def write_config(self, sleep: float, **fields) -> Path:
        import yaml

        code = self.tmp / "code"
        code.mkdir(exist_ok=True)
        (code / "trial.py").write_text(TRIAL % {"sleep": sleep})
        config = {"searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}}, "trialCommand": f"{sys.executable} trial.py",
                  "trialCodeDirectory": str(code), "trialConcurrency": 2, "maxTrialNumber": 4, "tuner": {"name": "Random"},
                  "trainingService": {"platform": "slurm"}, **fields}
        path = self.tmp / "config.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def create(self, config: Path, port: int) -> str:
        return experiment_id_of(self("create", "--config", str(config), "--port", str(port)).stdout)

    def status(self, eid: str) -> str:
        return json.loads(self("experiment", "status", eid).stdout)["status"]

    def finish(self, eid: str, timeout: float = 180) -> list:
        wait_until(lambda: self.status(eid) in ("DONE", "ERROR"), timeout=timeout, what="the experiment to finish")
        assert self.status(eid) == "DONE", self("experiment", "show", eid).stdout
        return json.loads(self("trial", "ls", eid).stdout)

    def kill_managers(self) -> None:
        from nni.server.store import ExperimentsRegistry

        if (self.root / ".experiments.sqlite").exists():
            for record in ExperimentsRegistry(self.root).list():
                if record.get("pid"):
                    try:
                        os.killpg(record["pid"], signal.SIGKILL)
                    except OSError:
                        pass


@pytest.fixture
def nnictl(tmp_path, monkeypatch, slurm):
    tool = Nnictl(tmp_path)
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(tool.root))  # rest_get finds the managers' tokens
    (tmp_path / "home").mkdir()
    yield tool
    tool.kill_managers()


def _running(port):
    return [t for t in rest_get(port, "trial-jobs") if t["status"] == "RUNNING"]


def test_trials_report_metrics_and_a_cancelled_job_requeues_its_trial(nnictl, slurm):
    port = free_port()
    eid = nnictl.create(nnictl.write_config(3, maxTrialNumber=5), port)
    try:
        wait_until(lambda: len(_running(port)) == 2, timeout=60, what="two running trials")
        running = {t["trialJobId"] for t in _running(port)}
        jobs = slurm.active_jobs()
        assert len(jobs) == 2, slurm.squeue()
        subprocess.run(["scancel", *jobs], check=True)
        trials = nnictl.finish(eid)
        requeued = [t for t in trials if t["status"] == "SYS_CANCELED"]
        counted = [t for t in trials if t not in requeued]
        assert len(counted) == 5 and {t["status"] for t in counted} == {"SUCCEEDED"}, trials
        assert requeued and {t["trialJobId"] for t in requeued} <= running, trials
        assert all("re-queued" in t["message"] and "CANCELLED" in t["message"] for t in requeued), [t["message"] for t in requeued]
        # the re-runs got the lost trials' parameters
        params = lambda ts: {json.dumps(t["hyperParameters"], sort_keys=True) for t in ts}  # noqa: E731
        assert params(requeued) <= params(counted)
        finals = {m["trialJobId"] for m in rest_get(port, "metric-data") if m["type"] == "FINAL"}
        assert {t["trialJobId"] for t in counted} <= finals
        assert {t["platform"] for t in counted} == {"slurm"}
        folder = nnictl.root / eid / "trials" / counted[0]["trialJobId"]
        assert "on slurm job" in (folder / "trial.log").read_text()
        assert list(folder.glob("slurm-*.out"))
        nnictl("stop", eid)
        assert slurm.active_jobs() == [], slurm.squeue()
    finally:
        nnictl("stop", eid, ok=False)


def test_hybrid_local_and_slurm(nnictl, slurm):
    port = free_port()
    config = nnictl.write_config(0.5, maxTrialNumber=6, trainingService=[{"platform": "local"}, {"platform": "slurm", "maxRunners": 1}])
    eid = nnictl.create(config, port)
    try:
        trials = nnictl.finish(eid)
        assert len(trials) == 6 and {t["status"] for t in trials} == {"SUCCEEDED"}, trials
        assert {t["platform"] for t in trials} == {"local", "slurm"}
        nnictl("stop", eid)
        assert slurm.active_jobs() == [], slurm.squeue()
    finally:
        nnictl("stop", eid, ok=False)


def test_stop_while_trials_run_leaves_no_job(nnictl, slurm):
    port = free_port()
    eid = nnictl.create(nnictl.write_config(60, trialConcurrency=3), port)
    try:
        wait_until(lambda: len(_running(port)) == 3, timeout=60, what="three running trials")
        assert len(slurm.active_jobs()) == 3
        nnictl("stop", eid)
        assert slurm.active_jobs() == [], slurm.squeue()
        trials = json.loads(nnictl("trial", "ls", eid).stdout)
        assert {t["status"] for t in trials} == {"SYS_CANCELED"} or {t["status"] for t in trials} <= {"SYS_CANCELED", "USER_CANCELED"}, trials
    finally:
        nnictl("stop", eid, ok=False)
