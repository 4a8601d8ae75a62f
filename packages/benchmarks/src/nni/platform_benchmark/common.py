"""One timed experiment through the real manager (``Experiment.run``), shared by the platform benchmarks
and the engine benchmark's remote mode."""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from pathlib import Path

__all__ = ["TRIAL", "timed_run", "free_port", "quiet"]

#: The benchmark trial: ask for parameters, sleep, report.
TRIAL = """\
import time, nni
nni.get_next_parameter()
time.sleep(%s)
nni.report_final_result(1.0)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def quiet():
    """Silence this process's stdout (``Experiment.run`` prints the manager's progress)."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def timed_run(workdir: Path, name: str, trials: int, concurrency: int, training_service, trial_seconds: float,
              python: str = sys.executable) -> dict:
    """Run ``trials`` trials of ``trial_seconds`` at ``concurrency`` on ``training_service``, each trial
    started as ``<python> trial.py`` (give a name such as ``python3`` where the trials run on other machines).

    Returns ``wall_s`` (``Experiment.run`` from start to the end of the last trial), ``trials_span_s``
    (first trial start to last trial end: without the platform's own start-up), ``succeeded``,
    ``trial_overhead_s`` (median RUNNING -> end beyond the trial's own sleep) and ``experiment_dir``.
    """
    from nni.experiment import Experiment
    from nni.experiment.config import ExperimentConfig

    code = workdir / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "trial.py").write_text(TRIAL % trial_seconds)
    config = ExperimentConfig.from_dict({
        "experimentName": name,
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "trialCommand": f"{python} trial.py",
        "trialCodeDirectory": str(code),
        "trialConcurrency": concurrency,
        "maxTrialNumber": trials,
        "tuner": {"name": "Random"},
        "trainingService": training_service,
        "experimentWorkingDirectory": str(workdir / "experiments"),
    }, validate=True)
    exp = Experiment(config)
    t0 = time.perf_counter()
    with quiet():
        ok = exp.run(free_port())
    wall = time.perf_counter() - t0
    jobs = exp.list_trial_jobs()
    latency = sorted((j.endTime - j.startTime) / 1000 - trial_seconds for j in jobs if j.endTime and j.startTime)
    exp_dir = workdir / "experiments" / exp.id
    starts = [j.startTime for j in jobs if j.startTime]
    ends = [j.endTime for j in jobs if j.endTime]
    span = (max(ends) - min(starts)) / 1000 if starts and ends else None  # first trial start -> last trial end
    return {"done": ok, "wall_s": wall, "trials_span_s": span, "succeeded": sum(j.status == "SUCCEEDED" for j in jobs),
            "trial_overhead_s": latency[len(latency) // 2] if latency else None, "experiment_dir": str(exp_dir)}
