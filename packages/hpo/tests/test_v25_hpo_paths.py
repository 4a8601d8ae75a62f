"""NNI v2.5 module paths of nni-hpo used as v2.5 code uses them (the hyperopt tuner module's
``json2space`` / ``json2parameter`` / ``json2vals``, ``curvefitting_assessor.model_factory``),
and the v2.5 search-space semantics in the tuners the contract suite does not cover
(Hyperband, BatchTuner)."""
from __future__ import annotations

import json

import hyperopt
import numpy as np
import pytest
from hyperopt import pyll

from nni.algorithms.hpo.hyperopt_tuner import HyperoptTuner, NodeType, json2parameter, json2space, json2vals
from nni.runtime.protocol import CommandType
from nni.testing import drive_dispatcher

SPACE = {
    "optimizer": {"_type": "choice", "_value": [
        {"_name": "sgd", "lr": {"_type": "loguniform", "_value": [1e-3, 1e-1]}},
        {"_name": "adam"},
    ]},
    "combo": {"_type": "choice", "_value": [{"bs": 32, "aug": ["flip"]}, {"bs": 64}]},
    "units": {"_type": "randint", "_value": [8, 12]},
    "q": {"_type": "quniform", "_value": [0, 10, 5]},
    "fixed": {"_type": "uniform", "_value": [0.25, 0.25]},
}


def test_hyperopt_json2space_samples_with_hyperopt_and_json2parameter_converts_back():
    space = json2space(SPACE)
    assert space["fixed"] == 0.25  # one-point range: a constant in the hyperopt space
    rng = np.random.default_rng(0)
    trials = hyperopt.Trials()
    domain = hyperopt.Domain(lambda _: 0, space)
    seen = set()
    for tid in range(30):
        doc = hyperopt.rand.suggest([tid], domain, trials, int(rng.integers(2**31 - 1)))[0]
        params = json2parameter(SPACE, doc["misc"]["vals"], NodeType.ROOT)
        assert params["combo"] in ({"bs": 32, "aug": ["flip"]}, {"bs": 64})
        assert params["units"] in (8, 9, 10, 11) and params["q"] in (0, 5, 10) and params["fixed"] == 0.25
        if params["optimizer"]["_name"] == "sgd":
            assert set(params["optimizer"]) == {"_name", "lr"} and 1e-3 <= params["optimizer"]["lr"] <= 1e-1
        else:
            assert params["optimizer"] == {"_name": "adam"}
        seen.add(params["optimizer"]["_name"])
    assert seen == {"sgd", "adam"}
    # a pyll sample has the same structure (pyll itself turns lists into tuples)
    sample = pyll.stochastic.sample(space, rng=np.random.default_rng(1))
    assert sample["combo"]["bs"] in (32, 64) and sample["fixed"] == 0.25


def test_hyperopt_json2vals_fills_vals_for_import_and_inverts_json2parameter():
    params = {"optimizer": {"_name": "sgd", "lr": 0.01}, "combo": {"bs": 64}, "units": 10, "q": 5.0, "fixed": 0.25}
    out_y: dict = {}
    json2vals(SPACE, params, out_y)
    assert out_y == {"optimizer": 0, "optimizer[0].lr": pytest.approx(0.01), "combo": 1, "units": 10, "q": 5.0}
    back = json2parameter(SPACE, out_y)
    assert back["optimizer"]["lr"] == pytest.approx(0.01)
    assert {**back, "optimizer": {"_name": "sgd", "lr": 0.01}} == params
    # a name prefixes the labels
    prefixed: dict = {}
    json2vals(SPACE, params, prefixed, name="exp")
    assert set(prefixed) == {"exp/" + k for k in out_y}
    assert json2parameter(SPACE, prefixed, name="exp") == back
    with pytest.raises(ValueError, match=r"parameter 'combo': \{'bs': 16\} is not one of the choices"):
        json2vals(SPACE, {**params, "combo": {"bs": 16}}, {})


@pytest.mark.parametrize("algorithm", ["tpe", "random_search", "anneal"])
def test_hyperopt_tuner_import_data_with_plain_dicts_and_constants(algorithm):
    tuner = HyperoptTuner(algorithm, optimize_mode="maximize", seed=3)
    tuner.update_search_space(SPACE)
    tuner.import_data([{"parameter": {"optimizer": {"_name": "adam"}, "combo": {"bs": 32, "aug": ["flip"]}, "units": 8,
                                      "q": 10.0, "fixed": 0.25}, "value": 0.9}])
    for pid in range(25):
        params = tuner.generate_parameters(pid)
        assert params["fixed"] == 0.25 and params["combo"] in ({"bs": 32, "aug": ["flip"]}, {"bs": 64})
        tuner.receive_trial_result(pid, params, {"default": pid / 25})


def test_curvefitting_model_factory_v25_path():
    from nni.algorithms.hpo.curvefitting_assessor.model_factory import CurveModel

    model = CurveModel(target_pos=50)
    epochs = np.arange(1, 11)
    history = list(0.9 - 0.5 * epochs ** -0.8)
    prediction = model.predict(history)
    assert abs(prediction - (0.9 - 0.5 * 50 ** -0.8)) < 0.02
    assert model.trial_history == history and model.point_num == 10
    assert CurveModel(target_pos=10).predict([0.5, 0.6]) is None  # too few points to fit


def test_hyperband_plain_dict_choice_and_constant_ranges():
    from nni.algorithms.hpo.hyperband_advisor import TRIAL_BUDGET_KEY, Hyperband

    advisor = Hyperband(R=3, eta=3, exec_mode="serial")
    replies = drive_dispatcher(advisor, [(CommandType.Initialize, json.dumps(SPACE)),
                                         (CommandType.RequestTrialJobs, "3"), (CommandType.Terminate, "")])
    trials = [json.loads(d)["parameters"] for c, d in replies if c is CommandType.NewTrialJob]
    assert len(trials) == 3
    for params in trials:
        assert params.pop(TRIAL_BUDGET_KEY) >= 1
        assert params["combo"] in ({"bs": 32, "aug": ["flip"]}, {"bs": 64}) and params["fixed"] == 0.25
        assert params["optimizer"]["_name"] in ("sgd", "adam")


def test_batch_tuner_gives_plain_dict_configurations_unchanged():
    from nni.algorithms.hpo.batch_tuner import BatchTuner

    configs = [{"optimizer": "Adam", "learning_rate": 0.001}, {"optimizer": "SGD", "momentum": [0.9]}]
    tuner = BatchTuner()
    tuner.update_search_space({"combine_params": {"_type": "choice", "_value": configs}})
    assert [tuner.generate_parameters(i) for i in range(2)] == configs
