"""Hyperband advisor: bracket arithmetic, and whole runs driven through the dispatcher's commands."""
from __future__ import annotations

import json
import math

import pytest

from nni.runtime.protocol import CommandType
from nni.testing import CommandRecorder
from nni.utils import check_class_args

from nni.algorithms.hpo.hyperband_advisor import (
    TRIAL_BUDGET_KEY,
    Hyperband,
    HyperbandClassArgsValidator,
    bracket_rounds,
    hyperband_brackets,
    hyperband_s_max,
)

SPACE = {
    "x": {"_type": "uniform", "_value": [0, 1]},
    "opt": {"_type": "choice", "_value": ["sgd", "adam"]},
    "units": {"_type": "randint", "_value": [8, 64]},
}


# ---- bracket arithmetic --------------------------------------------------------------------


def test_brackets_r81_eta3_follow_the_standard_formula():
    assert hyperband_brackets(81, 3) == {
        4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        3: [(34, 3), (11, 9), (3, 27), (1, 81)],
        2: [(15, 9), (5, 27), (1, 81)],
        1: [(8, 27), (2, 81)],
        0: [(5, 81)],
    }


def test_docs_example_agrees_on_budgets_and_rounds_but_not_on_middle_bracket_sizes():
    # The docs' R=81, eta=3 table: first-round n per bracket s=4..0 and its r values.
    docs_first_rounds = {4: (81, 1), 3: (27, 3), 2: (9, 9), 1: (6, 27), 0: (5, 81)}
    ours = hyperband_brackets(81, 3)
    for s, (n_docs, r_docs) in docs_first_rounds.items():
        assert ours[s][0][1] == r_docs
        assert len(ours[s]) == s + 1  # "bucket 4 has 5 rounds, bucket 3 has 4 rounds"
    assert [ours[s][0][0] for s in (4, 0)] == [81, 5]  # agree
    assert [ours[s][0][0] for s in (3, 2, 1)] == [34, 15, 8]  # the docs say 27, 9, 6


def test_default_r60_eta3_budgets_are_floored_ints():
    brackets = hyperband_brackets(60, 3)
    assert list(brackets) == [3, 2, 1, 0]
    assert brackets[3] == [(27, 2), (9, 6), (3, 20), (1, 60)]  # 60/27 = 2.22 -> 2, 60/9 = 6.67 -> 6
    assert brackets[0] == [(4, 60)]
    assert all(isinstance(r, int) for rounds in brackets.values() for _n, r in rounds)


@pytest.mark.parametrize("R,eta,expected", [(1, 3, 0), (2, 3, 0), (3, 3, 1), (8, 2, 3), (9, 3, 2), (26, 3, 2), (27, 3, 3),
                                            (81, 3, 4), (243, 3, 5), (100, 10, 2), (1000, 10, 3)])
def test_s_max_is_exact(R, eta, expected):
    assert hyperband_s_max(R, eta) == expected


