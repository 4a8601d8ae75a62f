"""GPTuner: the core contract, classArgs errors, and that its model finds good regions."""
from __future__ import annotations


import numpy as np
import pytest

from nni.algorithms.hpo.gp_tuner import GPClassArgsValidator, GPTuner
from nni.algorithms.hpo.random_tuner import RandomTuner
from nni.testing import BRANIN_SPACE, TunerContract, branin, minimize_with
from nni.utils import check_class_args

class TestGpContract(TunerContract):
    supported_types = frozenset({"choice", "randint", "uniform", "quniform", "loguniform", "qloguniform"})
    numeric_choice_only = True
    n_trials = 14

    def make_tuner(self):
        return GPTuner(optimize_mode="maximize", cold_start_num=4, selection_num_warm_up=500,
                       selection_num_starting_points=10, seed=0)


def _best(tuner, space, f, n):
    return minimize_with(tuner, space, f, n)[0]


def test_acquisition_prefers_optimum_region_1d():
    # f has its minimum at x = 0.7; after 5 evenly spread points the EI peaks near it
    tuner = GPTuner(optimize_mode="minimize", cold_start_num=5, seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    for i, x in enumerate([0.05, 0.3, 0.5, 0.75, 0.95]):
        tuner.receive_trial_result(i, {"x": x}, (x - 0.7) ** 2)
    grid = [{"x": float(x)} for x in np.linspace(0, 1, 101)]
    acq = tuner.acquisition_values(grid)
    assert 0.55 <= grid[int(np.argmax(acq))]["x"] <= 0.85
    near, far = acq[60:81].mean(), np.concatenate([acq[:30], acq[90:]]).mean()
    assert near > far
    p = tuner.generate_parameters(10)
    assert 0.55 <= p["x"] <= 0.85


@pytest.mark.parametrize("utility", ["ei", "ucb", "poi"])
def test_beats_random_on_branin(utility):
    gp = [_best(GPTuner("minimize", utility=utility, kappa=2 if utility == "ucb" else 5,
                        selection_num_warm_up=2000, selection_num_starting_points=20, seed=s), BRANIN_SPACE, branin, 30)
          for s in range(2)]
    rnd = [_best(RandomTuner(seed=s), BRANIN_SPACE, branin, 30) for s in range(2)]
    assert np.median(gp) < np.median(rnd)
    assert np.median(gp) < 1.0  # optimum 0.398


def test_maximize_mode_and_discrete_types():
    space = {"k": {"_type": "choice", "_value": [1, 4, 2, 8]}, "n": {"_type": "randint", "_value": [0, 5]},
             "q": {"_type": "quniform", "_value": [0, 10, 2.5]}, "lr": {"_type": "qloguniform", "_value": [1, 1000, 10]}}
    tuner = GPTuner(optimize_mode="maximize", cold_start_num=4, selection_num_warm_up=1000, seed=1)
    tuner.update_search_space(space)
    seen = set()
    for i in range(20):
        p = tuner.generate_parameters(i)
        assert p["k"] in (1, 4, 2, 8) and p["n"] in range(5) and p["q"] in (0, 2.5, 5, 7.5, 10)
        key = tuple(sorted(p.items()))
        assert key not in seen  # never the same configuration twice while others remain
        seen.add(key)
        tuner.receive_trial_result(i, p, {"default": p["k"] + p["n"] + p["q"]})
    assert max(sum(dict(k)[n] for n in ("k", "n", "q")) for k in seen) >= 20


def test_concurrent_suggestions_differ():
    tuner = GPTuner("minimize", cold_start_num=3, selection_num_warm_up=1000, selection_num_starting_points=10, seed=0)
    _best(tuner, {"x": {"_type": "uniform", "_value": [0, 1]}}, lambda p: (p["x"] - 0.3) ** 2, 6)
    batch = tuner.generate_multiple_parameters([10, 11, 12])
    xs = sorted(p["x"] for p in batch)
    # running trials count at the model's mean: no point is suggested twice
    assert min(np.diff(xs)) > 1e-6


def test_import_data_counts_as_warm_up():
    tuner = GPTuner("minimize", cold_start_num=10, selection_num_warm_up=2000, seed=0)
    tuner.update_search_space(BRANIN_SPACE)
    rng = np.random.default_rng(0)
    data = []
    for _ in range(12):
        p = {"x1": float(rng.uniform(-5, 10)), "x2": float(rng.uniform(0, 15))}
        data.append({"parameter": p, "value": branin(p)})
    assert tuner.import_data(data + [{"parameter": {"x1": "bad"}, "value": 1}]) == 12
    values = [branin(tuner.generate_parameters(i)) for i in range(3)]
    assert min(values) < min(d["value"] for d in data) + 5  # model-based right away, not random


def test_string_choice_and_unsupported_types_rejected():
    tuner = GPTuner()
    with pytest.raises(ValueError, match=r"'k'.*not a number.*numerical choice"):
        tuner.update_search_space({"k": {"_type": "choice", "_value": ["a", "b"]}})
    with pytest.raises(ValueError, match=r"'x'.*'normal' is not supported by GPTuner"):
        tuner.update_search_space({"x": {"_type": "normal", "_value": [0, 1]}})
    with pytest.raises(ValueError, match="nested choice"):
        tuner.update_search_space({"m": {"_type": "choice", "_value": [{"_name": "a", "y": {"_type": "uniform", "_value": [0, 1]}}]}})


@pytest.mark.parametrize("args, message", [
    ({"utility": "pi"}, r"classArgs\.utility.*'ei', 'ucb', 'poi'"),
    ({"kappa": -1}, r"classArgs\.kappa"),
    ({"nu": "smooth"}, r"classArgs\.nu"),
    ({"cold_start_num": 1.5}, r"classArgs\.cold_start_num.*int"),
    ({"selection_num_warm_up": 0}, r"classArgs\.selection_num_warm_up"),
    ({"optimize_mode": "up"}, r"classArgs\.optimize_mode"),
    ({"gamma": 1}, r"classArgs\.gamma is not a known argument"),
])
def test_class_args_errors(args, message):
    with pytest.raises(ValueError, match=message):
        check_class_args(GPClassArgsValidator, args)


def test_class_args_documented_values_accepted():
    check_class_args(GPClassArgsValidator, {"optimize_mode": "minimize", "utility": "ucb", "kappa": 5, "xi": 0,
                                            "nu": 2.5, "alpha": 1e-6, "cold_start_num": 10,
                                            "selection_num_warm_up": 1e5, "selection_num_starting_points": 250})
    assert GPTuner(selection_num_warm_up=1e5).selection_num_warm_up == 100000
    with pytest.raises(ValueError, match="selection_num_warm_up must be a whole number"):
        GPTuner(selection_num_warm_up=10.5)


@pytest.mark.parametrize("nu", [0.5, 1.5, 2.5, float("inf")])
def test_acquisition_gradient_matches_finite_differences(nu):
    from nni.algorithms.hpo._gp_core import FittedGP, acquisition, acquisition_grad

    rng = np.random.default_rng(0)
    x = rng.random((25, 3))
    gp = FittedGP(x, np.sin(5 * x).sum(axis=1), nu=nu, alpha=1e-6, seed=0)
    points = rng.random((6, 3))
    mu, sd, dmu, dsd = gp.predict_grad(points)
    assert np.allclose((mu, sd), gp.predict(points))
    for utility in ("ei", "ucb", "poi"):
        value, grad = acquisition_grad(utility, mu, sd, dmu, dsd, 0.5, 5.0, 0.01)
        eps = 1e-6
        numeric = np.empty_like(grad)
        for k in range(3):
            shifted = points.copy()
            shifted[:, k] += eps
            numeric[:, k] = (acquisition(utility, *gp.predict(shifted), 0.5, 5.0, 0.01) - value) / eps
        assert np.allclose(grad, numeric, rtol=1e-3, atol=1e-4 * np.abs(grad).max()), utility


def test_fit_is_reused_while_the_data_is_the_same():
    tuner = GPTuner(optimize_mode="minimize", cold_start_num=3, seed=0)
    tuner.update_search_space(BRANIN_SPACE)
    rng = np.random.default_rng(0)
    data = [{"parameter": {"x1": float(a), "x2": float(b)}, "value": branin({"x1": float(a), "x2": float(b)})}
            for a, b in rng.uniform([-5, 0], [10, 15], (30, 2))]
    tuner.import_data(data)
    x, y = tuner._data()
    first = tuner._fit(x, y)
    assert tuner._fit(x, y) is first  # concurrent suggestions between two results: one model
    first_params = tuner.generate_parameters(100)  # running: counted at the model's mean
    second_params = tuner.generate_parameters(101)
    assert tuner._fit(x, y) is first and first_params != second_params
    tuner.receive_trial_result(100, first_params, 1.0)
    x, y = tuner._data()
    assert tuner._fit(x, y) is not first
