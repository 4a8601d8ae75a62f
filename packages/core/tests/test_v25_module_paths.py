"""NNI v2.5 module paths used the way v2.5 user and third-party code uses them: ``nni.utils``'s
helpers, the ``unittest`` trial platform (``nni.runtime.platform.test``) and the protocol's
``_in_file`` / ``_out_file`` stream hooks."""
from __future__ import annotations

import argparse
import json
import random
from io import BytesIO

import numpy as np
import pytest

import nni
import nni.trial
from nni.runtime import protocol
from nni.runtime.protocol import CommandType, receive, send
from nni.utils import (
    ClassArgsValidator,
    NodeType,
    OptimizeMode,
    convert_dict2tuple,
    extract_scalar_history,
    extract_scalar_reward,
    json2parameter,
    json2space,
    merge_parameter,
    split_index,
)

NESTED = {
    "layer0": {"_type": "choice", "_value": [
        {"_name": "Empty"},
        {"_name": "Conv", "kernel_size": {"_type": "choice", "_value": [1, 2, 3, 5]}},
    ]},
    "lr": {"_type": "loguniform", "_value": [1e-4, 0.1]},
    "combo": {"_type": "choice", "_value": [{"opt": "Adam"}, {"opt": "SGD", "momentum": 0.9}]},
    "units": {"_type": "randint", "_value": [16, 20]},
    "q": {"_type": "quniform", "_value": [2, 10, 4]},
    "fixed": {"_type": "uniform", "_value": [0.5, 0.5]},
}


# -- nni.utils ----------------------------------------------------------------------------------
def test_utils_scalar_helpers_and_optimize_mode():
    assert extract_scalar_reward(np.float32(0.5)) == 0.5
    assert extract_scalar_reward({"default": 2, "loss": [1]}) == 2.0
    assert extract_scalar_history([1, {"default": 3}]) == [1.0, 3.0]
    with pytest.raises(ValueError, match=r"^metric \{'acc': 1\} has no scalar"):
        extract_scalar_reward({"acc": 1})
    assert OptimizeMode("maximize") is OptimizeMode.Maximize and OptimizeMode.Minimize.value == "minimize"


def test_utils_merge_parameter_and_validator():
    ns = merge_parameter(argparse.Namespace(lr=0.1, epochs=3), {"lr": 0.01})
    assert (ns.lr, ns.epochs) == (0.01, 3)

    class Validator(ClassArgsValidator):
        def validate_class_args(self, **kwargs):
            self.check(kwargs, optional={"optimize_mode": self.choices("optimize_mode", "maximize", "minimize")})

    Validator().validate_class_args(optimize_mode="maximize")
    with pytest.raises(ValueError, match="classArgs.optimize_mode must be one of 'maximize', 'minimize', got 'up'"):
        Validator().validate_class_args(optimize_mode="up")


def test_convert_dict2tuple_makes_parameters_hashable():
    params = {"b": 1, "a": {"y": [1], "x": 2}}
    hashed = convert_dict2tuple(params)
    assert hashed == (("a", (("x", 2), ("y", [1]))), ("b", 1))
    assert params["a"] == (("x", 2), ("y", [1]))  # v2.5: the original data changes
    assert convert_dict2tuple(3) == 3
    assert hash(convert_dict2tuple({"k": {"j": 1}}))


def test_node_type_constants():
    assert (NodeType.ROOT, NodeType.TYPE, NodeType.VALUE, NodeType.INDEX, NodeType.NAME) == (
        "root", "_type", "_value", "_index", "_name")


def test_json2space_lists_parameter_names():
    names = json2space(NESTED)
    assert names == [
        "root[layer0]-choice[1][kernel_size]-choice", "root[layer0]-choice", "root[lr]-loguniform",
        "root[combo]-choice", "root[units]-randint", "root[q]-quniform", "root[fixed]-uniform",
    ]
    # with a configuration: only the parameters active in it
    config = {"layer0": {"_index": 0, "_value": {"_name": "Empty"}}, "lr": 0.01, "combo": {"_index": 1, "_value": {}},
              "units": 17, "q": 6, "fixed": 0.5}
    assert "root[layer0]-choice[1][kernel_size]-choice" not in json2space(NESTED, config)


@pytest.mark.parametrize("random_state", [np.random.RandomState(0), np.random.default_rng(0), random.Random(0)],
                         ids=["RandomState", "Generator", "random"])
def test_json2parameter_samples_like_v25_evolution(random_state):
    names = json2space(NESTED)
    seen_branches = set()
    for _ in range(40):
        config = json2parameter(NESTED, {n: True for n in names}, random_state)
        params = split_index(config)
        assert set(params) == set(NESTED)
        assert params["layer0"] in ({"_name": "Empty"}, *({"_name": "Conv", "kernel_size": k} for k in (1, 2, 3, 5)))
        seen_branches.add(params["layer0"]["_name"])
        assert 1e-4 <= params["lr"] <= 0.1
        assert params["combo"] in ({"opt": "Adam"}, {"opt": "SGD", "momentum": 0.9})  # plain dicts, unchanged
        assert params["units"] in (16, 17, 18, 19) and isinstance(params["units"], int)
        assert params["q"] in (2, 4, 8, 10) and params["fixed"] == 0.5
        json.dumps(params)  # plain Python values
    assert seen_branches == {"Empty", "Conv"}

    # mutation: only the chosen name is re-sampled, the rest comes from oldy
    is_rand = {n: n == "root[lr]-loguniform" for n in names}
    mutated = json2parameter(NESTED, is_rand, random_state, config)
    assert {k: v for k, v in mutated.items() if k != "lr"} == {k: v for k, v in config.items() if k != "lr"}
    assert mutated["lr"] != config["lr"]
    with pytest.raises(ValueError, match="not random and has no old value"):
        json2parameter(NESTED, {}, random_state)


