"""PBTTuner: the core contract (checkpoint keys aside), exploit/explore between steps, classArgs."""
from __future__ import annotations

import json
import os

import pytest

from nni.algorithms.hpo.pbt_tuner import CHECKPOINT_KEYS, PBTClassArgsValidator, PBTTuner
from nni.runtime.msg_dispatcher import MsgDispatcher
from nni.runtime.protocol import CommandType
from nni.testing import TunerContract, drive_dispatcher
from nni.utils import NoMoreTrialError, check_class_args


def _strip(params: dict) -> dict:
    assert set(CHECKPOINT_KEYS) <= set(params), params
    return {k: v for k, v in params.items() if k not in CHECKPOINT_KEYS}


class TestPbtContract(TunerContract):
    """The contract checks parameters against the space; PBT adds its two folder keys."""

    supported_types = TunerContract.ALL_TYPES
    supports_nested_choice = True

    @pytest.fixture(autouse=True)
    def _ckpt(self, tmp_path):
        self.ckpt = str(tmp_path / "ckpt")

    def make_tuner(self):
        return PBTTuner(optimize_mode="maximize", all_checkpoint_dir=self.ckpt, population_size=4, seed=0)

    def search_space_part(self, params):
        return _strip(params)

    def test_under_dispatcher_never_runs_out(self):
        # a population of 4 holds the three trials asked for: none of them may be refused
        _space, replies = self._dispatch()
        assert len([c for c, _ in replies if c is CommandType.NewTrialJob]) == 3
        assert not [c for c, _ in replies if c is CommandType.NoMoreTrialJobs]


SPACE = {"lr": {"_type": "loguniform", "_value": [0.001, 1.0]},
         "opt": {"_type": "choice", "_value": ["sgd", "adam"]},
         "width": {"_type": "randint", "_value": [1, 9]}}


def _finish_step(tuner, params_by_id, score):
    for pid, params in params_by_id.items():
        tuner.receive_trial_result(pid, params, score(params))
        tuner.trial_end(pid, True)


def test_generations_copy_the_best_checkpoints(tmp_path):
    tuner = PBTTuner(optimize_mode="maximize", all_checkpoint_dir=str(tmp_path), population_size=5,
                     fraction=0.2, seed=3)
    tuner.update_search_space(SPACE)
    step0 = {pid: tuner.generate_parameters(pid) for pid in range(5)}
    # step 0: member i loads and saves in <dir>/i/0, which the tuner created
    for i, params in enumerate(step0.values()):
        assert params["save_checkpoint_dir"] == params["load_checkpoint_dir"] == str(tmp_path / str(i) / "0")
        assert os.path.isdir(params["save_checkpoint_dir"])
    # the step is out: nothing more until it has ended
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(99)
    assert tuner.generate_multiple_parameters([99, 100]) == []
    scores = {pid: float(pid) for pid in step0}  # member 4 best, member 0 worst
    _finish_step(tuner, step0, lambda p: scores[[k for k, v in step0.items() if v is p][0]])
    step1 = [tuner.generate_parameters(pid) for pid in range(5, 10)]
    best = step0[4]
    for i, params in enumerate(step1):
        assert params["save_checkpoint_dir"] == str(tmp_path / str(i) / "1")
    # the worst member (0) took the best member's checkpoint and perturbed hyper-parameters
    assert step1[0]["load_checkpoint_dir"] == best["save_checkpoint_dir"]
    assert step1[0]["lr"] in (pytest.approx(best["lr"] * 1.2), pytest.approx(best["lr"] * 0.8),
                              pytest.approx(1.0))  # clipped at the range's top
    assert abs(step1[0]["width"] - best["width"]) <= 1
    # every other member continues from its own checkpoint with its own hyper-parameters
    for i in range(1, 5):
        assert step1[i]["load_checkpoint_dir"] == step0[i]["save_checkpoint_dir"]
        assert {k: step1[i][k] for k in SPACE} == {k: step0[i][k] for k in SPACE}


