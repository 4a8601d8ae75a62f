import math
import random

import pytest

from nni.common.hpo_utils import (
    ParameterSpec,
    deformat_parameters,
    format_parameters,
    format_search_space,
    key_to_path,
    validate_search_space,
)

SPACE = {
    'pool': {'_type': 'choice', '_value': ['max', 'avg', 3]},
    'layers': {'_type': 'randint', '_value': [2, 6]},
    'momentum': {'_type': 'uniform', '_value': [0, 1]},
    'C': {'_type': 'quniform', '_value': [0.1, 1, 0.1]},
    'lr': {'_type': 'loguniform', '_value': [1e-4, 0.1]},
    'units': {'_type': 'qloguniform', '_value': [16, 1024, 16]},
    'bias': {'_type': 'normal', '_value': [0, 2]},
    'shift': {'_type': 'qnormal', '_value': [1, 3, 0.5]},
    'scale': {'_type': 'lognormal', '_value': [0, 1]},
    'batch': {'_type': 'qlognormal', '_value': [4, 0.5, 8]},
}

NESTED = {
    'optimizer': {'_type': 'choice', '_value': [
        {'_name': 'sgd', 'lr': {'_type': 'loguniform', '_value': [0.001, 0.1]},
         'momentum': {'_type': 'uniform', '_value': [0.5, 0.99]}},
        {'_name': 'adam', 'lr': {'_type': 'quniform', '_value': [0.1, 1, 0.1]},
         'schedule': {'_type': 'choice', '_value': [
             {'_name': 'cosine', 'warmup': {'_type': 'randint', '_value': [0, 5]}},
             {'_name': 'none'},
             'step',
         ]}},
        'plain',
    ]},
    'epochs': {'_type': 'choice', '_value': [10, 20]},
}


def test_spec_fields_for_every_type():
    space = format_search_space(SPACE)
    assert list(space) == [(name,) for name in SPACE]
    for key, spec in space.items():
        assert isinstance(spec, ParameterSpec)
        assert spec.key == key and spec.name == key[0] and spec.type == SPACE[key[0]]['_type']
        assert not spec.is_nested() and spec.parent_key is None and spec.parent_index is None
        assert spec.is_activated_in({})

    pool = space[('pool',)]
    assert (pool.categorical, pool.size, pool.chosen_size, pool.values) == (True, 3, 1, ['max', 'avg', 3])
    assert (pool.low, pool.high, pool.q, pool.normal_distributed, pool.log_distributed) == (None, None, None, False, False)

    layers = space[('layers',)]
    assert (layers.categorical, layers.size, layers.chosen_size, layers.low, layers.high) == (True, 4, 1, 2, 6)

    momentum = space[('momentum',)]
    assert (momentum.categorical, momentum.size, momentum.chosen_size) == (False, None, None)
    assert (momentum.low, momentum.high, momentum.q, momentum.log_distributed, momentum.normal_distributed) == (0, 1, None, False, False)

    assert (space[('C',)].low, space[('C',)].high, space[('C',)].q) == (0.1, 1.0, 0.1)

    lr = space[('lr',)]
    assert lr.log_distributed and not lr.normal_distributed and lr.q is None
    assert lr.low == pytest.approx(math.log(1e-4)) and lr.high == pytest.approx(math.log(0.1))

    units = space[('units',)]
    assert units.log_distributed and units.q == 16
    assert units.low == pytest.approx(math.log(16)) and units.high == pytest.approx(math.log(1024))

    bias = space[('bias',)]
    assert bias.normal_distributed and not bias.log_distributed
    assert (bias.mu, bias.sigma, bias.q, bias.low, bias.high) == (0, 2, None, None, None)
    assert space[('shift',)].q == 0.5 and space[('shift',)].mu == 1

    scale = space[('scale',)]
    assert scale.normal_distributed and scale.log_distributed and (scale.mu, scale.sigma) == (0, 1)
    batch = space[('batch',)]
    assert batch.normal_distributed and batch.log_distributed and (batch.mu, batch.sigma, batch.q) == (4, 0.5, 8)


