"""nni.retiarii.serializer: traceable objects, JSON dump/load, re-creation in another process."""
import collections
import json
import os
import subprocess
import sys
import textwrap

import pytest

from nni.retiarii.serializer import (
    dump, get_init_kwargs, get_trace, is_traceable, load, recreate, serialize, serialize_cls,
)


class Plain:
    def __init__(self, a, b=2, *rest, c=3, **extra):
        self.a, self.b, self.rest, self.c, self.extra = a, b, rest, c, extra

    def __eq__(self, other):
        return type(other) is type(self) and vars(_strip(other)) == vars(_strip(self))


def _strip(obj):
    copy = object.__new__(type(obj))
    copy.__dict__.update({k: v for k, v in vars(obj).items() if k != "_nni_trace"})
    return copy


@serialize_cls
class Traced:
    def __init__(self, x, y=0):
        self.x, self.y = x, y


class InheritsInit(Traced):
    pass


class OwnInit(Traced):
    def __init__(self, z):
        super().__init__(z, y=z)


@serialize_cls
class DecoratedOwnInit(Traced):
    def __init__(self, z):
        super(DecoratedOwnInit, self).__init__(z, y=-z)  # the old super() form must keep working


def make_counter(start, step=1):
    return collections.Counter({"start": start, "step": step})


def test_serialize_records_the_call_and_leaves_the_class_alone():
    obj = serialize(Plain, 1, 5, 6, 7, c=8, d=9)
    assert isinstance(obj, Plain) and (obj.a, obj.b, obj.rest, obj.c, obj.extra) == (1, 5, (6, 7), 8, {"d": 9})
    assert get_trace(obj) == (Plain, (1, 5, 6, 7), {"c": 8, "d": 9})
    assert get_init_kwargs(obj) == {"a": 1, "b": 5, "rest": (6, 7), "c": 8, "d": 9}
    assert not is_traceable(Plain(1))  # the class itself is untouched
    again = recreate(obj)
    assert again is not obj and again == obj and get_trace(again) == get_trace(obj)


def test_serialize_with_a_factory_function():
    counter = serialize(make_counter, 4, step=2)
    assert counter == {"start": 4, "step": 2} and get_init_kwargs(counter) == {"start": 4, "step": 2}
    assert load(dump(counter)) == counter


def test_serialize_of_an_instance_returns_it_unchanged_and_checks_it_pickles():
    obj = Plain(1)
    assert serialize(obj) is obj and not is_traceable(obj)
    with pytest.raises(TypeError, match=r"^serialize: the first argument must be a class or a factory function"):
        serialize(obj, 1)
    with pytest.raises(TypeError, match=r"^serialize: cannot pickle a generator instance"):
        serialize(x for x in range(3))


def test_serialize_cls_traces_instances_in_place():
    obj = Traced(1, y=2)
    assert type(obj) is Traced and get_trace(obj) == (Traced, (1,), {"y": 2})
    assert Traced.__init__.__name__ == "__init__" and Traced.__init__.__doc__ is None
    assert serialize_cls(Traced) is Traced and get_trace(Traced(3)).args == (3,)  # decorating twice is harmless
    # a subclass without its own __init__ is traced as itself
    assert get_trace(InheritsInit(5)) == (InheritsInit, (5,), {})
    # a subclass with its own, undecorated __init__: the base's super() call must not be recorded
    own = OwnInit(4)
    assert (own.x, own.y) == (4, 4) and not is_traceable(own)
    decorated = DecoratedOwnInit(6)
    assert (decorated.x, decorated.y) == (6, -6) and get_trace(decorated) == (DecoratedOwnInit, (6,), {})
    with pytest.raises(TypeError, match="serialize_cls: expected a class"):
        serialize_cls(make_counter)


def test_get_trace_of_untraceable_object_names_the_fix():
    with pytest.raises(TypeError, match=r"Plain instance is not traceable: create it with nni.retiarii.serialize"):
        get_trace(Plain(1))


def test_dump_load_json_values_and_tags():
    value = {"i": 1, "f": 0.5, "s": "x", "n": None, "b": True, "l": [1, (2, 3)], "t": (1, [2]),
             "d": {1: "int key", (1, 2): "tuple key"}, "__nni_type__": "user data"}
    text = dump(value)
    json.loads(text)  # plain JSON
    assert load(text) == value
    assert type(load(text)["t"]) is tuple and type(load(text)["l"][1]) is tuple


def test_dump_load_classes_and_functions_by_import_path():
    text = dump({"cls": collections.OrderedDict, "fn": os.path.join, "builtin": len, "traced": Traced})
    data = json.loads(text)
    assert data["cls"] == {"__nni_type__": "path", "value": "collections:OrderedDict"}
    assert data["fn"]["value"].endswith(":join") and data["builtin"]["value"] == "builtins:len"
    loaded = load(text)
    assert loaded["cls"] is collections.OrderedDict and loaded["fn"] is os.path.join and loaded["builtin"] is len
    assert loaded["traced"] is Traced


def test_dump_load_nested_traceable_objects():
    inner = serialize(Plain, [1, 2], c=(3, 4))
    outer = Traced(inner, y=serialize(collections.OrderedDict, [("k", 1)]))
    text = dump(outer)
    data = json.loads(text)
    assert data["__nni_type__"] == "object" and data["args"][0]["__nni_type__"] == "object"
    again = load(text)
    assert type(again) is Traced and is_traceable(again) and is_traceable(again.x)
    assert again.x == inner and again.y == collections.OrderedDict(k=1)
    assert dump(again) == text  # stable: re-dumping a loaded object gives the same text


