"""The HPO benchmark: task optima, the same space for every peer, the runners, the command."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from nni.hpo_benchmark import (
    BenchmarkConfig,
    History,
    HyperoptRunner,
    NniTunerRunner,
    OptunaRunner,
    TASK_NAMES,
    get_task,
    make_runner,
    markdown_table,
    run_benchmark,
)
from nni.hpo_benchmark import space as hs
from nni.hpo_benchmark import tasks as ht
from nni.tuner import Tuner
from nni.utils import NoMoreTrialError

SYNTHETIC = [n for n in TASK_NAMES if get_task(n).synthetic]


# ----------------------------------------------------------------------------- tasks
@pytest.mark.parametrize("x1,x2", [(-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)])
def test_branin_minimum_at_its_three_argmins(x1, x2):
    assert ht.branin(x1, x2) == pytest.approx(0.397887, abs=1e-5)


def test_known_optima():
    assert ht.hartmann6(ht.HARTMANN6_ARGMIN) == pytest.approx(-3.32237, abs=1e-4)
    assert ht.hartmann3(ht.HARTMANN3_ARGMIN) == pytest.approx(-3.86278, abs=1e-4)
    assert ht.rosenbrock(np.ones(5)) == 0.0
    assert ht.rosenbrock([0, 0, 0, 0, 0]) == 4.0


@pytest.mark.parametrize("name", SYNTHETIC)
def test_task_optimum_params_reach_optimum_and_beat_random_points(name):
    task = get_task(name)
    assert hs.contains(task.search_space, task.optimum_params)
    assert task.evaluate(task.optimum_params) == pytest.approx(task.optimum, abs=1e-4)
    rng = np.random.default_rng(1)
    values = [task.evaluate(hs.sample_random(task.search_space, rng)) for _ in range(500)]
    assert min(values) >= task.optimum - 1e-6


def test_mixed_conditional_branches():
    f = ht.mixed_conditional
    base = {"color": "green", "y": 7, "lr": 10 ** -2.5}
    assert f({"model": {"_name": "linear", "x": 2.0}, **base}) == pytest.approx(1.0)
    assert f({"model": {"_name": "constant", "level": 0}, **base}) == pytest.approx(2.0)
    assert f({"model": {"_name": "poly", "x": 1.0, "degree": 5}, **base}) == pytest.approx(0.5)
    assert f({"model": {"_name": "poly", "x": 1.0, "degree": 3}, **{**base, "color": "blue"}}) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="model._name"):
        f({"model": {"_name": "cubic"}, **base})


def test_noisy_task_observations_are_seeded_and_evaluate_is_noiseless():
    task = get_task("noisy_hartmann3")
    p = task.optimum_params
    a = [task.observe(p, np.random.default_rng(5)) for _ in range(2)]
    assert a[0] == a[1] != task.evaluate(p)
    draws = [task.observe(p, rng) for rng in [np.random.default_rng(s) for s in range(200)]]
    assert np.std(draws) == pytest.approx(0.1, rel=0.25)
    assert np.mean(draws) == pytest.approx(task.optimum, abs=0.03)


def test_real_task_is_cached_and_in_range():
    task = get_task("rf_wine")
    params = {"n_estimators": 4.0, "max_depth": 2, "min_samples_leaf": 3, "max_features": 0.5,
              "criterion": "gini"}
    first = task.evaluate(params)
    done = task.function.evaluations
    assert 0.0 < first < 1.5
    # the same configuration, as another library would return it, costs nothing
    assert task.evaluate({**params, "n_estimators": np.float64(4.0), "max_depth": np.int64(2)}) == first
    assert task.function.evaluations == done


def test_svr_task_scores_a_good_and_a_bad_configuration():
    task = get_task("svr_diabetes")
    good = task.evaluate({"C": 2.0, "gamma": 0.01, "epsilon": 0.2, "kernel": {"_name": "rbf"}})
    bad = task.evaluate({"C": 0.01, "gamma": 1e-4, "epsilon": 0.5, "kernel": {"_name": "rbf"}})
    poly = task.evaluate({"C": 1.0, "gamma": 0.01, "epsilon": 0.1,
                          "kernel": {"_name": "poly", "degree": 2, "coef0": 0.5}})
    assert 0.45 < good < 0.55 and 0.9 < bad < 1.1  # 1.0 = predicting the mean
    assert 0.45 < poly < 1.5


def test_unknown_task_is_one_line_error():
    with pytest.raises(ValueError, match=r"--tasks: unknown task 'nope'; choose from branin"):
        get_task("nope")


def test_validate_rejects_bad_spaces():
    with pytest.raises(ValueError, match=r"search_space.x._type: 'gauss'"):
        hs.validate({"x": {"_type": "gauss", "_value": [0, 1]}})
    with pytest.raises(ValueError, match=r"search_space.x._value: lower bound"):
        hs.validate({"x": {"_type": "uniform", "_value": [1, 0]}})
    with pytest.raises(ValueError, match=r"needs dict options with '_name'"):
        hs.validate({"x": {"_type": "choice", "_value": [{"a": {"_type": "uniform", "_value": [0, 1]}}]}})


# ------------------------------------------------------------------ space conversion
def _leaves(space: dict, prefix: str = "") -> dict:
    """Flattened ``{path: spec}`` of every parameter (branch parameters included)."""
    out = {}
    for name, spec in space.items():
        if name == "_name":
            continue
        out[prefix + name] = spec
        if spec["_type"] == "choice" and any(isinstance(o, dict) for o in spec["_value"]):
            for o in spec["_value"]:
                out.update(_leaves(o, f"{prefix}{name}/{o['_name']}/"))
    return out


def _branches(params: dict, prefix: str = "") -> set:
    out = set()
    for k, v in params.items():
        if isinstance(v, dict):
            out.add(f"{prefix}{k}={v['_name']}")
            out |= _branches({kk: vv for kk, vv in v.items() if kk != "_name"}, f"{prefix}{k}/")
    return out


def _all_branches(space: dict, prefix: str = "") -> set:
    out = set()
    for name, spec in space.items():
        if name != "_name" and spec["_type"] == "choice":
            for o in spec["_value"]:
                if isinstance(o, dict):
                    out.add(f"{prefix}{name}={o['_name']}")
                    out |= _all_branches(o, f"{prefix}{name}/")
    return out


@pytest.mark.parametrize("name", TASK_NAMES)
def test_optuna_space_has_the_same_bounds(name):
    import optuna
    import optuna.distributions as od

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = get_task(name).search_space
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    leaves = _leaves(space)
    seen_branches = set()
    for _ in range(150):
        trial = study.ask()
        params = hs.suggest_optuna(trial, space)
        assert hs.contains(space, params), params
        seen_branches |= _branches(params)
        for key, dist in trial.distributions.items():
            kind, v = leaves[key]["_type"], leaves[key]["_value"]
            if kind == "choice":
                assert isinstance(dist, od.CategoricalDistribution)
                assert len(dist.choices) == len(v)
            elif kind == "randint":
                assert isinstance(dist, od.IntDistribution) and (dist.low, dist.high) == (v[0], v[1] - 1)
            else:
                assert isinstance(dist, od.FloatDistribution)
                assert (dist.low, dist.high) == pytest.approx((v[0], v[1]))
                assert dist.log == (kind in ("loguniform", "qloguniform"))
                if kind == "quniform":
                    assert dist.step == pytest.approx(v[2])
        study.tell(trial, 0.0)
    assert seen_branches == _all_branches(space)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_hyperopt_space_has_the_same_bounds(name):
    from hyperopt.pyll import stochastic

    space = get_task(name).search_space
    expr = hs.to_hyperopt(space)
    rng = np.random.default_rng(0)
    seen_branches = set()
    samples = [hs.from_hyperopt(space, stochastic.sample(expr, rng=rng)) for _ in range(300)]
    for params in samples:
        assert hs.contains(space, params), params
        seen_branches |= _branches(params)
    assert seen_branches == _all_branches(space)
    # continuous top-level parameters cover their range (same bounds, not a narrower one)
    for key, spec in space.items():
        if spec["_type"] in ("uniform", "loguniform"):
            xs = [p[key] for p in samples]
            lo, hi = spec["_value"]
            span = (math.log(hi) - math.log(lo)) if spec["_type"] == "loguniform" else hi - lo
            width = (math.log(max(xs)) - math.log(min(xs))) if spec["_type"] == "loguniform" else max(xs) - min(xs)
            assert width > 0.9 * span


def test_q_types_follow_nni_rounding_and_clipping_for_every_peer():
    import optuna
    from hyperopt.pyll import stochastic

    space = {"a": {"_type": "quniform", "_value": [2, 10, 5]},  # NNI values {2, 5, 10}
             "b": {"_type": "qloguniform", "_value": [1, 100, 10]},
             "c": {"_type": "quniform", "_value": [0, 1, 0.25]}}
    rng = np.random.default_rng(0)
    expr = hs.to_hyperopt(space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    got = {"a": set(), "c": set()}
    for _ in range(300):
        for params in (hs.sample_random(space, rng),
                       hs.from_hyperopt(space, stochastic.sample(expr, rng=rng)),
                       hs.suggest_optuna(study.ask(), space)):
            assert params["a"] in (2.0, 5.0, 10.0)
            assert 1 <= params["b"] <= 100 and (params["b"] % 10 == 0 or params["b"] in (1.0, 100.0))
            got["a"].add(params["a"])
            got["c"].add(params["c"])
    assert got["a"] == {2.0, 5.0, 10.0}
    assert got["c"] == {0.0, 0.25, 0.5, 0.75, 1.0}


def test_peer_conversion_of_unsupported_types():
    import optuna

    space = {"x": {"_type": "normal", "_value": [0, 1]}, "y": {"_type": "qlognormal", "_value": [0, 1, 1]}}
    study = optuna.create_study()
    with pytest.raises(ValueError, match=r"search_space.x._type: 'normal' has no Optuna distribution"):
        hs.suggest_optuna(study.ask(), space)
    from hyperopt.pyll import stochastic

    params = hs.from_hyperopt(space, stochastic.sample(hs.to_hyperopt(space), rng=np.random.default_rng(0)))
    assert set(params) == {"x", "y"} and params["y"] >= 0


def test_optuna_choice_of_lists_goes_by_index():
    import optuna

    space = {"layers": {"_type": "choice", "_value": [[16], [64, 64], [8, 8, 8]]}}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {tuple(hs.suggest_optuna(study.ask(), space)["layers"]) for _ in range(40)}
    assert seen == {(16,), (64, 64), (8, 8, 8)}
    dists, values = hs.optuna_distributions(space, {"layers": [64, 64]})
    assert values == {"layers": 1}


# ------------------------------------------------------------------------- runners
class CoordinateTuner(Tuner):
    """A tiny test tuner: random start, then perturbs the best point seen (continuous spaces).

    Records what the benchmark feeds it, so the test can check the Tuner-API traffic.
    """

    def __init__(self, seed=0, limit=None):
        self.rng = np.random.default_rng(seed)
        self.limit = limit
        self.space = None
        self.received = []
        self.imported = []
        self.ended = []
        self.best = None

    def update_search_space(self, search_space):
        self.space = search_space

    def generate_parameters(self, parameter_id, **kwargs):
        if self.limit is not None and parameter_id >= self.limit:
            raise NoMoreTrialError("done")
        if self.best is None or self.rng.uniform() < 0.3:
            return hs.sample_random(self.space, self.rng)
        params, _ = self.best
        out = {}
        for k, spec in self.space.items():
            lo, hi = spec["_value"]
            out[k] = float(np.clip(params[k] + self.rng.normal(0, 0.1 * (hi - lo)), lo, hi))
        return out

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        self.received.append((parameter_id, parameters, value))
        if self.best is None or value < self.best[1]:
            self.best = (parameters, value)

    def trial_end(self, parameter_id, success, **kwargs):
        self.ended.append((parameter_id, success))

    def import_data(self, data):
        self.imported.extend(data)


def test_runner_drives_the_tuner_api():
    made = []

    def factory(seed):
        made.append(CoordinateTuner(seed))
        return made[-1]

    runner = NniTunerRunner("coordinate", factory=factory)
    task = get_task("branin")
    hist = runner.optimize(task, 40, seed=3)
    tuner = made[0]
    assert tuner.space == task.search_space
    assert len(hist.values) == len(tuner.received) == 40
    assert [pid for pid, _, _ in tuner.received] == list(range(40))
    assert tuner.ended == [(i, True) for i in range(40)]
    for (_, params, value), v in zip(tuner.received, hist.values):
        assert value == v == task.evaluate(params)
    best = hist.best_so_far()
    assert best == list(np.minimum.accumulate(hist.values))
    assert best[-1] < best[0]
    assert hist.tuner_seconds >= 0


def test_runner_seeds_are_reproducible_and_distinct():
    runner = NniTunerRunner("coordinate", factory=lambda seed: CoordinateTuner(seed))
    task = get_task("hartmann6")
    a, b, c = (runner.optimize(task, 15, s).values for s in (1, 1, 2))
    assert a == b != c


def test_runner_stops_at_no_more_trials_and_pads_the_curve():
    runner = NniTunerRunner("limited", factory=lambda seed: CoordinateTuner(seed, limit=7))
    hist = runner.optimize(get_task("branin"), 20, seed=0)
    assert len(hist.values) == 7
    curve = hist.best_so_far(20)
    assert len(curve) == 20 and curve[7:] == [curve[6]] * 13


def test_latency_feeds_observations_through_import_data():
    made = []
    runner = NniTunerRunner("coordinate", factory=lambda seed: made.append(CoordinateTuner(seed)) or made[-1])
    latency = runner.suggestion_latency(get_task("branin"), 100, seed=0, repeats=3)
    assert 0 < latency < 1
    assert len(made[0].imported) == 100 and made[0].received == []
    assert all(set(d) == {"parameter", "value"} for d in made[0].imported)


def test_latency_without_import_data_uses_receive_trial_result():
    class NoImport(CoordinateTuner):
        import_data = Tuner.import_data

    made = []
    runner = NniTunerRunner("noimport", factory=lambda seed: made.append(NoImport(seed)) or made[-1])
    runner.suggestion_latency(get_task("branin"), 50, seed=0, repeats=1)
    assert len(made[0].received) == 50


def test_incumbent_of_a_noisy_run_is_chosen_by_observation():
    hist = History(observed=[1.0, 0.5, 0.7, 0.2], values=[1.1, 0.9, 0.1, 0.4])
    assert hist.best_so_far() == [1.1, 0.9, 0.9, 0.4]


@pytest.mark.parametrize("runner", [OptunaRunner("tpe"), OptunaRunner("random"),
                                    HyperoptRunner("tpe"), HyperoptRunner("random")],
                         ids=lambda r: r.name)
def test_peer_runners(runner):
    task = get_task("mixed_conditional")
    hist = runner.optimize(task, 25, seed=0)
    assert len(hist.values) == 25
    assert hist.values[0] >= min(hist.values) >= task.optimum
    assert runner.optimize(task, 25, seed=0).values == hist.values  # seeded
    assert 0 < runner.suggestion_latency(task, 60, seed=0, repeats=1) < 5


def test_make_runner_names_and_errors():
    assert make_runner("optuna-tpe").name == "optuna-tpe"
    assert make_runner("Hyperopt-Random").name == "hyperopt-random"
    with pytest.raises(ValueError, match=r"--tuners: Unknown tuner 'NoSuchTuner'"):
        make_runner("NoSuchTuner")
    with pytest.raises(ValueError, match=r"classArgs of 'x.y:Z' must be a JSON object"):
        make_runner("x.y:Z:{oops")
    runner = make_runner('nni.tuner:Tuner:{"a": 1}')
    assert isinstance(runner, NniTunerRunner) and runner.class_args == {"a": 1}


def test_run_benchmark_in_process_with_a_test_tuner(tmp_path):
    runner = NniTunerRunner("coordinate", factory=lambda seed: CoordinateTuner(seed))
    config = BenchmarkConfig(tasks=["branin", "noisy_hartmann3"], tuners=[runner, "optuna-random"],
                             seeds=3, trials=12, checkpoints=(5, 10), latency_obs=[20],
                             latency_repeats=1, workers=2, out=tmp_path, progress=False)
    report = run_benchmark(config)
    assert report["meta"]["workers"] == 1  # a lambda factory cannot go to another process
    assert report["meta"]["checkpoints"] == [5, 10, 12]
    for task in ("branin", "noisy_hartmann3"):
        for name in ("coordinate", "optuna-random"):
            runs = report["runs"][task][name]
            assert [r["seed"] for r in runs] == [0, 1, 2]
            s = report["summary"][task][name]
            for c in ("5", "10", "12"):
                assert s[c]["q1"] <= s[c]["median"] <= s[c]["q3"]
            assert s["5"]["median"] >= s["12"]["median"]
            assert report["latency"][task][name]["20"] > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(report["summary"]))
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "table.md").read_text()
    assert "| branin (min 0.397887) | coordinate |" in table and "N=20" in table
    assert table == markdown_table(report)


def test_benchmark_config_errors():
    with pytest.raises(ValueError, match="--seeds: must be at least 1"):
        run_benchmark(BenchmarkConfig(tasks=["branin"], tuners=["optuna-tpe"], seeds=0, out=None))
    with pytest.raises(ValueError, match="--tuners: each tuner may appear once"):
        run_benchmark(BenchmarkConfig(tasks=["branin"], tuners=["optuna-tpe", "optuna-tpe"], out=None))


@pytest.mark.slow
def test_quick_mode_end_to_end(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run([sys.executable, "-m", "nni.hpo_benchmark", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "results.json").read_text())
    assert report["meta"]["mode"] == "quick" and report["meta"]["seeds"] == 3
    assert report["meta"]["trials"] == 30 and report["meta"]["latency_obs"] == [100]
    # the wall time is recorded (not asserted: it swings with the machine's load)
    assert report["meta"]["wall_seconds"] > 0
    assert {"optuna-tpe", "optuna-random", "hyperopt-tpe", "hyperopt-random"} <= set(report["tuners"])
    assert {"SMAC", "GPTuner", "PPOTuner"} <= set(report["tuners"])  # QUICK_NNI_TUNERS
    assert report["summary"]["mixed_conditional"]["GPTuner"]["n/a"].startswith("search space")
    assert (out / "curves.png").stat().st_size > 10_000
    assert "| tuner | N=100 |" in proc.stdout
    assert "hpo-benchmark" in proc.stderr  # the progress bar


def test_command_line_user_error_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nni.hpo_benchmark", "--tasks", "nope", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --tasks: unknown task 'nope'")
    assert "Traceback" not in proc.stderr


def test_from_results_renders_an_earlier_report_again(tmp_path, capsys):
    from nni.hpo_benchmark.__main__ import main

    config = BenchmarkConfig(tasks=["branin", "rosenbrock5"], tuners=["optuna-random", "hyperopt-random"],
                             seeds=2, trials=6, latency_obs=[], workers=1, out=tmp_path / "a", progress=False)
    report = run_benchmark(config)
    table = markdown_table(report)
    assert "Head to head: tasks where" in table and "Suggestion latency" not in table
    assert main(["--from-results", str(tmp_path / "a" / "results.json"), "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "table.md").read_text() == table
    assert (tmp_path / "b" / "curves.png").exists()
    assert table in capsys.readouterr().out
    assert main(["--from-results", str(tmp_path / "missing.json")]) == 2
    assert "error: --from-results: cannot read" in capsys.readouterr().err


def test_registered_name_with_class_args_builds_its_tuner():
    from nni.hpo_benchmark.runners import make_runner

    runner = make_runner('Evolution:{"population_size": 7}')
    assert runner.name == 'Evolution:{"population_size": 7}'
    tuner = runner.make_tuner(seed=1)
    assert type(tuner).__name__ == "EvolutionTuner" and tuner.population_size == 7


def test_compare_runs_says_which_side_is_better_only_when_the_interval_excludes_zero():
    from nni.hpo_benchmark.benchmark import compare_runs

    clear = compare_runs([1.0, 1.1, 0.9, 1.05, 0.95] * 4, [2.0, 2.1, 1.9, 2.05, 1.95] * 4)
    assert clear["verdict"] == "a" and clear["diff"] == -1.0 and clear["p_a_better"] == 1.0 and clear["ci"][1] < 0
    worse = compare_runs([2.0, 2.1, 1.9] * 5, [1.0, 1.1, 0.9] * 5)
    assert worse["verdict"] == "b" and worse["p_a_better"] == 0.0
    same = compare_runs([1.0, 3.0, 2.0, 5.0, 4.0] * 3, [2.0, 1.0, 5.0, 3.0, 4.0] * 3)
    assert same["verdict"] == "tie" and same["ci"][0] <= 0 <= same["ci"][1] and same["p_a_better"] == 0.5


def test_report_compares_tpe_with_optuna_seed_by_seed():
    from nni.hpo_benchmark.benchmark import markdown_table

    runs = {"TPE": [{"best_so_far": [3.0, 1.0]} for _ in range(5)],
            "optuna-tpe": [{"best_so_far": [3.0, 2.0 + i / 10]} for i in range(5)]}
    report = {"meta": {"checkpoints": [1, 2], "seeds": 5, "date": "today", "latency_obs": []},
              "tuners": ["TPE", "optuna-tpe"], "tasks": {"t": {"optimum": None}},
              "summary": {"t": {n: {str(c): {"median": rs[0]["best_so_far"][c - 1], "q1": 0, "q3": 0} for c in (1, 2)}
                                | {"tuner_ms_per_trial": 1.0} for n, rs in runs.items()}},
              "ranks": {"TPE": 1.0, "optuna-tpe": 2.0}, "runs": {"t": runs}}
    text = markdown_table(report)
    assert "TPE against optuna-tpe, seed by seed" in text
    row = next(line for line in text.splitlines() if line.startswith("| t | 0 "))
    assert row.endswith("**TPE** |") and "P=0.50" in row and "P=1.00" in row
    assert "| **wins / ties / losses** | 0 / 1 / 0 | 1 / 0 / 0 |" in text
