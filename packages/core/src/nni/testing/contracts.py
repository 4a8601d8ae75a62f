"""Contract test suites every tuner and assessor must pass (pytest base classes).

A package subclasses a suite in its own tests and says what its algorithm claims::

    from nni.testing import TunerContract
    from nni.algorithms.hpo.tpe_tuner import TpeTuner

    class TestTpeContract(TunerContract):
        supported_types = TunerContract.ALL_TYPES
        supports_nested_choice = True

        def make_tuner(self):
            return TpeTuner(optimize_mode="maximize", seed=0)

Every configuration is checked after a JSON round trip (what the trial really receives)
against the raw search-space JSON, following the semantics of NNI's search-space spec.
"""
from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest

from ..assessor import AssessResult, Assessor
from ..runtime import protocol
from ..runtime.protocol import CommandType
from ..tuner import Tuner
from ..utils import NoMoreTrialError
from .search_space_check import ALL_TYPES, check_parameters, random_parameters

_TYPE_ORDER = tuple(ALL_TYPES)  # parametrize in a fixed order (xdist workers must agree)

__all__ = ["TunerContract", "AssessorContract", "TYPE_EXAMPLES", "drive_dispatcher"]

# One search-space entry per _type (values chosen so each type's rules are visible).
TYPE_EXAMPLES: dict[str, dict] = {
    "choice": {"_type": "choice", "_value": [2, 3, 5, 7]},
    "randint": {"_type": "randint", "_value": [1, 6]},
    "uniform": {"_type": "uniform", "_value": [0.1, 0.5]},
    "quniform": {"_type": "quniform", "_value": [2, 10, 5]},
    "loguniform": {"_type": "loguniform", "_value": [0.0001, 0.1]},
    "qloguniform": {"_type": "qloguniform", "_value": [1, 1000, 10]},
    "normal": {"_type": "normal", "_value": [0, 1]},
    "qnormal": {"_type": "qnormal", "_value": [0, 10, 2]},
    "lognormal": {"_type": "lognormal", "_value": [0, 1]},
    "qlognormal": {"_type": "qlognormal", "_value": [2, 1, 1]},
}
STRING_CHOICE = {"_type": "choice", "_value": ["linear", "rbf", "poly", "sigmoid"]}
NESTED_SPACE = {
    "layer0": {"_type": "choice", "_value": [
        {"_name": "Empty"},
        {"_name": "Conv", "kernel_size": {"_type": "choice", "_value": [1, 2, 3, 5]}},
        {"_name": "Max_pool", "pooling_size": {"_type": "choice", "_value": [2, 3, 5]}},
    ]},
    "lr": {"_type": "uniform", "_value": [0.0001, 0.1]},
}
# v2.5: dict options without "_name" are plain categorical values, given to the trial unchanged
PLAIN_DICT_CHOICE = {"_type": "choice", "_value": [
    {"optimizer": "Adam", "learning_rate": 0.001},
    {"optimizer": "SGD", "learning_rate": 0.01, "momentum": [0.9, 0.99]},
]}
# v2.5: a range whose low equals its high always gives that value
DEGENERATE_EXAMPLES: dict[str, tuple[dict, Any]] = {
    "randint": ({"_type": "randint", "_value": [4, 4]}, 4),
    "uniform": ({"_type": "uniform", "_value": [0.25, 0.25]}, 0.25),
    "quniform": ({"_type": "quniform", "_value": [6, 6, 2]}, 6),
    "loguniform": ({"_type": "loguniform", "_value": [0.001, 0.001]}, 0.001),
    "qloguniform": ({"_type": "qloguniform", "_value": [10, 10, 5]}, 10),
}


def _roundtrip(params: Any) -> Any:
    return json.loads(protocol.pack_parameter(0, params))["parameters"]


