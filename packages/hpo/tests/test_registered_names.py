"""nni-hpo registers exactly the built-in names it implements, and each one loads."""
from __future__ import annotations

import pytest

from nni.runtime import registry
from nni.utils import ClassArgsValidator

EXPECTED = {
    "tuner": {"TPE", "Random", "Anneal", "Evolution", "GridSearch", "BatchTuner", "PBTTuner", "PPOTuner", "SMAC", "DNGOTuner",
              "GPTuner", "MetisTuner", "NetworkMorphism"},
    "assessor": {"Medianstop", "Curvefitting"},
    "advisor": {"Hyperband", "BOHB"},
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_hpo_provides_exactly_these_names(kind):
    provided = {e.name for e in registry.list_entries(kind) if e.distribution == "nni-hpo"}
    assert provided == EXPECTED[kind]


@pytest.mark.parametrize("kind,name", sorted((k, n) for k, names in EXPECTED.items() for n in names))
def test_each_name_loads_with_a_validator(kind, name):
    cls = registry.load_class(kind, name)
    assert cls.__module__.startswith("nni.algorithms.hpo.")
    validator = registry.load_validator(kind, name)
    assert isinstance(validator, type) and issubclass(validator, ClassArgsValidator), f"{name} has no classArgs validator"
    with pytest.raises(ValueError, match=r"classArgs\.\w+"):  # it really checks: a wrong classArg is refused, by name
        validator().validate_class_args(no_such_arg=1)

