"""NNI annotation end to end: NNI v2.5's ``mnist-annotation`` example (its annotations, data from
scikit-learn's digits) through ``nnictl ss_gen`` and ``nnictl create`` with a real manager and
real trial processes."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trials" / "mnist-annotation"
NNICTL = str(Path(sys.executable).parent / "nnictl")

EXPECTED_SPACE = {
    "mnist/max_pool/function_choice": {"_type": "choice", "_value": ["max_pool(images, pool_size)", "avg_pool(images, pool_size)"]},
    "mnist/self.hidden_size/choice": {"_type": "choice", "_value": [32, 64, 128]},
    "mnist/learning_rate/uniform": {"_type": "uniform", "_value": [0.05, 0.5]},
    "mnist/batch_size/choice": {"_type": "choice", "_value": [50, 250, 500]},
    "mnist/dropout_rate/choice": {"_type": "choice", "_value": [0.1, 0.5]},
}


@pytest.fixture()
def nnictl(tmp_path, monkeypatch):
    root = tmp_path / "nni-experiments"
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(root))  # Experiment.connect finds the token in this registry
    # the example's trialCommand is "python3 mnist.py": this interpreter's python3 comes first
    env = dict(os.environ, NNI_EXPERIMENTS_DIR=str(root), NNI_CONFIG_DIR=str(tmp_path / "config"), HOME=str(tmp_path / "home"),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    (tmp_path / "home").mkdir()

    def run(*args: str, cwd: Path = tmp_path, ok: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([NNICTL, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
        if ok:
            assert proc.returncode == 0, f"nnictl {' '.join(args)}: {proc.stderr}{proc.stdout}"
        return proc

    yield run
    from nni.server.store import ExperimentsRegistry

    if (root / ".experiments.sqlite").exists():  # never leave a manager behind
        for record in ExperimentsRegistry(root).list():
            if record.get("pid"):
                try:
                    os.killpg(record["pid"], signal.SIGKILL)
                except OSError:
                    pass


def test_ss_gen_on_the_example(nnictl, tmp_path):
    out = tmp_path / "space.json"
    nnictl("ss_gen", "--trial_command", "python3 mnist.py", "--trial_dir", str(EXAMPLE), "--file", str(out))
    space = json.loads(out.read_text())
    assert space == EXPECTED_SPACE and list(space) == list(EXPECTED_SPACE)
    # the defaults: the current folder, written to nni_auto_gen_search_space.json
    code = tmp_path / "code"
    shutil.copytree(EXAMPLE, code)
    result = nnictl("ss_gen", "--trial_command", "python3 mnist.py", cwd=code)
    assert json.loads((code / "nni_auto_gen_search_space.json").read_text()) == EXPECTED_SPACE
    assert "nni_auto_gen_search_space.json" in result.stdout


@pytest.mark.slow
def test_annotated_example_through_nnictl_create(nnictl, free_port):
    from nni.experiment import Experiment

    out = nnictl("create", "--config", str(EXAMPLE / "config.yml"), "--port", str(free_port)).stdout
    exp_id = out.split("The experiment id is ")[1].split()[0]
    deadline = time.monotonic() + 180
    while json.loads(nnictl("experiment", "status", exp_id).stdout)["status"] not in ("DONE", "ERROR"):
        assert time.monotonic() < deadline, "the experiment did not finish"
        time.sleep(0.5)
    exp = Experiment.connect(free_port)
    try:
        assert exp.get_status() == "DONE"
        profile = exp.get_experiment_profile()
        trials = exp.list_trial_jobs()
        metrics = exp.get_job_metrics()
    finally:
        nnictl("stop", exp_id)
    assert json.loads(profile["params"]["searchSpace"]) == EXPECTED_SPACE
    assert len(trials) == 4 and all(t.status == "SUCCEEDED" for t in trials)
    for trial in trials:
        parameters = trial.hyperParameters[0].parameters
        assert set(parameters) == set(EXPECTED_SPACE)
        assert parameters["mnist/batch_size/choice"] in (50, 250, 500)
        assert parameters["mnist/dropout_rate/choice"] in (0.1, 0.5)
        assert parameters["mnist/self.hidden_size/choice"] in (32, 64, 128)
        assert parameters["mnist/max_pool/function_choice"] in EXPECTED_SPACE["mnist/max_pool/function_choice"]["_value"]
        assert 0.05 <= parameters["mnist/learning_rate/uniform"] <= 0.5
        reported = metrics[trial.trialJobId]
        # test accuracy every 100 of the 500 steps, then the final one
        assert [m.type for m in reported] == ["PERIODICAL"] * 5 + ["FINAL"]
        assert all(isinstance(m.data, float) and 0 <= m.data <= 1 for m in reported)
        # the converted code found every parameter it looked up under the generated keys
        trial_dir = Path(trial.logPath.split("localhost:", 1)[1])
        # the converted code found every parameter it looked up under the generated keys (no warning)
        assert (trial_dir / "stderr").read_text() == ""
        assert (trial_dir / "stdout").read_text() == f"Final test accuracy: {reported[-1].data:.4f}\n"
    converted = (Path(trial_dir).parents[1] / "annotation" / "mnist.py").read_text()
    assert "batch_size = nni.choice({50: 50, 250: 250, 500: 500}, name='batch_size', key='mnist/batch_size/choice'" in converted


def test_folder_without_annotation_runs_as_it_is(nnictl, free_port, tmp_path):
    from nni.experiment import Experiment

    code = tmp_path / "plain"
    code.mkdir()
    (code / "trial.py").write_text("import os, nni\nnni.get_next_parameter()\nnni.report_final_result(1.5)\nprint(os.getcwd())\n")
    config = tmp_path / "config.yml"
    config.write_text(f"trialCommand: python3 trial.py\ntrialCodeDirectory: {code}\ntrialConcurrency: 1\nmaxTrialNumber: 1\n"
                      "useAnnotation: true\ntuner: {name: Random}\ntrainingService: {platform: local}\n")
    exp_id = nnictl("create", "--config", str(config), "--port", str(free_port)).stdout.split("The experiment id is ")[1].split()[0]
    deadline = time.monotonic() + 120
    while json.loads(nnictl("experiment", "status", exp_id).stdout)["status"] not in ("DONE", "ERROR"):
        assert time.monotonic() < deadline, "the experiment did not finish"
        time.sleep(0.3)
    exp = Experiment.connect(free_port)
    try:
        trials = exp.list_trial_jobs()
        assert exp.get_status() == "DONE"
    finally:
        nnictl("stop", exp_id)
    # an empty search space has a single point: one trial, then the tuner has no more
    assert len(trials) == 1 and trials[0].status == "SUCCEEDED"
    for trial in trials:
        trial_dir = Path(trial.logPath.split("localhost:", 1)[1])
        assert (trial_dir / "stdout").read_text().strip() == str(code)  # the user's folder, not a copy
