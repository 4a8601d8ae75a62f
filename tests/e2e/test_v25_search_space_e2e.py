"""NNI v2.5 search-space semantics through ``nnictl create`` with a real manager and real trials:
the docs' nested search space (options with ``_name``), a ``choice`` over plain dicts (no
``_name``: the trial gets the dict unchanged), and ranges whose low equals their high."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nni.server.testing import rest_get as _get

pytestmark = pytest.mark.usefixtures("nnictl_registry")
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("nnictl_registry")]

NNICTL = str(Path(sys.executable).parent / "nnictl")

# The docs' nested search space (examples/trials/mnist-nested-search-space), two layers of it.
_LAYER = {"_type": "choice", "_value": [
    {"_name": "Empty"},
    {"_name": "Conv", "kernel_size": {"_type": "choice", "_value": [1, 2, 3, 5]}},
    {"_name": "Max_pool", "pooling_size": {"_type": "choice", "_value": [2, 3, 5]}},
    {"_name": "Avg_pool", "pooling_size": {"_type": "choice", "_value": [2, 3, 5]}},
]}
PLAIN_DICTS = [
    {"optimizer": "Adam", "learning_rate": 0.001},
    {"optimizer": "SGD", "learning_rate": 0.01, "momentum": [0.9, 0.99], "nesterov": True},
]
SPACE = {
    "layer0": _LAYER,
    "layer1": _LAYER,
    "combine_params": {"_type": "choice", "_value": PLAIN_DICTS},
    "dropout": {"_type": "uniform", "_value": [0.5, 0.5]},
    "lr": {"_type": "loguniform", "_value": [0.01, 0.01]},
    "hidden": {"_type": "quniform", "_value": [64, 64, 16]},
    "seed": {"_type": "randint", "_value": [7, 7]},
    "x": {"_type": "uniform", "_value": [0, 1]},
}

TRIAL = """\
import json, os, nni
params = nni.get_next_parameter()
with open(os.path.join({out!r}, nni.get_trial_id() + ".json"), "w") as f:
    json.dump(params, f)
nni.report_final_result(params["x"])
"""


def _nnictl(env: dict, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([NNICTL, *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, f"nnictl {' '.join(args)}: {proc.stderr}{proc.stdout}"
    return proc


def _check_layer(value: dict) -> None:
    assert value["_name"] in ("Empty", "Conv", "Max_pool", "Avg_pool"), value
    if value["_name"] == "Empty":
        assert value == {"_name": "Empty"}
    elif value["_name"] == "Conv":
        assert set(value) == {"_name", "kernel_size"} and value["kernel_size"] in (1, 2, 3, 5)
    else:
        assert set(value) == {"_name", "pooling_size"} and value["pooling_size"] in (2, 3, 5)


@pytest.mark.parametrize("tuner", ["TPE", "GridSearch"])
def test_nested_space_plain_dict_choice_and_constant_ranges(tmp_path, free_port, tuner):
    env = dict(os.environ, NNI_EXPERIMENTS_DIR=str(tmp_path / "exps"), NNI_CONFIG_DIR=str(tmp_path / "cfg"),
               HOME=str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    out = tmp_path / "received"
    out.mkdir()
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(TRIAL.format(out=str(out)))
    space = json.loads(json.dumps(SPACE))
    if tuner == "GridSearch":  # GridSearch takes choice, randint and quniform only
        space = {k: v for k, v in space.items() if v["_type"] in ("choice", "randint", "quniform")}
        # a grid of exactly 12: layer0 3 (Empty, Conv 1, Conv 2) x combine_params 2 x x 2
        space["x"] = {"_type": "quniform", "_value": [0, 1, 1]}
        space["layer0"] = {"_type": "choice", "_value": [{"_name": "Empty"}, {"_name": "Conv", "kernel_size": {"_type": "choice", "_value": [1, 2]}}]}
        space["layer1"] = {"_type": "choice", "_value": [{"_name": "Empty"}]}
    (tmp_path / "search_space.json").write_text(json.dumps(space))
    config = {
        "searchSpaceFile": str(tmp_path / "search_space.json"),
        "trialCommand": f"{sys.executable} trial.py",
        "trialCodeDirectory": str(code),
        "trialConcurrency": 4,
        "maxTrialNumber": 12,
        "tuner": {"name": tuner, **({"classArgs": {"optimize_mode": "maximize"}} if tuner == "TPE" else {})},
        "trainingService": {"platform": "local"},
    }
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    created = _nnictl(env, "create", "--config", str(tmp_path / "config.yml"), "--port", str(free_port))
    eid = re.search(r"The experiment id is (\w+)", created.stdout).group(1)
    try:
        deadline = time.monotonic() + 120
        while json.loads(_nnictl(env, "experiment", "status", eid).stdout)["status"] != "DONE":
            assert time.monotonic() < deadline, "experiment not DONE in 120 s"
            time.sleep(0.5)
        jobs = _get(free_port, "trial-jobs")
        assert len(jobs) == 12 and {j["status"] for j in jobs} == {"SUCCEEDED"}, jobs
        received = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
        assert set(received) == {j["trialJobId"] for j in jobs}
        for job in jobs:
            params = received[job["trialJobId"]]
            # what the trial got is what the manager recorded
            assert json.loads(job["hyperParameters"][0])["parameters"] == params
            assert set(params) == set(space)
            _check_layer(params["layer0"])
            _check_layer(params["layer1"])
            # a dict option without _name reaches the trial unchanged (not a nested space)
            assert params["combine_params"] in PLAIN_DICTS, params
            # low == high always gives that value; randint bounds are ints
            assert params["hidden"] == 64 and params["seed"] == 7 and isinstance(params["seed"], int)
            if tuner == "TPE":
                assert params["dropout"] == 0.5 and params["lr"] == 0.01
        combos = [json.dumps(p["combine_params"], sort_keys=True) for p in received.values()]
        if tuner == "GridSearch":  # every point of the grid once: plain options and nested branches
            assert len(set(combos)) == 2
            assert len({json.dumps(p, sort_keys=True) for p in received.values()}) == 12
    finally:
        _nnictl(env, "stop", eid)


def test_randint_float_bound_is_refused_by_nnictl(tmp_path, free_port):
    env = dict(os.environ, NNI_EXPERIMENTS_DIR=str(tmp_path / "exps"), NNI_CONFIG_DIR=str(tmp_path / "cfg"),
               HOME=str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    config = {
        "searchSpace": {"batch": {"_type": "randint", "_value": [1.0, 8]}},
        "trialCommand": f"{sys.executable} trial.py",
        "trialCodeDirectory": str(tmp_path),
        "trialConcurrency": 1,
        "tuner": {"name": "TPE"},
        "trainingService": {"platform": "local"},
    }
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([NNICTL, "create", "--config", str(tmp_path / "config.yml"), "--port", str(free_port)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.strip() == "ERROR: searchSpace.batch: randint lower must be an integer, got 1.0"
