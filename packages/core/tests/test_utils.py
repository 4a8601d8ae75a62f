import argparse
import math

import numpy as np
import pytest
from schema import Optional, Schema

import nni
from nni.utils import (
    ClassArgsError,
    ClassArgsValidator,
    OptimizeMode,
    check_class_args,
    extract_scalar_history,
    extract_scalar_reward,
    merge_parameter,
    split_index,
)


def test_exports():
    assert nni.NoMoreTrialError is __import__("nni.utils").utils.NoMoreTrialError
    assert nni.ClassArgsValidator is ClassArgsValidator
    assert OptimizeMode("maximize") is OptimizeMode.Maximize


@pytest.mark.parametrize("value,expected", [(1, 1.0), (0.5, 0.5), (np.float32(0.25), 0.25), (np.int64(3), 3.0),
                                            ({"default": 2, "other": "x"}, 2.0)])
def test_extract_scalar_reward(value, expected):
    assert extract_scalar_reward(value) == expected


def test_extract_scalar_reward_nan_passes():
    assert math.isnan(extract_scalar_reward(float("nan")))


@pytest.mark.parametrize("value,err,match", [
    ("0.5", TypeError, r"^metric '0\.5' has no scalar \(it is a str\); built-in tuners and assessors need a number or a dict with a numeric 'default' key$"),
    (True, TypeError, r"^metric True has no scalar \(it is a bool\)"),
    ([1], ValueError, r"^metric \[1\] has no scalar \(it is a list\); .* need a number or a dict with a numeric 'default' key$"),
    ({"acc": 1}, ValueError, r"^metric \{'acc': 1\} has no scalar \(it is a dict without a 'default' key\)"),
    ({"default": "1"}, ValueError, r"its 'default' is a str"),
])
def test_extract_scalar_reward_errors(value, err, match):
    # ValueError for the v2.5 contract, still a TypeError for callers written against ours
    with pytest.raises(err, match=match) as info:
        extract_scalar_reward(value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    assert "\n" not in str(info.value)


def test_extract_scalar_history():
    assert extract_scalar_history([1, {"default": 2}]) == [1.0, 2.0]


def test_split_index():
    assert split_index({"a": {"_index": 1, "_value": {"b": {"_index": 0, "_value": 3}}}}) == {"a": {"b": 3}}


def test_merge_parameter_namespace_in_place():
    ns = argparse.Namespace(lr=0.1, batch_size=32, name="x")
    out = merge_parameter(ns, {"lr": 1, "batch_size": 64.0})
    assert out is ns and ns.lr == 1.0 and isinstance(ns.lr, float) and ns.batch_size == 64 and isinstance(ns.batch_size, int)
    assert merge_parameter(ns, None) is ns


def test_merge_parameter_dict_and_unknown_key():
    d = {"lr": 0.1}
    assert merge_parameter(d, {"lr": 0.2}) is d and d["lr"] == 0.2
    with pytest.raises(ValueError, match="'momentum'"):
        merge_parameter(d, {"momentum": 0.9})


class DocsValidator(ClassArgsValidator):  # the docs' example, verbatim
    def validate_class_args(self, **kwargs):
        Schema({
            Optional("optimize_mode"): self.choices("optimize_mode", "maximize", "minimize"),
            Optional("start_step"): self.range("start_step", int, 0, 9999),
        }).validate(kwargs)


def test_docs_validator_accepts_good_args():
    check_class_args(DocsValidator, {"optimize_mode": "maximize", "start_step": 5}, "assessor.classArgs")


@pytest.mark.parametrize("args,message", [
    ({"optimize_mode": "max"}, "assessor.classArgs.optimize_mode must be one of 'maximize', 'minimize', got 'max'"),
    ({"start_step": -1}, "assessor.classArgs.start_step must be an int in [0, 9999], got -1"),
    ({"start_step": True}, "assessor.classArgs.start_step must be an int in [0, 9999], got True"),
])
def test_docs_validator_messages_are_one_line(args, message):
    with pytest.raises(ClassArgsError) as info:
        check_class_args(DocsValidator, args, "assessor.classArgs")
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_unknown_key_with_schema_is_one_line():
    with pytest.raises(ValueError) as info:
        check_class_args(DocsValidator(), {"bogus": 1}, "tuner.classArgs")
    assert "\n" not in str(info.value) and "bogus" in str(info.value) and str(info.value).startswith("tuner.classArgs")


class PlainValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs):
        self.check(kwargs, required={"optimize_mode": self.choices("optimize_mode", "maximize", "minimize")},
                   optional={"population_size": self.range("population_size", int, 1, None), "alpha": self.range("alpha", float, 0, 1)})


def test_plain_check_helpers():
    check_class_args(PlainValidator, {"optimize_mode": "minimize", "population_size": 10, "alpha": 1})
    with pytest.raises(ValueError, match=r"^tuner.classArgs.optimize_mode is required$"):
        check_class_args(PlainValidator, {}, "tuner.classArgs")
    with pytest.raises(ValueError, match=r"classArgs.foo is not a known argument; allowed: alpha, optimize_mode, population_size"):
        check_class_args(PlainValidator, {"optimize_mode": "minimize", "foo": 1})
    with pytest.raises(ValueError, match=r"alpha must be a float in \[0, 1\], got 2"):
        check_class_args(PlainValidator, {"optimize_mode": "minimize", "alpha": 2})


def test_base_validator_accepts_anything_and_none_validator():
    check_class_args(ClassArgsValidator, {"anything": object()})
    check_class_args(None, {"x": 1})


def test_validator_raising_other_error_is_wrapped():
    class Bad(ClassArgsValidator):
        def validate_class_args(self, **kwargs):
            raise KeyError("R")

    with pytest.raises(ValueError, match=r"^advisor.classArgs: 'R'$"):
        check_class_args(Bad, {}, "advisor.classArgs")
