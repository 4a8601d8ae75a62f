"""RayTrainingService without a cluster: capacity arithmetic, one-line errors before Ray starts,
the driver's protocol (a bad line, a command before init), and the package's import rules."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from nni.runtime.runner_listener import ListenError
from nni.runtime.training_service import ExperimentContext, RequestNeverSatisfiable
from nni.training_services.ray import RayPlatformError, RayTrainingService, trials_that_fit
from nni.training_services.ray.service import _is_loopback


def _ctx(tmp_path, gpus=None) -> ExperimentContext:
    return ExperimentContext("abcd1234", str(tmp_path / "exp"), "python3 trial.py", str(tmp_path), trial_gpu_number=gpus)


def test_trials_that_fit_counts_per_node_and_takes_the_scarcest_resource():
    nodes = [{"resources": {"CPU": 8, "GPU": 2, "ssd": 1}}, {"resources": {"CPU": 3}}, {"resources": {"CPU": 16, "GPU": 1}}]
    assert trials_that_fit(nodes, {"CPU": 1, "GPU": 0}) == 27
    assert trials_that_fit(nodes, {"CPU": 2, "GPU": 0}) == 4 + 1 + 8
    assert trials_that_fit(nodes, {"CPU": 1, "GPU": 1}) == 3  # a trial cannot span nodes
    assert trials_that_fit(nodes, {"CPU": 1, "GPU": 0.5}) == 6
    assert trials_that_fit(nodes, {"CPU": 1, "ssd": 1}) == 1
    assert trials_that_fit(nodes, {"CPU": 0.1}) == 80 + 30 + 160  # fractions do not lose a slot to rounding
    assert trials_that_fit(nodes, {"CPU": 0, "GPU": 0}) is None  # nothing asked: no limit of ours
    assert trials_that_fit([], {"CPU": 1}) == 0


def test_defaults_come_from_the_config_and_the_experiment(tmp_path):
    ts = RayTrainingService({"platform": "ray"}, _ctx(tmp_path, gpus=1))
    assert ts.demand == {"CPU": 1, "GPU": 1} and ts.reuse and ts.address is None and ts.capacity() is None
    ts = RayTrainingService({"platform": "ray", "numCpusPerTrial": 0.5, "numGpusPerTrial": 0, "resources": {"ssd": 1},
                             "reuseMode": False, "address": "auto"}, _ctx(tmp_path))
    assert ts.demand == {"CPU": 0.5, "GPU": 0, "ssd": 1} and not ts.reuse and ts.address == "auto"


def test_gpus_asked_by_the_experiment_but_not_given_to_ray_are_refused(tmp_path):
    ts = RayTrainingService({"platform": "ray", "numGpusPerTrial": 0}, _ctx(tmp_path))
    with pytest.raises(RequestNeverSatisfiable, match="numGpusPerTrial: 2"):
        ts.check_request(2)
    ts.check_request(0)


def test_missing_ray_is_one_line_with_the_install_command(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    ts = RayTrainingService({"platform": "ray"}, _ctx(tmp_path))
    with pytest.raises(RayPlatformError) as info:
        asyncio.run(ts.start())
    assert "\n" not in str(info.value) and "pip install 'nni-ts-ray[ray]'" in str(info.value)


def test_a_manager_ip_not_of_this_machine_fails_in_one_line_at_start(tmp_path):
    ts = RayTrainingService({"platform": "ray", "nniManagerIp": "203.0.113.7"}, _ctx(tmp_path))
    with pytest.raises(ListenError) as info:  # not this machine's address: nothing starts
        asyncio.run(ts.start())
    assert str(info.value).startswith("trainingService.nniManagerIp: cannot listen") and "203.0.113.7" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("address, loopback", [("127.0.0.1:6379", True), ("localhost:1", True), ("ray://127.0.0.5:10001", True),
                                               ("[::1]:6379", True), ("10.0.0.1:6379", False), ("auto", False)])
def test_loopback_addresses(address, loopback):
    assert _is_loopback(address) is loopback


def test_driver_answers_bad_lines_and_commands_before_init_and_exits_at_end_of_input():
    lines = b"not json\n" + json.dumps({"op": "launch", "id": "x"}).encode() + b"\n"
    proc = subprocess.run([sys.executable, "-m", "nni.training_services.ray.driver"], input=lines, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["ev"] for e in events] == ["error", "error", "bye"]
    assert "not a command" in events[0]["error"] and "launch before init" in events[1]["error"]


def test_the_runner_task_body_runs_the_runner_and_reports_its_exit(tmp_path):
    from nni.training_services.ray.driver import run_runner_task

    out = run_runner_task(["--connect", "127.0.0.1:1", "--runner-id", "r1", "--connect-timeout", "0.2"], {"NNI_RUNNER_TOKEN": "t"},
                          "nni.training_services.local.runner")
    assert out["rc"] == 3 and "cannot reach the manager at 127.0.0.1:1" in out["stderr"] and out["node"]


def test_the_runner_task_body_leaves_the_ray_worker_as_it_found_it(monkeypatch):
    """The runner runs inside the Ray worker, which runs other tasks afterwards: its signal
    handlers, environment and log handlers are restored."""
    import logging
    import os
    import signal

    from nni.training_services.ray.driver import run_runner_task

    monkeypatch.delenv("NNI_RUNNER_TOKEN", raising=False)
    mine = lambda *a: None  # noqa: E731 - stands for Ray's own SIGTERM handler
    old = signal.signal(signal.SIGTERM, mine)
    handlers = list(logging.getLogger("nni").handlers)
    try:
        out = run_runner_task(["--connect", "127.0.0.1:1", "--runner-id", "r2", "--connect-timeout", "0"], {"NNI_RUNNER_TOKEN": "t"},
                              "nni.training_services.local.runner")
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, old)
    assert out["rc"] == 3 and "cannot reach the manager" in out["stderr"]
    assert "NNI_RUNNER_TOKEN" not in os.environ
    assert logging.getLogger("nni").handlers == handlers


def test_arguments_the_task_body_does_not_know_run_the_runner_as_a_process():
    from nni.training_services.ray.driver import run_runner_task

    out = run_runner_task(["--connect", "127.0.0.1:1", "--runner-id", "r3", "--connect-timeout", "0", "--log-level", "DEBUG"],
                          {"NNI_RUNNER_TOKEN": "t"}, "nni.training_services.local.runner")
    assert out["rc"] == 3 and "cannot reach the manager at 127.0.0.1:1" in out["stderr"]


def test_trials_wait_in_the_backlog_until_start_and_are_cancelled_or_stopped_there(tmp_path):
    from nni.runtime.training_service import StateEvent, TrialJobStatus, TrialSpec

    ts = RayTrainingService({"platform": "ray"}, _ctx(tmp_path, gpus=1))

    async def main():
        a = await ts.submit(TrialSpec("a", 0, "{}", gpu_number=1))
        await ts.submit(TrialSpec("b", 1, "{}"))
        assert a.status == TrialJobStatus.WAITING and a.working_directory == str(tmp_path / "exp" / "trials" / "a")
        assert (tmp_path / "exp" / "trials" / "a").is_dir()
        assert ts._specs["a"].gpu_number is None  # Ray gives the GPUs; the runner must not pick any
        with pytest.raises(KeyError):  # no runner has it
            await ts.send_parameter("a", "{}")
        await ts.cancel("a")
        await ts.cancel("a")  # a final trial: nothing happens
        await ts.stop()
        with pytest.raises(RuntimeError, match="^the ray training service is stopping$"):
            await ts.submit(TrialSpec("c", 2, "{}"))
        return ts.get_nowait()

    events = [e for e in asyncio.run(main()) if isinstance(e, StateEvent)]
    assert [(e.trial_id, e.status) for e in events] == [("a", TrialJobStatus.USER_CANCELED), ("b", TrialJobStatus.SYS_CANCELED)]
    assert events[1].message == "experiment stopped before the trial started" and not events[1].requeue
    assert ts.runners_started == 0
