"""End-to-end experiments through the Python API with a real manager process."""
from __future__ import annotations

import json
import os
import signal
import textwrap
import time

import pytest

from nni.experiment import Experiment
from nni.experiment.config import ConfigError
from nni.experiment.experiment import RunningExperimentError
from nni.testing.scenario import expected_kill_step, trial_script

pytestmark = pytest.mark.slow

CURVE_TRIAL = textwrap.dedent(
    """\
    import time, nni
    p = nni.get_next_parameter()
    for step in range(1, 7):
        nni.report_intermediate_result(p["x"] * step)
        time.sleep(0.05)
    nni.report_final_result(p["x"] * 6)
    """
)


def _wait(exp, statuses, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = exp.get_status()
        if status in statuses:
            return status
        time.sleep(0.1)
    raise AssertionError(f"status {exp.get_status()} not in {statuses} after {timeout}s")


def test_tpe_medianstop_20_trials(make_experiment, free_port):
    exp = make_experiment(
        CURVE_TRIAL,
        {"x": {"_type": "uniform", "_value": [0, 1]}},
        trial_concurrency=4,
        max_trial_number=20,
    )
    exp.config.tuner.name = "TPE"
    exp.config.tuner.class_args = {"optimize_mode": "maximize"}
    exp.config.assessor.name = "Medianstop"
    exp.config.assessor.class_args = {"optimize_mode": "maximize", "start_step": 2}
    assert exp.run(free_port) is True
    # the manager has exited; read the experiment read-only
    view = Experiment.view(exp.id, port=free_port, non_blocking=True)
    try:
        trials = view.list_trial_jobs()
        statuses = [t.status for t in trials]
        assert len(trials) == 20
        assert set(statuses) <= {"SUCCEEDED", "EARLY_STOPPED"}
        assert "EARLY_STOPPED" in statuses
        assert statuses.count("SUCCEEDED") >= 1
        assert view.get_status() == "VIEWED"
        metrics = view.get_job_metrics()
        for t in trials:
            kinds = [m.type for m in metrics[t.trialJobId]]
            if t.status == "SUCCEEDED":
                assert kinds == ["PERIODICAL"] * 6 + ["FINAL"]
            else:
                assert "FINAL" not in kinds and len(kinds) < 6 + 1
        assert sorted(t.sequenceId for t in trials) == list(range(20))
        assert len(view.export_data()) == statuses.count("SUCCEEDED")
    finally:
        view.stop()


def test_crashing_trial_is_failed_with_stderr_tail(make_experiment, free_port):
    exp = make_experiment(
        "import nni\nnni.get_next_parameter()\nraise RuntimeError('the trial crashed on purpose')\n",
        {"x": {"_type": "choice", "_value": [1]}},
        trial_concurrency=1,
        max_trial_number=1,
    )
    exp.config.tuner.name = "Random"
    assert exp.run(free_port) is True  # the experiment itself completes
    exp.port = None
    view = Experiment.view(exp.id, port=free_port, non_blocking=True)
    try:
        (trial,) = view.list_trial_jobs()
        assert trial.status == "FAILED"
        assert "RuntimeError: the trial crashed on purpose" in trial.message
        assert trial.stderrPath.endswith("/stderr")
    finally:
        view.stop()


def test_kill_9_then_resume_loses_nothing(make_experiment, free_port, tmp_path):
    trial = textwrap.dedent(
        """\
        import time, nni
        p = nni.get_next_parameter()
        for i in range(4):
            nni.report_intermediate_result(i)
            time.sleep(0.1)
        nni.report_final_result(p["x"])
        """
    )
    exp = make_experiment(trial, {"x": {"_type": "uniform", "_value": [0, 1]}}, trial_concurrency=2, max_trial_number=10)
    exp.config.tuner.name = "Random"
    exp.start(free_port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stats = {s["trialJobStatus"]: s["trialJobNumber"] for s in exp.get_job_statistics()}
        if stats.get("SUCCEEDED", 0) >= 3 and stats.get("RUNNING", 0) >= 1:
            break
        time.sleep(0.05)
    before_trials = {t.trialJobId: t for t in exp.list_trial_jobs()}
    before_metrics = exp.get_job_metrics()
    os.kill(exp._process.pid, signal.SIGKILL)
    exp._process.wait()
    exp._process = None
    exp.port = None

    resumed = Experiment.resume(exp.id, port=free_port, wait_completion=False)
    try:
        assert _wait(resumed, {"DONE"}) == "DONE"
        after = {t.trialJobId: t for t in resumed.list_trial_jobs()}
        metrics = resumed.get_job_metrics()
    finally:
        resumed.stop()
    for tid, t in before_trials.items():
        assert tid in after
        if t.status == "SUCCEEDED":
            assert after[tid].status == "SUCCEEDED"
        # every metric recorded before the crash is still there, with the same data
        old = [(m.type, m.sequence, m.data) for m in before_metrics.get(tid, [])]
        new = [(m.type, m.sequence, m.data) for m in metrics.get(tid, [])]
        assert new[: len(old)] == old
    counted = [t for t in after.values() if not (t.status == "SYS_CANCELED" and "re-queued" in (t.message or ""))]
    assert len(counted) == 10  # maxTrialNumber, interrupted trials replaced, not added
    # each counted trial has its outcome: it succeeded, or it was interrupted after reporting its
    # final result (then that result is kept, see nni.server.resume)
    for t in counted:
        assert t.status == "SUCCEEDED" or (t.status == "SYS_CANCELED" and "final result is kept" in (t.message or "")), (t.status, t.message)
        assert [m for m in metrics.get(t.trialJobId, []) if m.type == "FINAL"], t.trialJobId


def test_protocol_scenario(make_experiment, free_port, tmp_path):
    algo_dir = tmp_path / "algos"
    algo_dir.mkdir()
    (algo_dir / "recording.py").write_text(
        textwrap.dedent(
            f"""\
            from nni.assessor import AssessResult
            from nni.testing.scenario import NaturalsTuner, SumModAssessor
            OUT = {str(tmp_path)!r}

            class RecordingTuner(NaturalsTuner):
                def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
                    super().receive_trial_result(parameter_id, parameters, value, **kwargs)
                    with open(OUT + "/tuner_result.txt", "a") as f:
                        f.write(f"{{parameters['x']}} {{value}}\\n")

            class RecordingAssessor(SumModAssessor):
                def assess_trial(self, trial_job_id, trial_history):
                    result = super().assess_trial(trial_job_id, trial_history)
                    if result is AssessResult.Bad:
                        with open(OUT + "/assessor_result.txt", "a") as f:
                            f.write(f"{{trial_history[0]}} {{len(trial_history)}}\\n")
                    return result
            """
        )
    )
    exp = make_experiment(trial_script(steps=10, delay=0.15), {}, trial_concurrency=4)
    exp.config.tuner = {"className": "recording.RecordingTuner", "codeDirectory": str(algo_dir), "classArgs": {"limit": 8}}
    exp.config.assessor = {"className": "recording.RecordingAssessor", "codeDirectory": str(algo_dir)}
    assert exp.run(free_port) is True
    tuner_lines = sorted((tmp_path / "tuner_result.txt").read_text().split("\n")[:-1])
    assessor_lines = sorted((tmp_path / "assessor_result.txt").read_text().split("\n")[:-1])
    xs = range(1, 9)
    assert tuner_lines == sorted(f"{x} {x ** 10}" for x in xs if expected_kill_step(x) is None)
    assert assessor_lines == sorted(f"{x} {expected_kill_step(x)}" for x in xs if expected_kill_step(x) is not None)


GPU_TRIAL = textwrap.dedent(
    """\
    import os, time, nni
    nni.get_next_parameter()
    start = time.time()
    time.sleep(0.6)
    nni.report_final_result({"default": 1, "gpus": os.environ["CUDA_VISIBLE_DEVICES"], "start": start, "end": time.time()})
    """
)


def test_gpu_scheduling_with_fake_inventory(make_experiment, free_port, tmp_path, monkeypatch):
    inventory = tmp_path / "gpus.json"
    inventory.write_text(json.dumps({"gpuCount": 2, "gpuInfos": [{"index": 0, "activeProcessNum": 0}, {"index": 1, "activeProcessNum": 0}]}))
    monkeypatch.setenv("NNI_GPU_INVENTORY", str(inventory))
    exp = make_experiment(GPU_TRIAL, {"x": {"_type": "uniform", "_value": [0, 1]}}, trial_concurrency=6, max_trial_number=8, trial_gpu_number=1)
    exp.config.tuner.name = "Random"
    exp.config.training_service.use_active_gpu = False
    exp.config.training_service.max_trial_number_per_gpu = 2
    exp.start(free_port)
    try:
        saw_waiting_reason = False
        while exp.get_status() not in ("DONE", "ERROR"):
            for t in exp.list_trial_jobs():
                if t.status == "WAITING" and t.message and "waiting for 1 free GPU" in t.message:
                    saw_waiting_reason = True
            time.sleep(0.05)
        assert exp.get_status() == "DONE"
        finals = [m.data for ms in exp.get_job_metrics().values() for m in ms if m.type == "FINAL"]
    finally:
        exp.stop()
    assert len(finals) == 8
    assert {f["gpus"] for f in finals} == {"0", "1"}
    for gpu in ("0", "1"):  # never more than maxTrialNumberPerGpu trials at once on a GPU
        spans = [(f["start"], f["end"]) for f in finals if f["gpus"] == gpu]
        for s, _ in spans:
            assert sum(1 for a, b in spans if a <= s < b) <= 2
    assert saw_waiting_reason


def test_impossible_gpu_request_fails_before_start(make_experiment, free_port, tmp_path, monkeypatch):
    inventory = tmp_path / "gpus.json"
    inventory.write_text(json.dumps([{"index": 0}, {"index": 1}]))
    monkeypatch.setenv("NNI_GPU_INVENTORY", str(inventory))
    exp = make_experiment(GPU_TRIAL, {}, trial_concurrency=1, trial_gpu_number=3)
    exp.config.tuner.name = "Random"
    exp.config.training_service.use_active_gpu = True
    with pytest.raises(RunningExperimentError, match="trialGpuNumber: each trial asks for 3 GPU"):
        exp.start(free_port)


def test_bad_configs_fail_before_anything_starts(make_experiment, free_port, tmp_path):
    exp = make_experiment("", {"x": {"_type": "choice", "_value": [1]}}, trial_concurrency=1)
    exp.config.tuner.name = "TPEE"
    with pytest.raises(ConfigError) as err:
        exp.start(free_port)
    assert "\n" not in str(err.value) and str(err.value).startswith("tuner.name")
    exp2 = make_experiment("", {"x": {"_type": "choice", "_value": [1]}}, trial_concurrency=0)
    exp2.config.tuner.name = "TPE"
    with pytest.raises(ConfigError, match="trialConcurrency"):
        exp2.run(free_port)
    exp3 = make_experiment("", {"x": {"_type": "nope", "_value": [1]}}, trial_concurrency=1)
    exp3.config.tuner.name = "TPE"
    with pytest.raises(ConfigError, match="searchSpace"):
        exp3.start(free_port)
    root = tmp_path / "nni-experiments"
    assert not root.exists() or not [p for p in root.iterdir() if not p.name.startswith(".")]


def test_dispatcher_failure_is_error_with_message(make_experiment, free_port, tmp_path):
    algo_dir = tmp_path / "algos"
    algo_dir.mkdir()
    (algo_dir / "broken.py").write_text(
        "from nni.testing.scenario import NaturalsTuner\n"
        "class BrokenTuner(NaturalsTuner):\n"
        "    def receive_trial_result(self, *a, **k):\n"
        "        raise ValueError('tuner exploded on the first result')\n"
    )
    exp = make_experiment("import nni\nnni.get_next_parameter()\nnni.report_final_result(1)\n", {}, trial_concurrency=1, max_trial_number=5)
    exp.config.tuner = {"className": "broken.BrokenTuner", "codeDirectory": str(algo_dir)}
    exp.start(free_port)
    try:
        assert _wait(exp, {"ERROR"}, 30) == "ERROR"
        errors = exp._client.call("get_status")["errors"]
        assert any("tuner exploded on the first result" in e for e in errors)
    finally:
        exp.stop()


def test_controls_while_running(make_experiment, free_port):
    # 2 s trials: the custom trial must be added before the tuner's trials reach the new maximum
    trial = "import time, nni\np = nni.get_next_parameter()\ntime.sleep(p.get('sleep', 2))\nnni.report_final_result(p['x'])\n"
    exp = make_experiment(trial, {"x": {"_type": "uniform", "_value": [0, 1]}}, trial_concurrency=1, max_trial_number=3)
    exp.config.tuner.name = "Random"
    exp.start(free_port)
    try:
        connected = Experiment.connect(free_port)
        assert connected.id == exp.id and connected.config.trial_concurrency == 1
        profile = exp.get_experiment_profile()
        assert profile["params"]["maxTrialNum"] == 3 and profile["revision"] == 0
        exp.update_trial_concurrency(2)
        exp.update_max_trial_number(5)
        exp.update_max_experiment_duration("1h")
        exp.update_search_space({"x": {"_type": "uniform", "_value": [0, 0.5]}})
        profile = exp.get_experiment_profile()
        assert profile["revision"] == 4
        assert profile["params"]["trialConcurrency"] == 2 and profile["params"]["maxTrialNum"] == 5
        assert profile["params"]["maxExecDuration"] == 3600
        seq = exp._client.call("add_customized_trial", body={"hyperParameters": {"x": 7, "sleep": 5}})["sequenceId"]
        assert isinstance(seq, int)
        deadline = time.monotonic() + 30
        custom = None
        while time.monotonic() < deadline and custom is None:
            for t in exp.list_trial_jobs():
                if t.hyperParameters and t.hyperParameters[0].parameters.get("x") == 7 and t.status == "RUNNING":
                    custom = t
            time.sleep(0.05)
        assert custom is not None and custom.hyperParameters[0].parameter_source == "customized"
        exp._client.call("cancel_trial_job", id=custom.trialJobId)
        assert _wait(exp, {"DONE"}) == "DONE"
        assert exp.get_trial_job(custom.trialJobId).status == "USER_CANCELED"
        assert len(exp.list_trial_jobs()) == 5
        meta = exp.get_experiment_metadata()
        assert meta["id"] == exp.id and meta["port"] == free_port and meta["status"] == "DONE"
        assert any(m["id"] == exp.id for m in exp.get_all_experiments_metadata())
    finally:
        exp.stop()
    # stopped: read from the store, as after run() (NNI v2.5 users look at results afterwards)
    assert exp.get_status() == "STOPPED" and len(exp.list_trial_jobs()) == 5


def test_max_experiment_duration_stops_creating_trials(make_experiment, free_port):
    trial = "import time, nni\nnni.get_next_parameter()\ntime.sleep(0.8)\nnni.report_final_result(1)\n"
    exp = make_experiment(trial, {"x": {"_type": "uniform", "_value": [0, 1]}}, trial_concurrency=2, max_experiment_duration="2s")
    exp.config.tuner.name = "Random"
    t0 = time.monotonic()
    assert exp.run(free_port) is True
    assert time.monotonic() - t0 < 20
    view = Experiment.view(exp.id, port=free_port, non_blocking=True)
    try:
        trials = view.list_trial_jobs()
        profile = view.get_experiment_profile()
    finally:
        view.stop()
    # trials were created for about 2 s (two at a time, 0.8 s each), and every one finished
    assert 2 <= len(trials) <= 10
    assert all(t.status == "SUCCEEDED" for t in trials)
    assert profile["execDuration"] >= 2 and profile["params"]["maxExecDuration"] == 2


def test_use_annotation(make_experiment, free_port):
    trial = textwrap.dedent(
        '''\
        import nni
        """@nni.variable(nni.choice(2, 3), name=x)"""
        x = 1
        """@nni.report_final_result(x)"""
        '''
    )
    exp = make_experiment(trial, None, trial_concurrency=1, max_trial_number=2)
    exp.config.search_space = None
    exp.config.use_annotation = True
    exp.config.tuner.name = "Random"
    exp.start(free_port)
    try:
        assert _wait(exp, {"DONE", "ERROR"}) == "DONE"
        finals = sorted(m.data for ms in exp.get_job_metrics().values() for m in ms if m.type == "FINAL")
        space = json.loads(exp.get_experiment_profile()["params"]["searchSpace"])
    finally:
        exp.stop()
    assert len(finals) == 2 and set(finals) <= {2, 3}
    assert list(space.values()) == [{"_type": "choice", "_value": [2, 3]}]


def test_stop_cancels_running_trials(make_experiment, free_port):
    trial = "import time, nni\nnni.get_next_parameter()\nnni.report_intermediate_result(1)\ntime.sleep(60)\n"
    exp = make_experiment(trial, {"x": {"_type": "uniform", "_value": [0, 1]}}, trial_concurrency=2, max_trial_number=4)
    exp.config.tuner.name = "Random"
    exp.start(free_port)
    deadline = time.monotonic() + 30
    while sum(t.status == "RUNNING" for t in exp.list_trial_jobs()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    exp_id = exp.id
    t0 = time.monotonic()
    exp.stop()
    assert time.monotonic() - t0 < 15
    from nni.server.store import ExperimentsRegistry

    assert ExperimentsRegistry().get(exp_id)["status"] == "STOPPED"
    view = Experiment.view(exp_id, port=free_port, non_blocking=True)
    try:
        trials = view.list_trial_jobs()
        assert len(trials) == 2 and all(t.status == "USER_CANCELED" for t in trials)
        assert view.get_experiment_metadata()["status"] == "VIEWED"  # while a viewer serves it
        assert all(len(ms) == 1 for ms in view.get_job_metrics().values())
    finally:
        view.stop()
