"""BOHB advisor: brackets, classArgs, the KDE model's activation and effect, failures, import, config_space."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nni.runtime.protocol import CommandType
from nni.testing import CommandRecorder
from nni.utils import check_class_args

from nni.algorithms.hpo.bohb_advisor import (
    BOHB,
    BOHBClassArgsValidator,
    bohb_brackets,
    bohb_s_max,
    config_space_to_search_space,
)
from nni.algorithms.hpo.hyperband_advisor import TRIAL_BUDGET_KEY

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}, "y": {"_type": "uniform", "_value": [0, 1]}}


def _start(space=SPACE, seed=0, **kwargs):
    kwargs.setdefault("optimize_mode", "minimize")
    advisor = BOHB(**kwargs)
    advisor.rng = np.random.default_rng(seed)
    rec = CommandRecorder(advisor)
    rec.command(CommandType.Initialize, space)
    assert rec.sent == [("ID", "")]
    rec.sent.clear()
    return advisor, rec


def _finish(rec, trial, value=None, event="SUCCEEDED", intermediate=()):
    pid = trial["parameter_id"]
    for seq, v in enumerate(intermediate):
        rec.command(CommandType.ReportMetricData, {"parameter_id": pid, "trial_job_id": f"T{pid}", "type": "PERIODICAL",
                                                   "sequence": seq, "value": json.dumps(v)})
    if value is not None:
        rec.command(CommandType.ReportMetricData, {"parameter_id": pid, "trial_job_id": f"T{pid}", "type": "FINAL",
                                                   "sequence": 0, "value": json.dumps(value)})
    rec.command(CommandType.TrialEnd, {"trial_job_id": f"T{pid}", "event": event, "hyper_params": json.dumps(trial)})


def _config(trial):
    return {k: v for k, v in trial["parameters"].items() if k != TRIAL_BUDGET_KEY}


def _sequential(advisor, rec, n, evaluate):
    """Run ``n`` trials one at a time; ``evaluate(params, budget, trial)`` finishes each one.
    Returns ``[(trial, model_budget when its bracket started, observations at that time)]``."""
    out = []
    rec.command(CommandType.RequestTrialJobs, 1)
    for _ in range(n):
        (trial,) = rec.take("TR")
        run = advisor.runs[trial["parameter_id"]]
        out.append((trial, run.bracket.model_budget))
        evaluate(_config(trial), trial["parameters"][TRIAL_BUDGET_KEY], trial)
        rec.command(CommandType.RequestTrialJobs, 1)
    return out


# ---- brackets and classArgs ----------------------------------------------------------------


def test_docs_workflow_example_brackets():
    # docs: max_budget=9, min_budget=1, eta=3 -> s_max = 2, cycle s = 2, 1, 0
    assert bohb_s_max(1, 9, 3) == 2
    assert bohb_brackets(1, 9, 3) == {2: [(9, 1), (3, 3), (1, 9)], 1: [(5, 3), (1, 9)], 0: [(3, 9)]}
    assert bohb_brackets(1, 3, 3) == {1: [(3, 1), (1, 3)], 0: [(2, 3)]}  # the defaults
    assert bohb_brackets(2, 10, 3) == {1: [(3, 3), (1, 10)], 0: [(2, 10)]}  # floored int budgets >= min
    assert bohb_s_max(1, 27, 3) == 3 and bohb_s_max(1, 26, 3) == 2


def test_class_args_validator_names_the_bad_key(tmp_path):
    assert BOHB.class_args_validator is BOHBClassArgsValidator
    pcs = tmp_path / "space.pcs"
    pcs.write_text("x real [0.0, 1.0] [0.5]\n")
    check_class_args(BOHBClassArgsValidator, {
        "optimize_mode": "maximize", "min_budget": 1, "max_budget": 27, "eta": 3, "min_points_in_model": 7,
        "top_n_percent": 15, "num_samples": 64, "random_fraction": 0.33, "bandwidth_factor": 3.0,
        "min_bandwidth": 0.001, "config_space": str(pcs)})
    check_class_args(BOHBClassArgsValidator, {"min_points_in_model": None})
    for args, key in [({"min_budget": 0}, "min_budget"), ({"max_budget": 1.5}, "max_budget"), ({"eta": 1}, "eta"),
                      ({"min_points_in_model": 0}, "min_points_in_model"), ({"top_n_percent": 100}, "top_n_percent"),
                      ({"num_samples": 0}, "num_samples"), ({"random_fraction": 1.5}, "random_fraction"),
                      ({"bandwidth_factor": 0}, "bandwidth_factor"), ({"min_bandwidth": -1}, "min_bandwidth"),
                      ({"config_space": "space.pcs"}, "config_space"), ({"optimize_mode": "max"}, "optimize_mode"),
                      ({"min_budget": 3, "max_budget": 3}, "max_budget"), ({"R": 3}, "R")]:
        with pytest.raises(ValueError, match=rf"advisor\.classArgs\.{key}") as info:
            check_class_args(BOHBClassArgsValidator, args, "advisor.classArgs")
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="max_budget"):
        BOHB(min_budget=5, max_budget=4)


def test_registered_as_builtin_advisor():
    from nni.runtime import registry

    assert "BOHB" in registry.list_names("advisor")
    assert registry.load_class("advisor", "BOHB") is BOHB


# ---- the model -----------------------------------------------------------------------------


def test_kde_activates_only_after_min_points_in_model():
    # min_budget=1, max_budget=3: brackets s=1 (3 x budget 1, then 1 x budget 3) and s=0 (2 x budget 3)
    advisor, rec = _start(min_budget=1, max_budget=3, min_points_in_model=6, random_fraction=0.0)
    assert advisor.n_min == 6  # max(dim + 1 = 3, 6)
    seen = []

    def evaluate(params, budget, trial):
        seen.append({b: len(rows) for b, (rows, _l) in advisor.observations.items()})
        _finish(rec, trial, (params["x"] - 0.2) ** 2 + (params["y"] - 0.7) ** 2)

    history = _sequential(advisor, rec, 40, evaluate)
    checked = set()
    for (trial, model_budget), counts in zip(history, seen):
        bracket = advisor.runs[trial["parameter_id"]].bracket
        if id(bracket) in checked:
            continue
        checked.add(id(bracket))  # the bracket's first trial: counts are those at the bracket's start
        ready = [b for b, n in counts.items() if n >= 6]
        assert model_budget == (max(ready) if ready else None), (counts, model_budget)
    models = [m for _t, m in history]
    assert models[0] is None and models[-1] == 3
    assert len(checked) >= 8


def test_default_min_points_is_dim_plus_one():
    advisor, _rec = _start(space={**SPACE, "c": {"_type": "choice", "_value": ["a", "b"]}})
    assert advisor.n_min == 4
    advisor2, _rec2 = _start(min_points_in_model=2)
    assert advisor2.n_min == 3  # max{dim + 1, min_points_in_model}


def test_model_concentrates_on_the_good_region():
    dist = []
    for seed in range(3):
        advisor, rec = _start(min_budget=1, max_budget=3, random_fraction=0.0, seed=seed)

        def evaluate(params, budget, trial, rec=rec):
            _finish(rec, trial, (params["x"] - 0.2) ** 2 + (params["y"] - 0.7) ** 2)

        history = _sequential(advisor, rec, 90, evaluate)
        modelled = [_config(t) for t, m in history
                    if m is not None and advisor.runs[t["parameter_id"]].round_index == 0]
        assert len(modelled) >= 20
        dist += [math.hypot(p["x"] - 0.2, p["y"] - 0.7) for p in modelled[-20:]]
    # uniform random points have a median distance of 0.50 from (0.2, 0.7)
    assert float(np.median(dist)) < 0.25


def test_near_identical_good_points_do_not_collapse_the_model():
    # the best 3 of 20 observations are one spot: the model must keep proposing around it, not on it
    advisor, _rec = _start(min_budget=1, max_budget=3, random_fraction=0.0, seed=4)
    rng = np.random.default_rng(0)
    records = [{"parameter": {"x": 0.3 + 1e-4 * k, "y": 0.8, TRIAL_BUDGET_KEY: 3}, "value": -1.0 - k}
               for k in range(3)]
    records += [{"parameter": {"x": float(a), "y": float(b), TRIAL_BUDGET_KEY: 3}, "value": float(a + b)}
                for a, b in rng.random((17, 2))]
    advisor.handle_import_data(records)
    rows = advisor._new_rows(200)
    assert advisor.model_budget == 3
    dist = np.hypot(rows[:, 0] - 0.3, rows[:, 1] - 0.8)
    assert 0.03 < float(np.median(dist)) < 0.3  # spread around the spot, still near it


def test_failed_trials_teach_the_model_to_avoid_their_region():
    advisor, rec = _start(min_budget=1, max_budget=3, random_fraction=0.0, seed=2)

    def evaluate(params, budget, trial):
        if params["x"] > 0.5:
            _finish(rec, trial, None, event="FAILED")  # crashes without any result
        else:
            _finish(rec, trial, abs(params["y"] - 0.5))

    history = _sequential(advisor, rec, 80, evaluate)
    modelled = [_config(t) for t, m in history if m is not None and advisor.runs[t["parameter_id"]].round_index == 0]
    assert len(modelled) >= 20
    assert sum(p["x"] > 0.5 for p in modelled[-20:]) <= 4
    assert any(math.isinf(loss) for _rows, losses in advisor.observations.values() for loss in losses)


def test_early_stopped_and_short_trials_rank_by_their_latest_intermediate_result():
    advisor, rec = _start(min_budget=3, max_budget=9, optimize_mode="maximize")  # s=1: 3 x budget 3, 1 x budget 9
    rec.command(CommandType.RequestTrialJobs, 3)
    first = rec.take("TR")
    assert [t["parameters"][TRIAL_BUDGET_KEY] for t in first] == [3, 3, 3]
    for i, t in enumerate(first):
        # 2 intermediate results for a budget of 3, no final result, stopped early or canceled
        _finish(rec, t, None, event="EARLY_STOPPED" if i % 2 else "USER_CANCELED", intermediate=[1 - i / 10, i / 10])
    rec.command(CommandType.RequestTrialJobs, 1)
    (promoted,) = rec.take("TR")
    assert promoted["parameters"][TRIAL_BUDGET_KEY] == 9 and _config(promoted) == _config(first[2])
    assert advisor.observations[3][1] == [-0.0, -0.1, -0.2]  # the latest results, as losses of 'maximize'


def test_late_final_result_updates_the_observation():
    advisor, rec = _start()
    rec.command(CommandType.RequestTrialJobs, 1)
    (trial,) = rec.take("TR")
    _finish(rec, trial, None)  # ended before its final result arrived
    assert advisor.observations[1][1] == [math.inf]
    rec.command(CommandType.ReportMetricData, {"parameter_id": trial["parameter_id"], "trial_job_id": "T0",
                                               "type": "FINAL", "sequence": 0, "value": "0.25"})
    assert advisor.observations[1][1] == [0.25]


def test_all_types_and_nested_choice_with_a_model():
    space = {
        "lr": {"_type": "qloguniform", "_value": [0.0001, 0.1, 0.0001]},
        "m": {"_type": "normal", "_value": [0, 1]},
        "q": {"_type": "quniform", "_value": [2, 10, 2]},
        "n": {"_type": "randint", "_value": [1, 5]},
        "ln": {"_type": "lognormal", "_value": [0, 1]},
        "layer": {"_type": "choice", "_value": [{"_name": "conv", "k": {"_type": "choice", "_value": [3, 5]}},
                                                {"_name": "pool", "size": {"_type": "uniform", "_value": [1, 2]}}]},
    }
    advisor, rec = _start(space=space, random_fraction=0.0, min_budget=1, max_budget=3)

    def evaluate(params, budget, trial):
        assert 0.0001 <= params["lr"] <= 0.1 and params["q"] in (2, 4, 6, 8, 10) and params["n"] in range(1, 5)
        assert params["ln"] > 0 and math.isfinite(params["m"])
        layer = params["layer"]
        assert (layer["_name"] == "conv" and layer["k"] in (3, 5)) or (layer["_name"] == "pool" and 1 <= layer["size"] <= 2)
        _finish(rec, trial, params["lr"] + (layer["_name"] == "pool"))

    history = _sequential(advisor, rec, 60, evaluate)
    assert any(m is not None for _t, m in history)


def test_import_data_feeds_the_budget_models():
    advisor = BOHB(max_budget=9, optimize_mode="maximize")
    rec = CommandRecorder(advisor)
    records = [{"parameter": {"x": 0.1 * i, "y": 0.5, TRIAL_BUDGET_KEY: 3}, "value": 0.1 * i} for i in range(5)]
    records.append({"parameter": {"x": 0.9, "y": 0.9}, "value": {"default": 2.0}})  # no budget: max_budget
    rec.command(CommandType.ImportData, records)  # before the search space: kept until it is known
    rec.command(CommandType.Initialize, SPACE)
    assert len(advisor.observations[3][0]) == 5 and advisor.observations[9][1] == [-2.0]
    assert advisor.best_value == 2.0
    # records that do not fit the space (out of range, missing parameter) are skipped, not modelled
    advisor.handle_import_data([{"parameter": {"x": 5.0, "y": 0.1}, "value": 1}, {"parameter": {"x": 0.5}, "value": 1},
                                {"parameter": {"x": 0.5, "y": 0.5, TRIAL_BUDGET_KEY: "many"}, "value": 1}])
    assert sum(len(rows) for rows, _l in advisor.observations.values()) == 6


def test_config_space_file_replaces_the_search_space(tmp_path):
    pcs = tmp_path / "space.pcs"
    pcs.write_text("lr real [0.0001, 0.1] [0.001]log\nopt categorical {sgd, adam} [sgd]\n"
                   "units integer [8, 64] [16]\nlayers ordinal {1, 2, 3} [1]\n")
    assert config_space_to_search_space(str(pcs)) == {
        "lr": {"_type": "loguniform", "_value": [0.0001, 0.1]},
        "opt": {"_type": "choice", "_value": ["sgd", "adam"]},
        "units": {"_type": "randint", "_value": [8, 65]},
        "layers": {"_type": "choice", "_value": ["1", "2", "3"]},
    }
    advisor, rec = _start(config_space=str(pcs))
    rec.command(CommandType.RequestTrialJobs, 3)
    for t in rec.take("TR"):
        p = _config(t)
        assert set(p) == {"lr", "opt", "units", "layers"}
        assert 0.0001 <= p["lr"] <= 0.1 and p["opt"] in ("sgd", "adam") and 8 <= p["units"] <= 64


def test_bad_config_space_files_are_one_line_errors(tmp_path):
    cond = tmp_path / "cond.pcs"
    cond.write_text("a categorical {x, y} [x]\nb real [0.0, 1.0] [0.5]\nb | a == x\n")
    with pytest.raises(ValueError, match="conditions") as info:
        BOHB(config_space=str(cond))
    assert "\n" not in str(info.value)
    junk = tmp_path / "junk.pcs"
    junk.write_text("this is not pcs\n")
    with pytest.raises(ValueError, match="config_space") as info:
        BOHB(config_space=str(junk))
    assert "\n" not in str(info.value)


def test_search_space_errors_name_bohb_and_the_parameter():
    advisor = BOHB()
    with pytest.raises(ValueError, match="TRIAL_BUDGET"):
        advisor.handle_update_search_space({"TRIAL_BUDGET": {"_type": "choice", "_value": [1, 2]}})
    with pytest.raises(ValueError, match="lr"):
        advisor.handle_update_search_space({"lr": {"_type": "loguniform", "_value": [0, 1]}})


def test_runs_under_the_real_command_protocol():
    from nni.testing import drive_dispatcher

    advisor = BOHB(min_budget=1, max_budget=3)
    commands = [(CommandType.Initialize, json.dumps(SPACE)), (CommandType.RequestTrialJobs, "3")]
    for pid in range(3):
        hyper = json.dumps({"parameter_id": pid, "parameter_source": "algorithm", "parameters": {}, "parameter_index": 0})
        commands.append((CommandType.ReportMetricData, json.dumps({
            "parameter_id": pid, "trial_job_id": f"T{pid}", "type": "PERIODICAL", "sequence": 0,
            "value": json.dumps({"default": pid / 10})})))
        commands.append((CommandType.TrialEnd, json.dumps({"trial_job_id": f"T{pid}", "event": "FAILED" if pid == 0
                                                           else "SUCCEEDED", "hyper_params": hyper})))
    commands += [(CommandType.RequestTrialJobs, "1"), (CommandType.Terminate, "")]
    replies = drive_dispatcher(advisor, commands)
    trials = [json.loads(d) for c, d in replies if c == CommandType.NewTrialJob]
    assert [t["parameters"][TRIAL_BUDGET_KEY] for t in trials] == [1, 1, 1, 3]
    assert _config(trials[3]) == _config(trials[2])  # the best of round 0 is promoted