@pytest.mark.parametrize("R,eta", [(81, 3), (60, 3), (100, 3), (27, 3), (64, 2), (1000, 10), (50, 4), (5, 2)])
def test_bracket_rounds_match_the_real_valued_formula(R, eta):
    s_max = hyperband_s_max(R, eta)
    assert eta**s_max <= R < eta ** (s_max + 1)
    for s in range(s_max + 1):
        rounds = bracket_rounds(R, eta, s)
        n = math.ceil((s_max + 1) / (s + 1) * eta**s - 1e-9)
        r = R * eta**-s
        assert rounds == [(n // eta**i, int(r * eta**i + 1e-9)) for i in range(s + 1)]
        assert rounds[-1][0] >= 1 and rounds[0][1] >= 1
        assert rounds[-1][1] == R


def test_bracket_rounds_rejects_s_out_of_range():
    with pytest.raises(ValueError, match="bracket s"):
        bracket_rounds(81, 3, 5)


# ---- classArgs -----------------------------------------------------------------------------


def test_class_args_validator_names_the_bad_key():
    assert Hyperband.class_args_validator is HyperbandClassArgsValidator
    check_class_args(HyperbandClassArgsValidator, {"R": 100, "eta": 3, "optimize_mode": "maximize", "exec_mode": "serial"})
    for args, key in [({"R": 0}, "R"), ({"eta": 1}, "eta"), ({"R": 2.5}, "R"), ({"exec_mode": "fast"}, "exec_mode"),
                      ({"optimize_mode": "max"}, "optimize_mode"), ({"budget": 3}, "budget")]:
        with pytest.raises(ValueError, match=rf"advisor\.classArgs\.{key}"):
            check_class_args(HyperbandClassArgsValidator, args, "advisor.classArgs")


def test_constructor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="exec_mode"):
        Hyperband(exec_mode="fast")


def test_registered_as_builtin_advisor():
    from nni.runtime import registry

    assert "Hyperband" in registry.list_names("advisor")
    assert registry.load_class("advisor", "Hyperband") is Hyperband


# ---- driving the advisor through commands --------------------------------------------------


def _start(R=9, eta=3, exec_mode="serial", optimize_mode="maximize", space=SPACE, seed=0):
    import numpy as np

    advisor = Hyperband(R=R, eta=eta, exec_mode=exec_mode, optimize_mode=optimize_mode)
    advisor.rng = np.random.default_rng(seed)
    rec = CommandRecorder(advisor)
    rec.command(CommandType.Initialize, space)
    assert rec.sent == [("ID", "")]
    rec.sent.clear()
    return advisor, rec


def _metric(rec, trial, kind, value, sequence=0):
    rec.command(CommandType.ReportMetricData, {
        "parameter_id": trial["parameter_id"], "trial_job_id": f"T{trial['parameter_id']}", "type": kind,
        "sequence": sequence, "value": json.dumps(value),
    })


def _end(rec, trial, event="SUCCEEDED"):
    rec.command(CommandType.TrialEnd, {
        "trial_job_id": f"T{trial['parameter_id']}", "event": event, "hyper_params": json.dumps(trial),
    })


def _config(trial):
    return {k: v for k, v in trial["parameters"].items() if k != TRIAL_BUDGET_KEY}


def test_first_round_trials_carry_trial_budget_and_sampled_parameters():
    _advisor, rec = _start()
    rec.command(CommandType.RequestTrialJobs, 4)
    trials = rec.take("TR")
    assert [t["parameter_id"] for t in trials] == [0, 1, 2, 3]
    for t in trials:
        p = t["parameters"]
        assert p[TRIAL_BUDGET_KEY] == 1 and isinstance(p[TRIAL_BUDGET_KEY], int)
        assert 0 <= p["x"] <= 1 and p["opt"] in ("sgd", "adam") and 8 <= p["units"] < 64
        assert t["parameter_source"] == "algorithm"


def test_promotion_keeps_the_best_third_with_eta_times_the_budget():
    _advisor, rec = _start(R=9, eta=3)
    rec.command(CommandType.RequestTrialJobs, 9)  # bracket s=2: 9 configs with budget 1
    first = rec.take("TR")
    assert len(first) == 9
    scores = [0.5, 0.9, 0.1, 0.7, 0.3, 0.95, 0.2, 0.6, 0.4]
    for trial, score in zip(first, scores):
        _metric(rec, trial, "PERIODICAL", {"default": score / 2, "loss": 1.0}, 0)  # first metric: no crash
        _metric(rec, trial, "FINAL", {"default": score, "loss": 1 - score})
    for trial in first[:-1]:
        _end(rec, trial)
    rec.command(CommandType.RequestTrialJobs, 3)
    assert rec.take("TR") == [] and rec.take("NO") == []  # serial: round 0 not finished yet
    _end(rec, first[-1])
    second = rec.take("TR")  # the kept requests are served as soon as the survivors are known
    assert [t["parameters"][TRIAL_BUDGET_KEY] for t in second] == [3, 3, 3]
    best3 = sorted(range(9), key=lambda i: -scores[i])[:3]
    assert [_config(t) for t in second] == [_config(first[i]) for i in best3]
    assert len({t["parameter_id"] for t in first + second}) == 12


def test_minimize_promotes_the_smallest_and_intermediate_results_rank_unfinished_trials():
    _advisor, rec = _start(R=3, eta=3, optimize_mode="minimize")  # s_max=1: bracket s=1 has rounds (3, 1), (1, 3)
    rec.command(CommandType.RequestTrialJobs, 3)
    first = rec.take("TR")
    assert [t["parameters"][TRIAL_BUDGET_KEY] for t in first] == [1, 1, 1]
    _metric(rec, first[0], "FINAL", 0.5)
    _metric(rec, first[1], "PERIODICAL", 0.2, 0)  # no final: its result at the budget's step counts
    # first[2] fails without any result: never promoted
    _end(rec, first[0])
    _end(rec, first[1], "FAILED")
    _end(rec, first[2], "FAILED")
    rec.command(CommandType.RequestTrialJobs, 1)
    (second,) = rec.take("TR")
    assert second["parameters"][TRIAL_BUDGET_KEY] == 3
    assert _config(second) == _config(first[1])


def test_intermediate_result_at_the_budget_step_outranks_later_ones():
    _advisor, rec = _start(R=3, eta=3)
    rec.command(CommandType.RequestTrialJobs, 3)
    a, b, c = rec.take("TR")
    _metric(rec, a, "PERIODICAL", 0.9, 0)  # budget 1: sequence 0 is the budget's step
    _metric(rec, a, "PERIODICAL", 0.1, 1)  # ran past its budget: ignored for ranking
    _metric(rec, b, "PERIODICAL", 0.5, 0)
    _metric(rec, c, "PERIODICAL", 0.4, 0)
    for t in (a, b, c):
        _end(rec, t, "EARLY_STOPPED")
    rec.command(CommandType.RequestTrialJobs, 1)
    (second,) = rec.take("TR")
    assert _config(second) == _config(a)


def _run_experiment(advisor, rec, concurrency, max_trials=1000):
    """A fake manager: keep `concurrency` trials running, each reporting a deterministic score,
    end them oldest first; returns the trials in start order and the order of events."""
    events: list[tuple[str, dict]] = []
    running: list[dict] = []
    started: list[dict] = []

    def request(n):
        rec.command(CommandType.RequestTrialJobs, n)

    request(concurrency)
    for _ in range(10 * max_trials):
        new = rec.take("TR")
        started.extend(new)
        running.extend(new)
        events.extend(("start", t) for t in new)
        if rec.take("NO"):
            events.append(("no", {}))
        if not running:
            break
        trial = running.pop(0)
        p = trial["parameters"]
        score = p["x"] * (1 - 1 / (1 + p[TRIAL_BUDGET_KEY]))
        for step in range(p[TRIAL_BUDGET_KEY]):
            _metric(rec, trial, "PERIODICAL", score * (step + 1) / p[TRIAL_BUDGET_KEY], step)
        _metric(rec, trial, "FINAL", score)
        _end(rec, trial)
        events.append(("end", trial))
        if len(started) < max_trials:
            request(1)
    return started, events


def test_serial_mode_runs_one_execution_bracket_by_bracket_then_says_no_more():
    advisor, rec = _start(R=9, eta=3, exec_mode="serial")
    started, events = _run_experiment(advisor, rec, concurrency=4)
    expected = hyperband_brackets(9, 3)
    assert len(started) == sum(n for rounds in expected.values() for n, _r in rounds) == 22
    assert [b.s for b in advisor.brackets] == [2, 1, 0]
    assert all(b.done for b in advisor.brackets)
    assert ("no", {}) in events
    # at most one unfinished bracket: every trial of a bracket ends before the next bracket starts
    bracket_of = {t["parameter_id"]: advisor.runs[t["parameter_id"]].bracket.s for t in started}
    last_end = {}
    first_start = {}
    for i, (kind, t) in enumerate(events):
        if kind == "end":
            last_end[bracket_of[t["parameter_id"]]] = i
        elif kind == "start":
            first_start.setdefault(bracket_of[t["parameter_id"]], i)
    assert last_end[2] < first_start[1] and last_end[1] < first_start[0]
    # each bracket's budgets follow the schedule round by round
    for s, rounds in expected.items():
        budgets = [t["parameters"][TRIAL_BUDGET_KEY] for t in started if bracket_of[t["parameter_id"]] == s]
        assert budgets == [r for n, r in rounds for _ in range(n)]
    # the best configuration reached the full budget
    assert advisor.best_parameters[TRIAL_BUDGET_KEY] == 9
    # once exhausted, further requests are answered with NO at once
    rec.command(CommandType.RequestTrialJobs, 2)
    assert rec.take("TR") == [] and len(rec.take("NO")) == 1


def test_parallelism_mode_starts_new_brackets_and_iterations_at_once():
    advisor, rec = _start(R=9, eta=3, exec_mode="parallelism")
    rec.command(CommandType.RequestTrialJobs, 30)
    trials = rec.take("TR")
    assert len(trials) == 30 and rec.take("NO") == []
    budgets = [t["parameters"][TRIAL_BUDGET_KEY] for t in trials]
    # s=2 (9 x 1), s=1 (5 x 3), s=0 (3 x 9), then a second iteration: s=2 (9 x 1), s=1 (4 of 5 x 3)
    assert budgets == [1] * 9 + [3] * 5 + [9] * 3 + [1] * 9 + [3] * 4
    assert [(b.iteration, b.s) for b in advisor.brackets] == [(0, 2), (0, 1), (0, 0), (1, 2), (1, 1)]


def test_parallelism_mode_serves_promotions_before_new_brackets():
    advisor, rec = _start(R=3, eta=3, exec_mode="parallelism")  # brackets: s=1 (3x1, 1x3), s=0 (2x3)
    rec.command(CommandType.RequestTrialJobs, 3)
    first = rec.take("TR")
    for i, t in enumerate(first):
        _metric(rec, t, "FINAL", i / 10)
        _end(rec, t)
    rec.command(CommandType.RequestTrialJobs, 2)
    promoted, new_bracket = rec.take("TR")
    assert promoted["parameters"][TRIAL_BUDGET_KEY] == 3 and _config(promoted) == _config(first[2])
    assert advisor.runs[new_bracket["parameter_id"]].bracket.s == 0


def test_full_parallel_run_keeps_going_until_the_trial_limit():
    advisor, rec = _start(R=9, eta=3, exec_mode="parallelism")
    started, events = _run_experiment(advisor, rec, concurrency=5, max_trials=60)
    assert len(started) >= 60 and ("no", {}) not in events
    assert advisor.brackets[0].done and advisor.brackets[0].iteration == 0
    assert max(b.iteration for b in advisor.brackets) >= 1


def test_unsupported_metric_type_fails_through_the_error_path():
    _advisor, rec = _start()
    rec.command(CommandType.RequestTrialJobs, 1)
    (trial,) = rec.take("TR")
    with pytest.raises(ValueError, match="metric type 'CUSTOMIZED'"):
        rec.command(CommandType.ReportMetricData, {"parameter_id": 0, "trial_job_id": "T0", "type": "CUSTOMIZED",
                                                   "sequence": 0, "value": "1"})
    errors = rec.take("ER")
    assert len(errors) == 1 and "CUSTOMIZED" in errors[0].splitlines()[0]  # one line, then the traceback


def test_request_before_initialize_is_an_error_line():
    advisor = Hyperband()
    rec = CommandRecorder(advisor)
    with pytest.raises(RuntimeError):
        rec.command(CommandType.RequestTrialJobs, 1)
    assert rec.take("ER")


def test_search_space_checks():
    _advisor, rec = _start(space={
        "lr": {"_type": "qloguniform", "_value": [0.0001, 0.1, 0.0001]},
        "m": {"_type": "normal", "_value": [0, 1]},
        "layer": {"_type": "choice", "_value": [{"_name": "conv", "k": {"_type": "choice", "_value": [3, 5]}},
                                                {"_name": "pool"}]},
    })
    rec.command(CommandType.RequestTrialJobs, 5)
    for t in rec.take("TR"):
        assert t["parameters"]["layer"]["_name"] in ("conv", "pool")
    advisor = Hyperband()
    with pytest.raises(ValueError, match="TRIAL_BUDGET"):
        advisor.handle_update_search_space({"TRIAL_BUDGET": {"_type": "choice", "_value": [1, 2]}})
    with pytest.raises(ValueError, match="lr"):
        advisor.handle_update_search_space({"lr": {"_type": "loguniform", "_value": [0, 1]}})


def test_import_data_and_customized_trials_do_not_touch_brackets():
    advisor, rec = _start()
    rec.command(CommandType.ImportData, [{"parameter": {"x": 0.3}, "value": json.dumps(0.8)},
                                         {"parameter": {"x": 0.4}, "value": {"default": 0.9}}])
    assert advisor.best_parameters == {"x": 0.4} and advisor.best_value == 0.9
    rec.command(CommandType.AddCustomizedTrialJob, {"x": 0.5, "opt": "sgd", "units": 9})
    (custom,) = rec.take("TR")
    assert custom["parameter_source"] == "customized" and custom["parameters"] == {"x": 0.5, "opt": "sgd", "units": 9}
    _metric(rec, custom, "FINAL", 0.99)
    _end(rec, custom)
    assert advisor.brackets == []


def test_multiphase_request_parameter_gets_a_new_configuration():
    _advisor, rec = _start()
    rec.command(CommandType.RequestTrialJobs, 1)
    (trial,) = rec.take("TR")
    rec.command(CommandType.ReportMetricData, {"parameter_id": trial["parameter_id"], "trial_job_id": "T0",
                                               "type": "REQUEST_PARAMETER", "sequence": 0, "value": "",
                                               "parameter_index": 1})
    (sp,) = rec.take("SP")
    assert sp["trial_job_id"] == "T0" and sp["parameter_index"] == 1
    assert sp["parameters"][TRIAL_BUDGET_KEY] == 1 and sp["parameter_id"] != trial["parameter_id"]


def test_nan_results_are_never_promoted():
    _advisor, rec = _start(R=3, eta=3)
    rec.command(CommandType.RequestTrialJobs, 3)
    first = rec.take("TR")
    _metric(rec, first[0], "FINAL", float("nan"))
    _metric(rec, first[1], "FINAL", 0.1)
    _metric(rec, first[2], "FINAL", 0.05)
    for t in first:
        _end(rec, t)
    rec.command(CommandType.RequestTrialJobs, 1)
    (second,) = rec.take("TR")
    assert _config(second) == _config(first[1])


def test_runs_under_the_real_command_protocol():
    from nni.testing import drive_dispatcher

    advisor = Hyperband(R=3, eta=3, exec_mode="serial")
    commands = [(CommandType.Initialize, json.dumps(SPACE)), (CommandType.RequestTrialJobs, "3")]
    for pid in range(3):
        hyper = json.dumps({"parameter_id": pid, "parameter_source": "algorithm", "parameters": {}, "parameter_index": 0})
        for seq in range(2):  # the first metric of the experiment is an intermediate one
            record = {"parameter_id": pid, "trial_job_id": f"T{pid}", "type": "PERIODICAL", "sequence": seq,
                      "value": json.dumps({"default": pid + seq / 10})}
            commands.append((CommandType.ReportMetricData, json.dumps(record)))
        commands.append((CommandType.TrialEnd, json.dumps({"trial_job_id": f"T{pid}", "event": "SUCCEEDED",
                                                           "hyper_params": hyper})))
    commands += [(CommandType.RequestTrialJobs, "1"), (CommandType.Terminate, "")]
    replies = drive_dispatcher(advisor, commands)
    codes = [c.value.decode() for c, _ in replies]
    assert codes == ["ID", "TR", "TR", "TR", "TR"]
    last = json.loads(replies[-1][1])
    assert last["parameter_id"] == 3 and last["parameters"][TRIAL_BUDGET_KEY] == 3
    first = [json.loads(d) for _c, d in replies[1:4]]
    assert _config(last) == _config(first[2])  # the best at the budget's step (sequence 0): pid 2