def test_failed_members_are_replaced_minimize(tmp_path):
    tuner = PBTTuner(optimize_mode="minimize", all_checkpoint_dir=str(tmp_path), population_size=4,
                     fraction=0.25, factors=[2.0], seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 100]}})
    step0 = {pid: tuner.generate_parameters(pid) for pid in range(4)}
    tuner.trial_end(0, False)  # failed, no checkpoint, no result
    tuner.trial_end(1, False)
    tuner.receive_trial_result(2, step0[2], 5.0)
    tuner.receive_trial_result(3, step0[3], 1.0)  # the best under minimize
    step1 = tuner.generate_multiple_parameters([4, 5, 6, 7, 8])
    assert len(step1) == 4
    for i in (0, 1):  # both failed ones take the best's checkpoint, though the bottom is one member
        assert step1[i]["load_checkpoint_dir"] == step0[3]["save_checkpoint_dir"]
        assert step1[i]["x"] == pytest.approx(min(100.0, step0[3]["x"] * 2.0))
    for i in (2, 3):
        assert step1[i]["load_checkpoint_dir"] == step0[i]["save_checkpoint_dir"]
        assert step1[i]["x"] == step0[i]["x"]


def test_dispatcher_serves_the_next_step_when_the_current_ends(tmp_path):
    tuner = PBTTuner(all_checkpoint_dir=str(tmp_path), population_size=2, seed=0)
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}

    def me(pid, tid, v):
        return (CommandType.ReportMetricData, json.dumps(
            {"parameter_id": pid, "trial_job_id": tid, "type": "FINAL", "sequence": 0, "value": json.dumps(v)}))

    def en(pid, tid):
        return (CommandType.TrialEnd, json.dumps(
            {"trial_job_id": tid, "event": "SUCCEEDED", "hyper_params": json.dumps({"parameter_id": pid})}))

    replies = drive_dispatcher(MsgDispatcher(tuner), [
        (CommandType.Initialize, json.dumps(space)),
        (CommandType.RequestTrialJobs, "3"),  # 2 now, the third waits for step 1
        me(0, "A", 0.1), en(0, "A"), me(1, "B", 0.9), en(1, "B"),
        (CommandType.Terminate, ""),
    ])
    commands = [c for c, _ in replies]
    trials = [json.loads(d) for c, d in replies if c is CommandType.NewTrialJob]
    assert CommandType.NoMoreTrialJobs not in commands
    assert [t["parameter_id"] for t in trials] == [0, 1, 2]
    assert trials[2]["parameters"]["save_checkpoint_dir"] == str(tmp_path / "0" / "1")
    assert trials[2]["parameters"]["load_checkpoint_dir"] == trials[1]["parameters"]["save_checkpoint_dir"]


def test_default_checkpoint_dir_is_per_experiment(monkeypatch, tmp_path):
    monkeypatch.delenv("NNI_EXP_ID", raising=False)
    monkeypatch.setenv("NNI_CHECKPOINT_DIRECTORY", str(tmp_path / "abcd1234" / "checkpoint"))
    tuner = PBTTuner(population_size=2)
    assert tuner.all_checkpoint_dir == os.path.join(os.path.expanduser("~"), "nni", "checkpoint", "abcd1234")


def test_import_data_seeds_step_zero(tmp_path):
    tuner = PBTTuner(all_checkpoint_dir=str(tmp_path), population_size=3, seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    used = tuner.import_data([{"parameter": {"x": 0.25}, "value": 0.1}, {"parameter": {"x": 0.75}, "value": 0.9}])
    assert used == 2
    xs = [tuner.generate_parameters(i)["x"] for i in range(3)]
    assert xs[:2] == [pytest.approx(0.75), pytest.approx(0.25)]  # best first (maximize)


@pytest.mark.parametrize("args,match", [
    ({"optimize_mode": "best"}, r"classArgs\.optimize_mode must be one of 'maximize', 'minimize'"),
    ({"population_size": 1}, r"classArgs\.population_size must be an int in \[2, 99999\]"),
    ({"factors": [1.2, -1]}, r"classArgs\.factors must be a non-empty list of positive numbers"),
    ({"factors": 1.2}, r"classArgs\.factors must be a non-empty list"),
    ({"fraction": 0.7}, r"classArgs\.fraction must be a float in \[0.0, 0.5\]"),
    ({"fraction": 0}, r"classArgs\.fraction must be a float in \(0, 0.5\]"),
    ({"all_checkpoint_dir": 3}, r"classArgs\.all_checkpoint_dir must be of type str"),
    ({"populaton_size": 3}, r"classArgs\.populaton_size is not a known argument"),
])
def test_class_args_errors(args, match):
    with pytest.raises(ValueError, match=match) as info:
        check_class_args(PBTClassArgsValidator, args)
    assert "\n" not in str(info.value)


def test_reserved_key_rejected(tmp_path):
    tuner = PBTTuner(all_checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match="'save_checkpoint_dir' is reserved by PBTTuner"):
        tuner.update_search_space({"save_checkpoint_dir": {"_type": "choice", "_value": [1]}})
