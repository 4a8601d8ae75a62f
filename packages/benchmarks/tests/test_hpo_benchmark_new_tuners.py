"""The benchmark's tuner set (every built-in tuner, n/a where a tuner rejects a task's space)
and the multi-fidelity comparison (Hyperband, BOHB, random search at equal budget)."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from nni.hpo_benchmark import NNI_DEFAULT_TUNERS, QUICK_NNI_TUNERS, BenchmarkConfig, markdown_table, run_benchmark
from nni.hpo_benchmark import multifidelity as mf
from nni.hpo_benchmark.runners import make_runner
from nni.hpo_benchmark.tasks import get_task
from nni.runtime import registry


def test_default_tuners_are_every_builtin_for_a_static_objective():
    installed = set(registry.list_names("tuner"))
    assert set(NNI_DEFAULT_TUNERS) == {"TPE", "Random", "Anneal", "Evolution", "SMAC", "GPTuner", "MetisTuner",
                                       "DNGOTuner", "PBTTuner", "PPOTuner"}
    assert set(NNI_DEFAULT_TUNERS) <= installed
    assert set(QUICK_NNI_TUNERS) <= set(NNI_DEFAULT_TUNERS)
    # only tuners without a search space to benchmark are left out
    assert installed - set(NNI_DEFAULT_TUNERS) == {"BatchTuner", "GridSearch", "NetworkMorphism"}


@pytest.mark.parametrize("tuner, task, reason", [
    ("GPTuner", "mixed_conditional", "nested choice"),
    ("MetisTuner", "svr_diabetes", "'loguniform' is not supported"),
    ("DNGOTuner", "rf_wine", "'gini'"),
    ("PPOTuner", "branin", "'uniform' is not supported"),
    ("SMAC", "svr_diabetes", "nested choice"),
])
def test_unsupported_gives_the_tuners_own_reason(tuner, task, reason):
    why = make_runner(tuner).unsupported(get_task(task))
    assert why is not None and reason in why and "\n" not in why


@pytest.mark.parametrize("tuner, task", [("GPTuner", "branin"), ("SMAC", "rf_wine"), ("PBTTuner", "svr_diabetes"),
                                         ("TPE", "mixed_conditional"), ("optuna-tpe", "mixed_conditional")])
def test_supported_spaces_are_not_na(tuner, task):
    assert make_runner(tuner).unsupported(get_task(task)) is None


def test_rejected_space_is_reported_na_and_the_run_goes_on(tmp_path):
    config = BenchmarkConfig(tasks=["branin", "mixed_conditional"], tuners=["GPTuner", "PPOTuner", "Random"],
                             seeds=2, trials=6, checkpoints=(3,), latency_obs=[8], latency_repeats=1,
                             workers=1, out=tmp_path, progress=False)
    report = run_benchmark(config)
    s = report["summary"]
    assert s["branin"]["GPTuner"]["6"]["median"] >= 0.397887 - 1e-6
    assert s["mixed_conditional"]["GPTuner"]["n/a"].startswith("search space 'model[0]': nested choice")
    assert "n/a" in s["branin"]["PPOTuner"] and "n/a" in s["mixed_conditional"]["PPOTuner"]
    assert report["runs"]["mixed_conditional"]["GPTuner"] == []
    assert report["latency"]["branin"]["GPTuner"]["8"] > 0 and "n/a" in report["latency"]["branin"]["PPOTuner"]
    # ranks only over the tasks a tuner could search; never-run tuners have none
    assert report["ranks"]["Random"] in (1.0, 1.5, 2.0) and math.isnan(report["ranks"]["PPOTuner"])
    table = markdown_table(report)
    assert "| mixed_conditional (min 0) | GPTuner | n/a (search space 'model[0]': nested choice" in table
    assert "| branin (min 0.397887) | PPOTuner | n/a (search space 'x1': type 'uniform'" in table
    assert "| PPOTuner | n/a | 0 |" in table and "| GPTuner | " in table
    h2h = next(line for line in table.splitlines() if line.startswith("| GPTuner | ") and "/" in line)
    cells = [c.strip() for c in h2h.strip("|").split("|")]  # columns GPTuner, PPOTuner, Random
    assert cells[2] == "n/a" and cells[3] in ("0/1", "1/1")  # against Random only branin counts
    latency_row = [line for line in table.splitlines() if line.startswith("| PPOTuner |")][-1]
    assert latency_row == "| PPOTuner | n/a |"
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["summary"]["mixed_conditional"]["GPTuner"] == s["mixed_conditional"]["GPTuner"]
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_budgeted_objective_is_exact_at_full_budget_and_biased_below():
    space, f, _ = mf.MF_TASKS["branin"]
    params = {"x1": 3.0, "x2": 2.0}
    observe = mf.budgeted(f, seed=0)
    assert observe(params, mf.MAX_BUDGET) == f(params)
    low = [observe(params, 1) - f(params) for _ in range(400)]
    assert abs(sum(low) / len(low) - 20 * 26 / 27) < 1.0  # bias 20(1 - b/R), noise sd 5(1 - b/R)


def test_advisors_are_driven_through_the_protocol_within_the_budget():
    seen = []
    space, f, _ = mf.MF_TASKS["hartmann3"]
    adv = mf.make_method("Hyperband", seed=0)
    mf.AdvisorDriver(adv).run(space, mf.budgeted(f, 0), 300, lambda p, b, v: seen.append((p, b, v)))
    budgets = [b for _, b, _ in seen]
    assert set(budgets) <= {1, 3, 9, 27} and budgets[:27] == [1] * 27  # bracket s=3 starts at budget 1
    assert 27 in budgets and sum(budgets) <= 300
    assert all(set(p) == {"x1", "x2", "x3"} for p, _, _ in seen)


def test_multifidelity_report_shape():
    report = mf.run_multifidelity(tasks=["branin"], seeds=2, full_evaluations=12)
    assert report["methods"] == ["Random", "Hyperband", "BOHB"]
    assert report["meta"]["total_budget"] == 12 * 27
    for name in report["methods"]:
        s = report["summary"]["branin"][name]
        assert set(s) == {"0.25", "0.5", "1.0", "trials", "full_budget_trials"}
        final = s["1.0"]
        assert 0.397887 - 1e-6 <= final["q1"] <= final["median"] <= final["q3"]
        assert s["0.25"]["median"] >= s["1.0"]["median"]
        assert [r["seed"] for r in report["runs"]["branin"][name]] == [0, 1]
    assert report["summary"]["branin"]["Random"]["trials"] == 12
    assert report["summary"]["branin"]["Hyperband"]["trials"] > 12  # cheap low-budget trials
    table = mf.mf_table(report)
    assert "| branin (min 0.397887) | BOHB |" in table and "25 % budget | 50 % budget | 100 % budget" in table


def test_multifidelity_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nni.hpo_benchmark", "--multifidelity", "--tasks", "branin",
                           "--seeds", "1", "--mf-evaluations", "10", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| branin (min 0.397887) | Hyperband |" in proc.stdout
    saved = json.loads((tmp_path / "multifidelity.json").read_text())
    assert saved["meta"]["seeds"] == 1 and set(saved["summary"]["branin"]) == {"Random", "Hyperband", "BOHB"}
    assert (tmp_path / "multifidelity.md").read_text() in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "nni.hpo_benchmark", "--multifidelity", "--tasks", "svr_diabetes",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == ("error: --tasks: 'svr_diabetes' is not a multi-fidelity task; "
                                  "choose from branin, hartmann3")