def test_deformat_every_type():
    space = format_search_space(SPACE)
    internal = {
        ('pool',): 2,
        ('layers',): 3,
        ('momentum',): 0.25,
        ('C',): 0.2999,
        ('lr',): math.log(0.01),
        ('units',): math.log(100),
        ('bias',): -7.5,
        ('shift',): 1.3,
        ('scale',): 0.0,
        ('batch',): math.log(61),
    }
    params = deformat_parameters(internal, space)
    assert list(params) == list(SPACE)
    assert params['pool'] == 3
    assert params['layers'] == 5 and isinstance(params['layers'], int)
    assert params['momentum'] == 0.25
    assert params['C'] == 0.3  # no binary noise: not 0.30000000000000004
    assert params['lr'] == pytest.approx(0.01)
    assert params['units'] == 96
    assert params['bias'] == -7.5  # normal types are not clipped
    assert params['shift'] == 1.5
    assert params['scale'] == 1.0
    assert params['batch'] == 64


@pytest.mark.parametrize('name, internal, expected', [
    ('C', 5.0, 1.0),             # above high -> clipped
    ('C', -3.0, 0.1),            # below low -> clipped to low, even though low is not a multiple of q
    ('momentum', 1.7, 1.0),
    ('momentum', -0.1, 0.0),
    ('lr', math.log(5.0), 0.1),
    ('units', math.log(3.0), 16),
    ('units', math.log(1017.0), 1024),
    ('shift', -100.2, -100.0),   # qnormal: unbounded
    ('shift', 123456789012.3, 123456789012.5),  # no precision lost on large values
    ('batch', math.log(3.0), 0.0),  # qlognormal: round(exp(x) / q) * q, bounded only below
    ('layers', 0, 2),
    ('layers', 3, 5),
])
def test_deformat_rounding_and_clipping(name, internal, expected):
    space = format_search_space({name: SPACE[name]})
    assert deformat_parameters({(name,): internal}, space)[name] == pytest.approx(expected)


def test_quniform_doc_examples():
    # [L17551]: [0, 10, 2.5] -> {0, 2.5, 5.0, 7.5, 10.0}; [2, 10, 5] -> {2, 5, 10}
    for spec, expected in (([0, 10, 2.5], {0, 2.5, 5.0, 7.5, 10.0}), ([2, 10, 5], {2, 5, 10})):
        space = format_search_space({'x': {'_type': 'quniform', '_value': spec}})
        seen = {deformat_parameters({('x',): spec[0] + (spec[1] - spec[0]) * i / 1000}, space)['x'] for i in range(1001)}
        assert seen == expected


def test_randint_and_choice_index_range_checked():
    space = format_search_space(SPACE)
    with pytest.raises(ValueError, match=r"parameter 'layers': index 4 out of range \[0, 4\)"):
        deformat_parameters({('layers',): 4}, format_search_space({'layers': SPACE['layers']}))
    with pytest.raises(ValueError, match=r"parameter 'pool': index -1 out of range"):
        deformat_parameters({('pool',): -1}, format_search_space({'pool': SPACE['pool']}))
    with pytest.raises(ValueError, match="parameter 'momentum' is active but has no value"):
        deformat_parameters({('pool',): 0, ('layers',): 0}, space)


def test_nested_keys_and_order():
    space = format_search_space(NESTED)
    assert list(space) == [
        ('optimizer',),
        ('optimizer', 0, 'lr'),
        ('optimizer', 0, 'momentum'),
        ('optimizer', 1, 'lr'),
        ('optimizer', 1, 'schedule'),
        ('optimizer', 1, 'schedule', 0, 'warmup'),
        ('epochs',),
    ]
    warmup = space[('optimizer', 1, 'schedule', 0, 'warmup')]
    assert warmup.is_nested() and warmup.name == 'warmup'
    assert warmup.parent_key == ('optimizer', 1, 'schedule') and warmup.parent_index == 0
    assert key_to_path(warmup.key) == 'optimizer[1].schedule[0].warmup'
    assert space[('optimizer',)].size == 3 and space[('optimizer', 1, 'schedule')].size == 3
    # a parent always precedes its children
    seen = set()
    for key, spec in space.items():
        if spec.is_nested():
            assert spec.parent_key in seen
        seen.add(key)

    assert space[('optimizer', 0, 'lr')].is_activated_in({('optimizer',): 0})
    assert not space[('optimizer', 0, 'lr')].is_activated_in({('optimizer',): 1})
    assert not warmup.is_activated_in({('optimizer',): 0})
    assert warmup.is_activated_in({('optimizer',): 1, ('optimizer', 1, 'schedule'): 0})