def drive_dispatcher(
    dispatcher: Any, commands: list[tuple[CommandType, str]], expect_error: bool = False
) -> list[tuple[CommandType, str]]:
    """Run ``dispatcher`` in-process over in-memory streams; return what it sent back.

    A handler's exception propagates unless ``expect_error`` (then the replies, ending with
    ``ER``, are returned)."""
    inp = io.BytesIO(b"".join(protocol.encode(c, d) for c, d in commands))
    out = io.BytesIO()
    old_in, old_out = protocol._in_file, protocol._out_file
    protocol.set_streams(inp, out)
    try:
        dispatcher.run()
    except Exception:
        if not expect_error:
            raise
    finally:
        protocol._in_file, protocol._out_file = old_in, old_out
    replies = []
    data = out.getvalue()
    pos = 0
    while pos < len(data):
        command, length = protocol.decode_header(data[pos:pos + 16])
        replies.append((command, data[pos + 16:pos + 16 + length].decode("utf-8")))
        pos += 16 + length
    return replies


class TunerContract:
    """Behaviour every tuner must have. Subclass as ``TestXxx`` and override :meth:`make_tuner`.

    Class attributes (the tuner's claims):
        supported_types: the ``_type``s the tuner accepts (default: all ten).
        supports_nested_choice: nested ``choice`` spaces with ``_name`` branches.
        numeric_choice_only: choice options must be numbers (GP, Metis, DNGO).
        rejects_unsupported_types: an unsupported ``_type`` raises ``ValueError`` (from
            ``update_search_space`` or the first ``generate_parameters``).
        exhausts_finite_spaces: on a finite space it generates every configuration once and
            then raises ``NoMoreTrialError``.
        supports_search_space_update: a second ``update_search_space`` takes effect.
        n_trials: how many configurations each test asks for (with results fed back, so
            model-based tuners get past their random start-up phase).
    """

    ALL_TYPES = frozenset(ALL_TYPES)
    supported_types: frozenset[str] | set[str] = frozenset(ALL_TYPES)
    supports_nested_choice = False
    numeric_choice_only = False
    rejects_unsupported_types = True
    exhausts_finite_spaces = False
    supports_search_space_update = True
    n_trials = 30

    def make_tuner(self) -> Tuner:
        raise NotImplementedError("TunerContract subclasses must override make_tuner()")

    # -- helpers -------------------------------------------------------------------------------------
    def search_space_part(self, params: dict) -> dict:
        """The part of generated parameters that must match the search space: all of them, unless
        the tuner adds keys of its own (PBT's checkpoint folders), which an override drops here."""
        return params

    def _space(self, types: Any) -> dict:
        space = {f"p_{t}": TYPE_EXAMPLES[t] for t in types}
        if "choice" in types and not self.numeric_choice_only:
            space["p_kernel"] = STRING_CHOICE
        return space

    def _run(self, tuner: Tuner, space: dict, n: int, start_id: int = 0, report: bool = True) -> list[dict]:
        out = []
        rng = random.Random(0)
        for pid in range(start_id, start_id + n):
            try:
                params = tuner.generate_parameters(pid)
            except NoMoreTrialError:
                break
            params = _roundtrip(params)
            check_parameters(space, self.search_space_part(params))
            out.append(params)
            if report:
                value = rng.random()
                tuner.receive_trial_result(pid, params, value if pid % 2 else {"default": value, "extra": 1})
                tuner.trial_end(pid, True)
        return out

    # -- tests ----------------------------------------------------------------------------------------
    @pytest.mark.parametrize("type_name", _TYPE_ORDER)
    def test_single_type_values_in_range(self, type_name: str) -> None:
        if type_name not in self.supported_types:
            pytest.skip(f"{type_name} not supported")
        tuner = self.make_tuner()
        space = {"x": TYPE_EXAMPLES[type_name]}
        tuner.update_search_space(space)
        got = self._run(tuner, space, self.n_trials)
        assert got, "the tuner generated nothing"

    def test_all_supported_types_together(self) -> None:
        tuner = self.make_tuner()
        space = self._space(sorted(self.supported_types))
        tuner.update_search_space(space)
        got = self._run(tuner, space, self.n_trials)
        assert got, "the tuner generated nothing"

    def test_string_choice(self) -> None:
        if "choice" not in self.supported_types or self.numeric_choice_only:
            pytest.skip("string choices not supported")
        tuner = self.make_tuner()
        space = {"kernel": STRING_CHOICE, "degree": {"_type": "choice", "_value": [1, 2, 3, 4]}}
        tuner.update_search_space(space)
        self._run(tuner, space, 12)

    def test_nested_choice(self) -> None:
        if not self.supports_nested_choice:
            pytest.skip("nested choice not claimed")
        tuner = self.make_tuner()
        space = NESTED_SPACE
        tuner.update_search_space(space)
        got = self._run(tuner, space, self.n_trials)
        assert got

    def test_plain_dict_choice_is_categorical(self) -> None:
        if "choice" not in self.supported_types or self.numeric_choice_only:
            pytest.skip("non-numeric choices not supported")
        tuner = self.make_tuner()
        space = {"combo": PLAIN_DICT_CHOICE, "k": {"_type": "choice", "_value": [1, 2]}}
        tuner.update_search_space(space)
        got = self._run(tuner, space, 12)
        assert got
        for params in got:
            assert params["combo"] in PLAIN_DICT_CHOICE["_value"], params
        assert space["combo"] == PLAIN_DICT_CHOICE  # the tuner did not change the search space

    @pytest.mark.parametrize("type_name", sorted(DEGENERATE_EXAMPLES))
    def test_degenerate_range_gives_its_value(self, type_name: str) -> None:
        if type_name not in self.supported_types:
            pytest.skip(f"{type_name} not supported")
        spec, expected = DEGENERATE_EXAMPLES[type_name]
        tuner = self.make_tuner()
        space = {"x": spec}
        if "choice" in self.supported_types:
            space["c"] = {"_type": "choice", "_value": [1, 2, 3, 4]}
        tuner.update_search_space(space)
        got = self._run(tuner, space, 15)
        assert got
        for params in got:
            assert params["x"] == expected, params
            assert type_name != "randint" or isinstance(params["x"], int), params

    def test_randint_float_bounds_rejected(self) -> None:
        if "randint" not in self.supported_types or not self.rejects_unsupported_types:
            pytest.skip("randint not supported")
        tuner = self.make_tuner()
        with pytest.raises(ValueError, match=r"'x'.*randint lower must be an integer, got 1\.0"):
            tuner.update_search_space({"x": {"_type": "randint", "_value": [1.0, 5]}})
            tuner.generate_parameters(0)

    @pytest.mark.parametrize("type_name", _TYPE_ORDER)
    def test_unsupported_type_rejected(self, type_name: str) -> None:
        if type_name in self.supported_types or not self.rejects_unsupported_types:
            pytest.skip("supported")
        tuner = self.make_tuner()
        with pytest.raises(ValueError):
            tuner.update_search_space({"x": TYPE_EXAMPLES[type_name]})
            tuner.generate_parameters(0)

    def test_unknown_type_rejected(self) -> None:
        if not self.rejects_unsupported_types:
            pytest.skip("not claimed")
        tuner = self.make_tuner()
        with pytest.raises(ValueError):
            tuner.update_search_space({"x": {"_type": "no_such_type", "_value": [1, 2]}})
            tuner.generate_parameters(0)

    def test_number_and_dict_results(self) -> None:
        tuner = self.make_tuner()
        space = self._space(sorted(self.supported_types))
        tuner.update_search_space(space)
        for pid in range(6):
            params = tuner.generate_parameters(pid)
            value = 0.1 * pid
            result = value if pid % 2 else {"default": value, "loss": 1 - value}
            tuner.receive_trial_result(pid, params, result)

    def test_generate_multiple_parameters(self) -> None:
        tuner = self.make_tuner()
        space = self._space(sorted(self.supported_types))
        tuner.update_search_space(space)
        got = tuner.generate_multiple_parameters([0, 1, 2])
        assert isinstance(got, list) and 1 <= len(got) <= 3
        for params in got:
            check_parameters(space, self.search_space_part(_roundtrip(params)))

    def _import_items(self, space: dict, n: int) -> list[dict]:
        rng = random.Random(1)
        return [{"parameter": _roundtrip(random_parameters(space, rng)), "value": rng.random() if i % 2 else {"default": rng.random()}}
                for i in range(n)]

    def test_import_data_before_generation(self) -> None:
        tuner = self.make_tuner()
        space = self._space(sorted(self.supported_types))
        tuner.update_search_space(space)
        tuner.import_data(self._import_items(space, 8))
        self._run(tuner, space, 10)

    def test_import_data_after_generation(self) -> None:
        tuner = self.make_tuner()
        space = self._space(sorted(self.supported_types))
        tuner.update_search_space(space)
        self._run(tuner, space, 5)
        tuner.import_data(self._import_items(space, 8))
        self._run(tuner, space, 5, start_id=5)

    def test_trial_end_without_result(self) -> None:
        tuner = self.make_tuner()
        space = self._space(sorted(self.supported_types))
        tuner.update_search_space(space)
        for pid in range(4):
            tuner.generate_parameters(pid)
            tuner.trial_end(pid, pid % 2 == 0)
        self._run(tuner, space, 3, start_id=4)

    def test_search_space_update(self) -> None:
        if not self.supports_search_space_update:
            pytest.skip("not claimed")
        tuner = self.make_tuner()
        types = sorted(self.supported_types)
        first = {"a": TYPE_EXAMPLES[types[0]]}
        tuner.update_search_space(first)
        self._run(tuner, first, 3)
        second = {"b": TYPE_EXAMPLES[types[-1]]}
        tuner.update_search_space(second)
        self._run(tuner, second, 3, start_id=3)

    def test_exhausts_finite_space(self) -> None:
        if not self.exhausts_finite_spaces:
            pytest.skip("not claimed")
        tuner = self.make_tuner()
        space = {"x": {"_type": "choice", "_value": [1, 2, 3]}, "y": {"_type": "choice", "_value": [4, 5]}}
        tuner.update_search_space(space)
        seen = []
        for pid in range(6):
            seen.append(json.dumps(_roundtrip(tuner.generate_parameters(pid)), sort_keys=True))
        assert len(set(seen)) == 6, f"a finite space of 6 configurations gave duplicates: {seen}"
        with pytest.raises(NoMoreTrialError):
            tuner.generate_parameters(6)
        assert tuner.generate_multiple_parameters([7, 8]) == []

    def _dispatch(self) -> tuple[dict, list[tuple[CommandType, str]]]:
        """Drive a fresh tuner through ``MsgDispatcher``: initialize, ask for 2 trials, report one
        result, end that trial, ask for 1 more. Returns the space and the replies."""
        from ..runtime.msg_dispatcher import MsgDispatcher

        space = self._space(sorted(self.supported_types))
        metric = {"parameter_id": 0, "trial_job_id": "Abcde", "type": "FINAL", "sequence": 0, "value": "0.5"}
        replies = drive_dispatcher(MsgDispatcher(self.make_tuner()), [
            (CommandType.Initialize, json.dumps(space)),
            (CommandType.RequestTrialJobs, "2"),
            (CommandType.ReportMetricData, json.dumps(metric)),
            (CommandType.TrialEnd, json.dumps({"trial_job_id": "Abcde", "event": "SUCCEEDED", "hyper_params": ""})),
            (CommandType.RequestTrialJobs, "1"),
            (CommandType.Terminate, ""),
        ])
        return space, replies

    def test_under_dispatcher(self) -> None:
        space, replies = self._dispatch()
        assert replies[0] == (CommandType.Initialized, "")
        trials = [json.loads(d) for c, d in replies if c is CommandType.NewTrialJob]
        assert len(trials) == 3
        assert len({t["parameter_id"] for t in trials}) == 3
        for t in trials:
            check_parameters(space, self.search_space_part(t["parameters"]))
        assert not [c for c, _ in replies if c is CommandType.Error]


