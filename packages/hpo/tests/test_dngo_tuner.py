"""DNGOTuner: the core contract, numeric-only spaces, the BLR head, and that it optimizes."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from nni.algorithms.hpo.dngo_tuner import DNGO_TYPES, DNGOClassArgsValidator, DNGOTuner, _fit_blr
from nni.algorithms.hpo.random_tuner import RandomTuner
from nni.testing import BRANIN_SPACE, TunerContract, branin, minimize_with
from nni.utils import check_class_args


class TestDngoContract(TunerContract):
    supported_types = frozenset(DNGO_TYPES)
    numeric_choice_only = True
    n_trials = 12

    def make_tuner(self):
        return DNGOTuner(optimize_mode="maximize", sample_size=100, trials_per_update=4, num_epochs_per_training=10, seed=0)


def _best(tuner, space, f, n):
    return minimize_with(tuner, space, f, n)[0]


def test_string_choice_and_unsupported_types_rejected_with_reason():
    with pytest.raises(ValueError, match=r"'k'.*choice option 'relu' is not a number; DNGOTuner accepts numerical") as err:
        DNGOTuner().update_search_space({"k": {"_type": "choice", "_value": [1, "relu"]}})
    assert "\n" not in str(err.value)
    for spec in ({"_type": "normal", "_value": [0, 1]}, {"_type": "choice", "_value": [{"_name": "a"}, {"_name": "b"}]}):
        with pytest.raises(ValueError, match="DNGOTuner"):
            DNGOTuner().update_search_space({"x": spec})


def test_blr_evidence_recovers_noise_level():
    rng = np.random.default_rng(0)
    phi = np.hstack([rng.normal(size=(400, 3)), np.ones((400, 1))])
    w = np.array([1.0, -2.0, 0.5, 0.3])
    t = phi @ w + rng.normal(0, 0.1, 400)
    m, s, beta = _fit_blr(phi, t)
    assert np.allclose(m, w, atol=0.05)
    assert 60 < beta < 140  # noise precision 1 / 0.1**2 = 100
    assert np.all(np.linalg.eigvalsh(s) > 0)


def test_random_until_first_update_then_model_guided():
    # minimum at x = 0.8 of a smooth 1-D function: after the model exists, suggestions gather there
    tuner = DNGOTuner(optimize_mode="minimize", sample_size=300, trials_per_update=8, num_epochs_per_training=100, seed=1)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    xs = []
    for i in range(20):
        p = tuner.generate_parameters(i)
        xs.append(p["x"])
        tuner.receive_trial_result(i, p, (p["x"] - 0.8) ** 2)
        assert (tuner._net is None) == (i < 8)  # first training once trials_per_update results are in
    assert np.median(np.abs(np.array(xs[-8:]) - 0.8)) < 0.1


def test_maximize_with_dict_metrics_and_numeric_choice():
    tuner = DNGOTuner(optimize_mode="maximize", sample_size=200, trials_per_update=6, num_epochs_per_training=60, seed=2)
    space = {"c": {"_type": "choice", "_value": [1, 2, 4, 8]}, "lr": {"_type": "loguniform", "_value": [1e-4, 1]}}
    tuner.update_search_space(space)
    chosen = []
    for i in range(20):
        p = tuner.generate_parameters(i)
        chosen.append(p["c"])
        tuner.receive_trial_result(i, p, {"default": p["c"] - abs(math.log10(p["lr"]) + 2), "other": 1})
    assert chosen[-6:].count(8) >= 4


def test_import_data_counts_towards_the_first_update():
    tuner = DNGOTuner(optimize_mode="minimize", sample_size=50, trials_per_update=5, num_epochs_per_training=5, seed=0)
    tuner.update_search_space({"x": {"_type": "quniform", "_value": [0, 10, 1]}})
    data = [{"parameter": {"x": float(x)}, "value": (x - 3) ** 2} for x in range(5)] + [{"parameter": {}, "value": 1}]
    assert tuner.import_data(data) == 5
    p = tuner.generate_parameters(0)
    assert tuner._net is not None and p["x"] in range(11)


@pytest.mark.parametrize("args, key", [({"sample_size": 0}, "sample_size"), ({"trials_per_update": 1.5}, "trials_per_update"),
                                       ({"num_epochs_per_training": "many"}, "num_epochs_per_training"),
                                       ({"optimize_mode": "up"}, "optimize_mode"), ({"nope": 1}, "nope")])
def test_bad_class_args_name_the_key(args, key):
    with pytest.raises(ValueError, match=key) as err:
        check_class_args(DNGOClassArgsValidator, args)
    assert "\n" not in str(err.value)
    check_class_args(DNGOClassArgsValidator, {"optimize_mode": "minimize", "sample_size": 10, "trials_per_update": 3,
                                              "num_epochs_per_training": 5})
    with pytest.raises(ValueError, match="sample_size"):
        DNGOTuner(sample_size=0)


def test_missing_torch_gives_install_hint():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from nni.algorithms.hpo.dngo_tuner import DNGOTuner\n"
            "t = DNGOTuner(trials_per_update=2, num_epochs_per_training=1)\n"
            "t.update_search_space({'x': {'_type': 'uniform', '_value': [0, 1]}})\n"
            "for i in range(2):\n"
            "    p = t.generate_parameters(i); t.receive_trial_result(i, p, p['x'])\n"
            "try:\n"
            "    t.generate_parameters(2)\n"
            "except ImportError as e:\n"
            "    print('HINT', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "HINT DNGOTuner needs PyTorch: pip install torch" in out


@pytest.mark.slow
def test_beats_random_on_branin():
    dngo = [_best(DNGOTuner(optimize_mode="minimize", trials_per_update=10, num_epochs_per_training=100, seed=s), BRANIN_SPACE, branin, 30)
            for s in range(2)]
    rnd = [_best(RandomTuner(seed=s), BRANIN_SPACE, branin, 30) for s in range(2)]
    assert np.median(dngo) < np.median(rnd)