def test_deformat_nested_uses_only_active_branch():
    space = format_search_space(NESTED)
    internal = {
        ('optimizer',): 1,
        ('optimizer', 0, 'lr'): math.log(0.01),     # inactive: ignored
        ('optimizer', 1, 'lr'): 0.42,
        ('optimizer', 1, 'schedule'): 0,
        ('optimizer', 1, 'schedule', 0, 'warmup'): 3,
        ('epochs',): 1,
    }
    assert deformat_parameters(internal, space) == {
        'optimizer': {'_name': 'adam', 'lr': 0.4, 'schedule': {'_name': 'cosine', 'warmup': 3}},
        'epochs': 20,
    }
    # inactive parameters may be missing entirely
    assert deformat_parameters({('optimizer',): 2, ('epochs',): 0}, space) == {'optimizer': 'plain', 'epochs': 10}
    assert deformat_parameters({('optimizer',): 1, ('optimizer', 1, 'lr'): 0.1, ('optimizer', 1, 'schedule'): 1,
                                ('epochs',): 0}, space) == {'optimizer': {'_name': 'adam', 'lr': 0.1, 'schedule': {'_name': 'none'}},
                                                            'epochs': 10}


def _random_internal(space, rng):
    values = {}
    for key, spec in space.items():
        if not spec.is_activated_in(values):
            continue
        if spec.categorical:
            values[key] = rng.randrange(spec.size)
        elif spec.normal_distributed:
            values[key] = rng.gauss(spec.mu, spec.sigma)
        else:
            values[key] = rng.uniform(spec.low, spec.high)
    return values


@pytest.mark.parametrize('search_space', [SPACE, NESTED], ids=['flat', 'nested'])
def test_round_trip(search_space):
    space = format_search_space(search_space)
    rng = random.Random(0)
    for _ in range(300):
        params = deformat_parameters(_random_internal(space, rng), space)
        internal = format_parameters(params, space)
        again = deformat_parameters(internal, space)
        assert again.keys() == params.keys()
        for name in params:
            if isinstance(params[name], float):
                assert again[name] == pytest.approx(params[name], rel=1e-12)
            else:
                assert again[name] == params[name]


def test_format_parameters_values():
    space = format_search_space(SPACE)
    internal = format_parameters({'pool': 'avg', 'layers': 4, 'momentum': 0.5, 'C': 0.7, 'lr': 0.01, 'units': 64,
                                  'bias': 1, 'shift': 2.5, 'scale': 1.0, 'batch': 16}, space)
    assert internal[('pool',)] == 1 and internal[('layers',)] == 2
    assert internal[('lr',)] == pytest.approx(math.log(0.01)) and internal[('scale',)] == 0.0
    assert internal[('bias',)] == 1.0

    nested = format_search_space(NESTED)
    assert format_parameters({'optimizer': {'_name': 'sgd', 'lr': 0.01, 'momentum': 0.9}, 'epochs': 20}, nested) == {
        ('optimizer',): 0, ('optimizer', 0, 'lr'): pytest.approx(math.log(0.01)),
        ('optimizer', 0, 'momentum'): 0.9, ('epochs',): 1}


@pytest.mark.parametrize('params, message', [
    ({'pool': 'min'}, "parameter 'pool': 'min' is not one of the choices ['max', 'avg', 3]"),
    ({'pool': True}, "parameter 'pool': True is not one of the choices"),
    ({'layers': 6}, "parameter 'layers': 6 is not an integer in [2, 6)"),
    ({'layers': 2.5}, "parameter 'layers': 2.5 is not an integer"),
    ({'lr': -1}, "parameter 'lr': -1 must be positive for loguniform"),
    ({'momentum': 'x'}, "parameter 'momentum': 'x' is not a number"),
    ({}, "parameter 'pool' is missing"),
])
def test_format_parameters_errors(params, message):
    full = {'pool': 'max', 'layers': 2, 'momentum': 0.5, 'C': 0.5, 'lr': 0.01, 'units': 32, 'bias': 0,
            'shift': 0, 'scale': 1, 'batch': 8}
    full.update(params)
    if not params:
        full = {}
    with pytest.raises(ValueError) as info:
        format_parameters(full, format_search_space(SPACE))
    assert message in str(info.value)


