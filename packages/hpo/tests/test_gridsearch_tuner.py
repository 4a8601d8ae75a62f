"""GridSearchTuner: contract, every point exactly once, the quniform grid, nested choices."""
from __future__ import annotations

import json

import pytest

from nni.algorithms.hpo.gridsearch_tuner import GridSearchClassArgsValidator, GridSearchTuner
from nni.testing import TunerContract
from nni.utils import NoMoreTrialError, check_class_args


class TestGridSearchContract(TunerContract):
    supported_types = frozenset({"choice", "randint", "quniform"})
    supports_nested_choice = True
    exhausts_finite_spaces = True

    def make_tuner(self):
        return GridSearchTuner()

    def test_nested_choice(self) -> None:
        # the suite's nested space has a ``uniform`` parameter, which GridSearch rejects (docs:
        # choice, randint, quniform only); the same shape with a quniform instead
        import copy

        from nni.testing.contracts import NESTED_SPACE, _roundtrip
        from nni.testing import check_parameters

        space = copy.deepcopy(NESTED_SPACE)
        space["lr"] = {"_type": "quniform", "_value": [0.0001, 0.1, 0.05]}
        tuner = self.make_tuner()
        tuner.update_search_space(space)
        got = _all(tuner)
        for params in got:
            check_parameters(space, _roundtrip(params))
        assert len(got) == (1 + 4 + 3) * 3


def _all(tuner):
    out = []
    while True:
        try:
            out.append(tuner.generate_parameters(len(out)))
        except NoMoreTrialError:
            return out


def test_every_point_exactly_once():
    space = {"c": {"_type": "choice", "_value": ["a", "b", "c"]}, "r": {"_type": "randint", "_value": [1, 4]},
             "q": {"_type": "quniform", "_value": [0, 10, 2.5]}}
    tuner = GridSearchTuner()
    tuner.update_search_space(space)
    got = _all(tuner)
    assert len(got) == 3 * 3 * 5
    assert len({json.dumps(p, sort_keys=True) for p in got}) == len(got)
    assert {p["r"] for p in got} == {1, 2, 3}
    assert sorted({p["q"] for p in got}) == [0, 2.5, 5, 7.5, 10]
    assert tuner.generate_multiple_parameters([100]) == []


def test_quniform_grid_follows_the_spec_formula():
    tuner = GridSearchTuner()
    tuner.update_search_space({"q": {"_type": "quniform", "_value": [2, 10, 5]}})
    assert [p["q"] for p in _all(tuner)] == [2, 5, 10]


def test_nested_choice():
    space = {"layer": {"_type": "choice", "_value": [
        {"_name": "Empty"},
        {"_name": "Conv", "kernel_size": {"_type": "choice", "_value": [1, 3]}},
        {"_name": "Pool", "size": {"_type": "randint", "_value": [2, 4]}}]}}
    tuner = GridSearchTuner()
    tuner.update_search_space(space)
    got = _all(tuner)
    assert got == [{"layer": {"_name": "Empty"}}, {"layer": {"_name": "Conv", "kernel_size": 1}},
                   {"layer": {"_name": "Conv", "kernel_size": 3}}, {"layer": {"_name": "Pool", "size": 2}},
                   {"layer": {"_name": "Pool", "size": 3}}]


@pytest.mark.parametrize("type_name", ["uniform", "loguniform", "normal", "qlognormal"])
def test_continuous_types_rejected_with_names(type_name):
    tuner = GridSearchTuner()
    with pytest.raises(ValueError, match=f"(?=.*{type_name})(?=.*GridSearch)"):
        tuner.update_search_space({"x": {"_type": type_name, "_value": [1, 2, 1] if type_name.startswith("q") else [1, 2]}})


def test_import_data_skips_evaluated():
    tuner = GridSearchTuner()
    tuner.update_search_space({"q": {"_type": "quniform", "_value": [0, 2, 1]}})
    tuner.import_data([{"parameter": {"q": 1}, "value": 0.5}])
    assert [p["q"] for p in _all(tuner)] == [0, 2]


def test_class_args():
    check_class_args(GridSearchClassArgsValidator, {})
    with pytest.raises(ValueError, match="optimize_mode"):
        check_class_args(GridSearchClassArgsValidator, {"optimize_mode": "maximize"})
