"""TpeTuner: the core contract, and that it optimizes."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nni.algorithms.hpo.random_tuner import RandomTuner
from nni.algorithms.hpo.tpe_tuner import TpeClassArgsValidator, TpeTuner
from nni.testing import BRANIN_SPACE, TunerContract, branin, minimize_with
from nni.utils import check_class_args

class TestTpeContract(TunerContract):
    supported_types = TunerContract.ALL_TYPES
    supports_nested_choice = True

    def make_tuner(self):
        return TpeTuner(optimize_mode="maximize", seed=0, tpe_args={"n_startup_jobs": 5})


def _best(tuner, space, f, n):
    return minimize_with(tuner, space, f, n)[0]


def test_beats_random_on_branin():
    tpe = [_best(TpeTuner(optimize_mode="minimize", seed=s), BRANIN_SPACE, branin, 50) for s in range(4)]
    rnd = [_best(RandomTuner(seed=s), BRANIN_SPACE, branin, 50) for s in range(4)]
    assert np.median(tpe) < np.median(rnd)
    assert np.median(tpe) < 0.6  # the optimum is 0.3979


def test_maximize_and_dict_metric():
    tuner = TpeTuner(optimize_mode="maximize", seed=1, tpe_args={"n_startup_jobs": 5})
    best = _best(tuner, {"x": {"_type": "uniform", "_value": [-1, 1]}}, lambda p: p["x"], 1)
    assert -1 <= best <= 1  # one trial in the space, its value is the best
    tuner = TpeTuner(optimize_mode="maximize", seed=1, tpe_args={"n_startup_jobs": 5})
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [-1, 1]}})
    xs = []
    for i in range(30):
        p = tuner.generate_parameters(i)
        xs.append(p["x"])
        tuner.receive_trial_result(i, p, {"default": p["x"], "other": 0})
    assert np.mean(xs[-10:]) > 0.3


def _spread(parallel: bool, seed: int) -> float:
    tuner = TpeTuner(optimize_mode="minimize", seed=seed, parallel_optimize=parallel, constant_liar_type="max",
                     tpe_args={"n_startup_jobs": 10})
    space = {"x": {"_type": "uniform", "_value": [0, 1]}, "y": {"_type": "uniform", "_value": [0, 1]}}
    _best(tuner, space, lambda p: (p["x"] - 0.3) ** 2 + (p["y"] - 0.7) ** 2, 20)
    batch = tuner.generate_multiple_parameters(list(range(100, 108)))
    pts = np.array([[p["x"], p["y"]] for p in batch])
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    return float(d[np.triu_indices(len(pts), 1)].min())  # the closest pair of the batch


def test_constant_liar_spreads_parallel_suggestions():
    with_liar = np.mean([_spread(True, s) for s in range(6)])
    without = np.mean([_spread(False, s) for s in range(6)])
    assert with_liar > 2 * without


def test_liar_default_min_is_worst_under_maximize():
    tuner = TpeTuner(optimize_mode="maximize", seed=0, parallel_optimize=True)
    from nni.algorithms.hpo._tuner_support import liar_loss
    from nni.utils import OptimizeMode

    assert liar_loss([1.0, 3.0], "min", OptimizeMode.Maximize) == -1.0  # loss of the worst metric
    assert liar_loss([1.0, 3.0], "max", OptimizeMode.Minimize) == 3.0
    assert tuner.constant_liar_type == "min"


def test_nested_parameters_only_when_branch_active():
    space = {"m": {"_type": "choice", "_value": [
        {"_name": "a", "lr": {"_type": "loguniform", "_value": [1e-4, 1]}},
        {"_name": "b", "k": {"_type": "randint", "_value": [1, 4]}}]}}

    def f(p):
        m = p["m"]
        return abs(math.log10(m["lr"]) + 2) if m["_name"] == "a" else 1 + m["k"]

    tuner = TpeTuner(optimize_mode="minimize", seed=3, tpe_args={"n_startup_jobs": 8})
    tuner.update_search_space(space)
    names = []
    for i in range(40):
        p = tuner.generate_parameters(i)
        assert set(p["m"]) == ({"_name", "lr"} if p["m"]["_name"] == "a" else {"_name", "k"})
        names.append(p["m"]["_name"])
        tuner.receive_trial_result(i, p, f(p))
    assert names[-15:].count("a") >= 10


def test_import_data_warm_start():
    tuner = TpeTuner(optimize_mode="minimize", seed=0, tpe_args={"n_startup_jobs": 10})
    tuner.update_search_space(BRANIN_SPACE)
    rng = np.random.default_rng(0)
    data = []
    for _ in range(30):
        p = {"x1": float(rng.uniform(-5, 10)), "x2": float(rng.uniform(0, 15))}
        data.append({"parameter": p, "value": branin(p)})
    tuner.import_data(data)
    assert len(tuner._rows) == 30
    ys = [branin(tuner.generate_parameters(i)) for i in range(10)]  # model-based straight away
    assert np.median(ys) < np.median([d["value"] for d in data])


def test_seed_reproducible():
    a = TpeTuner(seed=7)
    b = TpeTuner(seed=7)
    assert _best(a, BRANIN_SPACE, branin, 25) == _best(b, BRANIN_SPACE, branin, 25)


@pytest.mark.parametrize("args, key", [
    ({"optimize_mode": "max"}, "optimize_mode"),
    ({"constant_liar_type": "median"}, "constant_liar_type"),
    ({"parallel_optimize": "yes"}, "parallel_optimize"),
    ({"tpe_args": {"gamma": 2}}, "gamma"),
    ({"nonsense": 1}, "nonsense"),
])
def test_bad_class_args_name_the_key(args, key):
    with pytest.raises(ValueError, match=key):
        check_class_args(TpeClassArgsValidator, args)


def test_good_class_args():
    check_class_args(TpeClassArgsValidator, {"optimize_mode": "minimize", "parallel_optimize": True,
                                             "constant_liar_type": "mean", "tpe_args": {"n_startup_jobs": 5}})


@pytest.mark.parametrize("startup", ["maximin", "halton", "random"])
def test_startup_designs_cover_nested_and_all_types(startup):
    space = {"m": {"_type": "choice", "_value": [
        {"_name": "a", "lr": {"_type": "qlognormal", "_value": [1, 1, 1]}},
        {"_name": "b", "k": {"_type": "randint", "_value": [1, 4]}}]},
        "n": {"_type": "normal", "_value": [0, 1]}, "q": {"_type": "quniform", "_value": [2, 10, 5]}}
    tuner = TpeTuner(seed=0, tpe_args={"startup": startup, "n_startup_jobs": 6})
    tuner.update_search_space(space)
    for i in range(12):
        p = tuner.generate_parameters(i)
        assert p["q"] in (2, 5, 10)
        tuner.receive_trial_result(i, p, float(i))
    with pytest.raises(ValueError, match="startup"):
        check_class_args(TpeClassArgsValidator, {"tpe_args": {"startup": "lhs"}})


def test_magic_clip_counts_the_whole_history_too():
    from nni.algorithms.hpo._tpe_engine import Dim, ParzenEstimator, TpeSettings

    dims = [Dim(categorical=False, low=0.0, high=1.0)]
    good = np.array([[0.5], [0.5], [0.5]])  # coincident points: the clip alone sets the width
    geo = ParzenEstimator(dims, good, TpeSettings(), n_total=75)
    hyperopt = ParzenEstimator(dims, good, TpeSettings(magic_clip_count="estimator"), n_total=75)
    total = ParzenEstimator(dims, good, TpeSettings(magic_clip_count="total"), n_total=75)
    assert np.allclose(hyperopt.sigmas[1:, 0], 1 / 4)  # range / (1 + 3)
    assert np.allclose(geo.sigmas[1:, 0], 1 / 16)  # range / (1 + sqrt(3 * 75))
    assert np.allclose(total.sigmas[1:, 0], 1 / 76)
    assert geo.sigmas[0, 0] == 1.0  # the prior kernel keeps the whole range


def test_short_budget_exploits_earlier_than_hyperopt_clip():
    # 25 trials on Branin: the default clip gets closer to the optimum (0.398) than hyperopt's
    def median_best(**settings):
        out = []
        for seed in range(6):
            tuner = TpeTuner(optimize_mode="minimize", seed=seed)
            for key, value in settings.items():
                setattr(tuner.settings, key, value)
            out.append(_best(tuner, BRANIN_SPACE, branin, 25))
        return float(np.median(out))

    default = median_best()
    assert default < 0.9
    assert default < median_best(magic_clip_count="estimator")


_DISCRETE_SPACE = {
    "a": {"_type": "choice", "_value": [0, 1, 2, 3]},
    "b": {"_type": "randint", "_value": [0, 4]},
    "c": {"_type": "quniform", "_value": [0, 1, 0.5]},
}


def _discrete_loss(p):
    return (p["a"] - 1) ** 2 + (p["b"] - 2) ** 2 + p["c"]


def _configs(tuner, n, parallel=False):
    tuner.update_search_space(_DISCRETE_SPACE)
    seen = []
    for i in range(n):
        p = tuner.generate_parameters(i)
        seen.append((p["a"], p["b"], p["c"]))
        if not parallel:
            tuner.receive_trial_result(i, p, _discrete_loss(p))
    return seen


def test_config_dedup_never_repeats_while_untried_configurations_remain():
    # 4 * 4 * 3 = 48 configurations; the model concentrates on the optimum, which without
    # deduplication it would draw again and again
    for seed in range(3):
        seen = _configs(TpeTuner(optimize_mode="minimize", seed=seed), 30)
        assert len(set(seen)) == 30
        assert (1, 2, 0.0) in seen  # and it still finds the optimum
    repeats = [30 - len(set(_configs(TpeTuner(optimize_mode="minimize", seed=s, tpe_args={"config_dedup": False}), 30)))
               for s in range(3)]
    assert max(repeats) > 0  # the option really switches it off


def test_config_dedup_counts_pending_trials_and_stops_when_exhausted():
    tuner = TpeTuner(optimize_mode="minimize", seed=0, tpe_args={"n_startup_jobs": 2})
    tuner.update_search_space({"a": {"_type": "choice", "_value": [0, 1, 2]}})
    first = [tuner.generate_parameters(i) for i in range(2)]
    for i, p in enumerate(first):
        tuner.receive_trial_result(i, p, float(p["a"]))
    pending = tuner.generate_parameters(2)  # not yet reported: still not suggested twice
    nxt = tuner.generate_parameters(3)
    assert len({p["a"] for p in first} | {pending["a"], nxt["a"]}) == 3
    assert tuner.generate_parameters(4)["a"] in (0, 1, 2)  # space exhausted: a repeat, no error


def test_config_dedup_validated():
    check_class_args(TpeClassArgsValidator, {"tpe_args": {"config_dedup": False}})
    with pytest.raises(ValueError, match="config_dedup"):
        check_class_args(TpeClassArgsValidator, {"tpe_args": {"config_dedup": "no"}})