def test_format_parameters_nested_errors():
    nested = format_search_space(NESTED)
    with pytest.raises(ValueError, match=r"parameter 'optimizer\[0\]\.momentum' is missing"):
        format_parameters({'optimizer': {'_name': 'sgd', 'lr': 0.01}, 'epochs': 10}, nested)
    with pytest.raises(ValueError, match="parameter 'optimizer': {'_name': 'rmsprop'} is not one of the choices "
                                         r"\['sgd', 'adam', 'plain'\]"):
        format_parameters({'optimizer': {'_name': 'rmsprop'}, 'epochs': 10}, nested)


def test_fixture_search_spaces_from_docs_are_valid():
    svm = {'C': {'_type': 'quniform', '_value': [0.1, 1, 0.1]},
           'kernel': {'_type': 'choice', '_value': ['linear', 'rbf', 'poly', 'sigmoid']},
           'degree': {'_type': 'choice', '_value': [1, 2, 3, 4]},
           'gamma': {'_type': 'quniform', '_value': [0.01, 0.1, 0.01]},
           'coef0': {'_type': 'quniform', '_value': [0.01, 0.1, 0.01]}}
    assert validate_search_space(svm, raise_exception=True)
    space = format_search_space(svm)
    params = deformat_parameters({('C',): 0.33, ('kernel',): 1, ('degree',): 0, ('gamma',): 0.0449, ('coef0',): 0.1}, space)
    assert params == {'C': 0.3, 'kernel': 'rbf', 'degree': 1, 'gamma': 0.04, 'coef0': 0.1}


# -- NNI v2.5 semantics: plain dict options, one-point ranges ------------------------------------
from nni.common.hpo_utils import is_nested_option  # noqa: E402


def test_dict_option_without_name_is_a_plain_categorical_value():
    options = [{"optimizer": "Adam", "lr": 0.001}, {"optimizer": "SGD", "momentum": [0.9]}]
    space = format_search_space({"combo": {"_type": "choice", "_value": options}})
    assert list(space) == [("combo",)]  # no nested keys
    assert not is_nested_option(options[0]) and is_nested_option({"_name": "a"})
    params = deformat_parameters({("combo",): 1}, space)
    assert params == {"combo": {"optimizer": "SGD", "momentum": [0.9]}}
    params["combo"]["momentum"].append(1)  # the trial's copy, not the search space
    assert options[1] == {"optimizer": "SGD", "momentum": [0.9]}
    assert format_parameters({"combo": {"optimizer": "Adam", "lr": 0.001}}, space) == {("combo",): 0}
    with pytest.raises(ValueError, match="'combo'"):
        format_parameters({"combo": {"optimizer": "Adam"}}, space)


def test_plain_and_nested_options_in_one_choice():
    space = format_search_space({"c": {"_type": "choice", "_value": [
        {"a": 1}, {"_name": "n", "x": {"_type": "randint", "_value": [0, 2]}}]}})
    assert list(space) == [("c",), ("c", 1, "x")]
    assert deformat_parameters({("c",): 0}, space) == {"c": {"a": 1}}
    assert deformat_parameters({("c",): 1, ("c", 1, "x"): 1}, space) == {"c": {"_name": "n", "x": 1}}
    assert format_parameters({"c": {"a": 1}}, space) == {("c",): 0}
    assert format_parameters({"c": {"_name": "n", "x": 1}}, space) == {("c",): 1, ("c", 1, "x"): 1}


@pytest.mark.parametrize("spec,value", [
    ({"_type": "uniform", "_value": [0.3, 0.3]}, 0.3),
    ({"_type": "loguniform", "_value": [0.01, 0.01]}, 0.01),
    ({"_type": "quniform", "_value": [3, 3, 2]}, 3),
    ({"_type": "qloguniform", "_value": [7, 7, 5]}, 7),
    ({"_type": "randint", "_value": [4, 4]}, 4),
])
def test_one_point_range_is_constant(spec, value):
    space = format_search_space({"x": spec})
    (param,) = space.values()
    assert param.is_constant()
    internal = 0 if param.categorical else param.low
    assert deformat_parameters({("x",): internal}, space) == {"x": value}
    assert format_parameters({"x": value}, space) == {("x",): internal}