def test_dump_pickles_what_cannot_be_named():
    def local_scale(v, factor=3):
        return v * factor

    class Local:
        def __init__(self, v):
            self.v = v

    text = dump({"lambda": lambda v: v + 1, "closure": local_scale, "local": serialize(Local, 7), "set": {1, 2}})
    data = json.loads(text)
    assert data["lambda"]["__nni_type__"] == "pickle" and data["local"]["symbol"]["__nni_type__"] == "pickle"
    loaded = load(text)
    assert loaded["lambda"](1) == 2 and loaded["closure"](2) == 6 and loaded["set"] == {1, 2}
    assert loaded["local"].v == 7 and is_traceable(loaded["local"])


def test_dump_names_what_cannot_be_pickled():
    with pytest.raises(TypeError, match=r"^serializer.dump: cannot pickle a generator instance"):
        dump(Traced(x for x in range(2)))


def test_load_rejects_unknown_tag():
    with pytest.raises(ValueError, match=r"unknown __nni_type__ 'nope'; allowed: tuple, dict, path, pickle, object"):
        load('{"__nni_type__": "nope"}')


_EXPERIMENT_SCRIPT = """
import sys
import nni
from nni.retiarii import serializer
from nni.retiarii.evaluator import FunctionalEvaluator


class Dataset:  # defined in the main script: cannot be imported by the trial
    def __init__(self, values, offset=0):
        self.values = [v + offset for v in values]


def fit(model_cls, dataset, scale):
    model = model_cls()
    nni.report_intermediate_result(len(dataset.values))
    nni.report_final_result(model(sum(dataset.values)) * scale)


evaluator = FunctionalEvaluator(fit, dataset=serializer.serialize(Dataset, [1, 2, 3], offset=10), scale=2)
with open(sys.argv[1], "w") as f:
    f.write(serializer.dump(evaluator))
"""

_TRIAL_SCRIPT = """
import sys
from nni.retiarii import serializer
evaluator = serializer.load(open(sys.argv[1]).read())
print(type(evaluator).__name__, sorted(evaluator.arguments), type(evaluator.arguments["dataset"]).__name__)
evaluator._execute(lambda: abs)
print("lightning" in sys.modules)
"""


def test_evaluator_defined_in_a_main_script_runs_in_another_process(tmp_path):
    """The docs' FunctionalEvaluator limitation (fit must live in another file) is lifted."""
    script = tmp_path / "experiment.py"
    script.write_text(textwrap.dedent(_EXPERIMENT_SCRIPT))
    dumped = tmp_path / "evaluator.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNI_PLATFORM")}
    subprocess.run([sys.executable, str(script), str(dumped)], check=True, env=env, cwd=tmp_path, timeout=60)
    trial = tmp_path / "trial"
    trial.mkdir()  # another folder: experiment.py is not importable from here
    (trial / "trial.py").write_text(_TRIAL_SCRIPT)
    result = subprocess.run([sys.executable, "trial.py", str(dumped)], env=env, cwd=trial, timeout=60,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "FunctionalEvaluator ['dataset', 'scale'] Dataset"
    assert "[nni standalone] Intermediate result: 3  (Index 0)" in lines
    assert "[nni standalone] Final result: 72" in lines  # (11 + 12 + 13) * 2
    assert lines[-1] == "False"  # a functional trial does not pay for importing Lightning


def test_model_space_instances_are_traceable_through_their_wrapper_record():
    import torch

    import nni.retiarii.nn.pytorch as nn
    from nni.retiarii import model_wrapper

    @model_wrapper
    class Net(nn.Module):
        def __init__(self, hidden, act=None):
            super().__init__()
            self.fc = nn.Linear(3, hidden)
            self.act = act

        def forward(self, x):
            return self.act(self.fc(x))

    net = Net(5, act=nn.Tanh())
    assert get_trace(net) == (Net, (5,), {"act": net.act}) and get_init_kwargs(net) == {"hidden": 5, "act": net.act}
    again = load(dump(net))
    assert type(again).__name__ == "Net" and again.fc.out_features == 5 and type(again.act) is nn.Tanh
    assert again(torch.zeros(2, 3)).shape == (2, 5)


def test_wrapper_and_serializer_share_one_record_of_init_args():
    import nni.retiarii.nn.pytorch as nn
    from nni.retiarii import basic_unit, get_init_args, model_wrapper

    @basic_unit
    class Unit(nn.Module):
        def __init__(self, width, scale=1.0):
            super().__init__()
            self.width, self.scale = width, scale

    @serialize_cls
    class TracedUnit(Unit):  # serialize_cls outermost: its own arguments, not those passed to super()
        def __init__(self, width):
            super().__init__(width * 2, scale=0.5)

    unit = Unit(3, scale=2.0)
    assert [k for k in vars(unit) if k.startswith("_nni")] == ["_nni_trace"]
    assert get_init_args(unit) == ((3,), {"scale": 2.0}) and get_trace(unit) == (Unit, (3,), {"scale": 2.0})
    traced = TracedUnit(4)
    assert get_init_args(traced) == ((4,), {}) and get_trace(traced) == (TracedUnit, (4,), {})
    assert load(dump(traced)).width == 8
    # traced, but neither a basic unit nor a model space: no init args for the graph converter
    plain = serialize(nn.Module)
    assert is_traceable(plain) and get_init_args(plain) is None
    assert get_init_args(model_wrapper(type("Space", (nn.Module,), {}))()) == ((), {})