class AssessorContract:
    """Behaviour every assessor must have. Subclass as ``TestXxx`` and override :meth:`make_assessor`.

    Class attributes:
        maximize: the direction :meth:`make_assessor` configures (used by the kill test).
        kills_clearly_bad_trials: after ``completed_trials`` good trials have finished, a trial
            whose curve stays far below them is judged ``Bad`` within ``history_length`` steps.
    """

    maximize = True
    kills_clearly_bad_trials = False
    completed_trials = 10
    history_length = 20

    def make_assessor(self) -> Assessor:
        raise NotImplementedError("AssessorContract subclasses must override make_assessor()")

    def _curve(self, good: bool, n: int) -> list[float]:
        top = [0.5 + 0.4 * (1 - 0.8**i) for i in range(n)] if good else [0.05 + 0.001 * i for i in range(n)]
        return top if self.maximize else [1 - v for v in top]

    @staticmethod
    def _ok(result: Any) -> bool:
        assert isinstance(result, (AssessResult, bool)), f"assess_trial returned {result!r}"
        return bool(result)

    def test_returns_assess_result_for_numbers_and_dicts(self) -> None:
        assessor = self.make_assessor()
        history: list[Any] = []
        for i, v in enumerate(self._curve(True, 8)):
            history.append(v if i % 2 else {"default": v, "loss": 1 - v})
            self._ok(assessor.assess_trial("Trial", list(history)))
        assessor.trial_end("Trial", True)

    def test_many_trials_interleaved(self) -> None:
        assessor = self.make_assessor()
        histories: dict[str, list[float]] = {f"T{i}": [] for i in range(5)}
        rng = random.Random(0)
        for step in range(10):
            for tid, h in histories.items():
                h.append(rng.random())
                self._ok(assessor.assess_trial(tid, list(h)))
        for i, tid in enumerate(histories):
            assessor.trial_end(tid, i % 2 == 0)

    def test_history_not_prefix_stable(self) -> None:
        assessor = self.make_assessor()
        self._ok(assessor.assess_trial("A", [1.0, 2.0]))
        self._ok(assessor.assess_trial("A", [0.9, 1.8, 2.3]))
        assessor.trial_end("A", True)

    def test_trial_end_of_unknown_trial(self) -> None:
        assessor = self.make_assessor()
        assessor.trial_end("never-seen", False)
        assessor.trial_end("never-seen-2", True)

    def test_kills_clearly_bad_trial(self) -> None:
        if not self.kills_clearly_bad_trials:
            pytest.skip("not claimed")
        assessor = self.make_assessor()
        for i in range(self.completed_trials):
            curve = self._curve(True, self.history_length)
            for step in range(1, len(curve) + 1):
                assessor.assess_trial(f"good{i}", curve[:step])
            assessor.trial_end(f"good{i}", True)
        bad = self._curve(False, self.history_length)
        verdicts = [self._ok(assessor.assess_trial("bad", bad[:step])) for step in range(1, len(bad) + 1)]
        assert False in verdicts, "a trial far below every finished trial was never judged Bad"

    def test_under_dispatcher(self) -> None:
        from ..runtime.msg_dispatcher import MsgDispatcher
        from .reference_tuner import ReferenceRandomTuner

        commands = [(CommandType.Initialize, json.dumps({"x": TYPE_EXAMPLES["uniform"]})),
                    (CommandType.RequestTrialJobs, "1")]
        for seq, v in enumerate(self._curve(True, 6)):
            record = {"parameter_id": 0, "trial_job_id": "Tr1", "type": "PERIODICAL", "sequence": seq, "value": json.dumps(v)}
            commands.append((CommandType.ReportMetricData, json.dumps(record)))
        commands += [(CommandType.TrialEnd, json.dumps({"trial_job_id": "Tr1", "event": "SUCCEEDED", "hyper_params": ""})),
                     (CommandType.Terminate, "")]
        replies = drive_dispatcher(MsgDispatcher(ReferenceRandomTuner(seed=0), self.make_assessor()), commands)
        assert not [c for c, _ in replies if c is CommandType.Error]
        kills = [json.loads(d) for c, d in replies if c is CommandType.KillTrialJob]
        assert kills in ([], ["Tr1"])