# -- nni.runtime.platform.test (NNI_PLATFORM=unittest) -------------------------------------------
@pytest.fixture
def unittest_platform(monkeypatch):
    monkeypatch.setenv("NNI_PLATFORM", "unittest")
    monkeypatch.setenv("NNI_TRIAL_JOB_ID", "test_trial_job_id")
    import nni.runtime.platform.test as test_platform

    yield test_platform
    nni.trial._reset()


def _my_trial():
    params = nni.get_next_parameter()
    for step in range(2):
        nni.report_intermediate_result(params["x"] * step)
    nni.report_final_result({"default": params["x"], "array": np.arange(2)})


def test_unittest_platform_runs_trial_code_in_memory(unittest_platform):
    unittest_platform.init_params({"x": 3})
    _my_trial()
    assert unittest_platform.get_last_metric() == {
        "parameter_id": 0, "trial_job_id": "test_trial_job_id", "type": "FINAL", "sequence": 0,
        "value": {"default": 3, "array": [0, 1]},
    }
    assert [(m["type"], m["sequence"], m["value"]) for m in unittest_platform.get_metrics()] == [
        ("PERIODICAL", 0, 0), ("PERIODICAL", 1, 3), ("FINAL", 0, {"default": 3, "array": [0, 1]})]
    assert unittest_platform.get_sequence_id() == 0 and nni.get_sequence_id() == 0

    # a second test in the same process starts afresh
    unittest_platform.init_params({"parameter_id": "test_param", "parameters": {"x": 5}})
    assert nni.get_next_parameter() == {"x": 5}
    assert nni.get_current_parameter("x") == 5
    nni.report_final_result(5)
    assert unittest_platform.get_last_metric()["parameter_id"] == "test_param"
    assert unittest_platform.get_last_metric()["value"] == 5
    assert unittest_platform.get_next_parameter()["parameters"] == {"x": 5}


def test_unittest_platform_module_functions(unittest_platform):
    unittest_platform.init_params({"a": 1})
    unittest_platform.send_metric(json.dumps({"type": "FINAL", "sequence": 0, "value": "[1, 2]"}))
    assert unittest_platform.get_last_metric() == {"type": "FINAL", "sequence": 0, "value": [1, 2]}


def test_unittest_platform_without_params_is_clear(unittest_platform):
    unittest_platform._params = None
    nni.trial._reset()
    with pytest.raises(RuntimeError, match=r"init_params\(\) first"):
        nni.get_next_parameter()


# -- nni.runtime.protocol stream hooks --------------------------------------------------------------
@pytest.fixture
def v25_streams():
    old = protocol._in_file, protocol._out_file
    yield
    protocol._in_file, protocol._out_file = old


def test_protocol_v25_stream_hooks(v25_streams):
    protocol._out_file = BytesIO()
    send(CommandType.Initialize, "hello")
    send(CommandType.RequestTrialJobs, "123")
    assert protocol._out_file.getvalue() == b"IN00000000000005helloGE00000000000003123"

    protocol._in_file = BytesIO(b"IN00000000000005helloGE00000000000003123")
    assert receive() == (CommandType.Initialize, "hello")
    assert receive() == (CommandType.RequestTrialJobs, "123")
    assert receive() == (None, None)


def test_dispatcher_driven_through_v25_stream_hooks(v25_streams):
    """The v2.5 way of testing a tuner under the dispatcher: write commands into ``_in_file``."""
    from nni.runtime.msg_dispatcher import MsgDispatcher
    from nni.testing.reference_tuner import ReferenceRandomTuner

    frames = BytesIO()
    protocol._out_file = frames
    send(CommandType.Initialize, json.dumps({"x": {"_type": "choice", "_value": [{"a": 1}, {"a": 2}]}}))
    send(CommandType.RequestTrialJobs, "2")
    send(CommandType.Terminate, "")
    protocol._in_file = BytesIO(frames.getvalue())
    protocol._out_file = BytesIO()
    MsgDispatcher(ReferenceRandomTuner(seed=1)).run()

    protocol._in_file = BytesIO(protocol._out_file.getvalue())
    replies = []
    while True:
        command, data = receive()
        if command is None:
            break
        replies.append((command, data))
    assert replies[0] == (CommandType.Initialized, "")
    trials = [json.loads(d)["parameters"] for c, d in replies if c is CommandType.NewTrialJob]
    assert sorted(t["x"]["a"] for t in trials) == [1, 2]
