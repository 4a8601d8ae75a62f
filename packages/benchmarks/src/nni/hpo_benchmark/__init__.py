"""The HPO tuner benchmark: NNI tuners side by side with Optuna and hyperopt.

Run it with ``python -m nni.hpo_benchmark`` (``--quick`` for CI); see the package README.
From Python::

    from nni.hpo_benchmark import BenchmarkConfig, run_benchmark

    report = run_benchmark(BenchmarkConfig(tasks=["branin"], tuners=["TPE", "optuna-tpe"],
                                           seeds=3, trials=30, latency_obs=[100], out="results"))
    print(report["summary"]["branin"]["TPE"]["30"]["median"])
"""
from __future__ import annotations

from .benchmark import BenchmarkConfig, load_report, markdown_table, plot_curves, run_benchmark, write_outputs
from .multifidelity import MF_TASKS, mf_table, run_multifidelity, write_mf_outputs
from .runners import (
    NNI_DEFAULT_TUNERS,
    QUICK_NNI_TUNERS,
    PEER_NAMES,
    History,
    HyperoptRunner,
    NniTunerRunner,
    OptunaRunner,
    Runner,
    make_runner,
)
from .tasks import QUICK_TASKS, TASK_NAMES, Task, get_task

__all__ = [
    "BenchmarkConfig", "run_benchmark", "load_report", "markdown_table", "plot_curves", "write_outputs",
    "Runner", "NniTunerRunner", "OptunaRunner", "HyperoptRunner", "History", "make_runner",
    "NNI_DEFAULT_TUNERS", "QUICK_NNI_TUNERS", "PEER_NAMES",
    "run_multifidelity", "mf_table", "write_mf_outputs", "MF_TASKS", "Task", "get_task", "TASK_NAMES", "QUICK_TASKS",
]
