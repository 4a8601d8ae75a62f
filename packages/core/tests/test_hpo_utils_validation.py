import logging

import pytest

from nni.common.hpo_utils import ALL_TYPES, validate_search_space


def _nested(*options):
    return {'optimizer': {'_type': 'choice', '_value': list(options)}}


_SGD = {'_name': 'sgd', 'lr': {'_type': 'uniform', '_value': [0.01, 0.1]}}

# (search space, path named in the message, rule text that must appear)
MALFORMED = [
    # top level and entry shape
    ([], None, 'must be a JSON object'),
    ('lr', None, 'must be a JSON object'),
    (None, None, 'must be a JSON object'),
    ({'lr': 0.1}, 'lr', 'must be a dict {"_type": ..., "_value": [...]}, got float'),
    ({'lr': [0.1, 0.2]}, 'lr', 'must be a dict'),
    ({1: {'_type': 'choice', '_value': [1]}}, '1', 'parameter name must be a string'),
    ({'': {'_type': 'choice', '_value': [1]}}, '', 'parameter name must not be empty'),
    ({'lr': {'_value': [1, 2]}}, 'lr', 'missing "_type"; allowed types: choice, randint'),
    ({'lr': {'_type': 'gaussian', '_value': [1, 2]}}, 'lr', "unknown _type 'gaussian'; allowed types: " + ', '.join(ALL_TYPES)),
    ({'lr': {'_type': 'Choice', '_value': [1, 2]}}, 'lr', "unknown _type 'Choice'"),
    ({'lr': {'_type': 'uniform'}}, 'lr', 'missing "_value" for type \'uniform\''),
    ({'lr': {'_type': 'uniform', '_value': 1}}, 'lr', '"_value" of uniform must be a list, got int'),
    ({'lr': {'_type': 'choice', '_value': 'abc'}}, 'lr', '"_value" of choice must be a list, got string'),
    # choice
    ({'bs': {'_type': 'choice', '_value': []}}, 'bs', 'choice "_value" must be a non-empty list'),
    ({'bs': {'_type': 'choice', '_value': [1, {2, 3}]}}, 'bs[1]', 'choice option is not JSON serializable'),
    ({'bs': {'_type': 'choice', '_value': [1, float('nan')]}}, 'bs[1]', 'NaN and infinity are not JSON'),
    ({'bs': {'_type': 'choice', '_value': [object()]}}, 'bs[0]', 'not JSON serializable'),
    # arity
    ({'x': {'_type': 'uniform', '_value': [1]}}, 'x', 'uniform "_value" must be [low, high] (2 numbers), got 1 element'),
    ({'x': {'_type': 'uniform', '_value': [1, 2, 3]}}, 'x', 'uniform "_value" must be [low, high] (2 numbers), got 3 elements'),
    ({'x': {'_type': 'quniform', '_value': [1, 2]}}, 'x', 'quniform "_value" must be [low, high, q]'),
    ({'x': {'_type': 'randint', '_value': [1]}}, 'x', 'randint "_value" must be [lower, upper]'),
    ({'x': {'_type': 'normal', '_value': [0]}}, 'x', 'normal "_value" must be [mu, sigma]'),
    ({'x': {'_type': 'qlognormal', '_value': [0, 1]}}, 'x', 'qlognormal "_value" must be [mu, sigma, q]'),
    ({'x': {'_type': 'qloguniform', '_value': [1, 2, 3, 4]}}, 'x', 'qloguniform "_value" must be [low, high, q]'),
    # numbers
    ({'x': {'_type': 'uniform', '_value': ['0', 1]}}, 'x', "uniform low must be a number, got '0'"),
    ({'x': {'_type': 'uniform', '_value': [0, True]}}, 'x', 'uniform high must be a number, got True'),
    ({'x': {'_type': 'normal', '_value': [None, 1]}}, 'x', 'normal mu must be a number, got None'),
    ({'x': {'_type': 'uniform', '_value': [0, float('inf')]}}, 'x', 'uniform high must be finite'),
    # bounds
    ({'x': {'_type': 'uniform', '_value': [2, 1]}}, 'x', 'uniform low must be <= high, got low=2 high=1'),
    ({'x': {'_type': 'quniform', '_value': [10, 0, 1]}}, 'x', 'quniform low must be <= high'),
    ({'x': {'_type': 'loguniform', '_value': [0, 1]}}, 'x', 'loguniform low must be > 0 (log scale), got 0'),
    ({'x': {'_type': 'loguniform', '_value': [-1, 1]}}, 'x', 'loguniform low must be > 0'),
    ({'x': {'_type': 'qloguniform', '_value': [0, 10, 1]}}, 'x', 'qloguniform low must be > 0'),
    ({'x': {'_type': 'loguniform', '_value': [1, 0.5]}}, 'x', 'loguniform low must be <= high'),
    ({'x': {'_type': 'quniform', '_value': [0, 1, 0]}}, 'x', 'quniform q must be > 0, got 0'),
    ({'x': {'_type': 'qnormal', '_value': [0, 1, -0.5]}}, 'x', 'qnormal q must be > 0, got -0.5'),
    ({'x': {'_type': 'qloguniform', '_value': [1, 10, 0]}}, 'x', 'qloguniform q must be > 0'),
    ({'x': {'_type': 'normal', '_value': [0, 0]}}, 'x', 'normal sigma must be > 0, got 0'),
    ({'x': {'_type': 'lognormal', '_value': [0, -1]}}, 'x', 'lognormal sigma must be > 0'),
    ({'x': {'_type': 'qlognormal', '_value': [0, 0, 1]}}, 'x', 'qlognormal sigma must be > 0'),
    # randint: integers in [lower, upper)
    ({'x': {'_type': 'randint', '_value': [1.5, 4]}}, 'x', 'randint lower must be an integer, got 1.5'),
    ({'x': {'_type': 'randint', '_value': [1, 4.2]}}, 'x', 'randint upper must be an integer, got 4.2'),
    ({'x': {'_type': 'randint', '_value': [1.0, 4]}}, 'x', 'randint lower must be an integer, got 1.0'),
    ({'x': {'_type': 'randint', '_value': [1, 4.0]}}, 'x', 'randint upper must be an integer, got 4.0'),
    ({'x': {'_type': 'randint', '_value': [5, 1]}}, 'x', 'randint lower must be <= upper, got [5, 1]'),
    # nested choice
    (_nested(_SGD, {'_name': 'sgd'}), 'optimizer[1]', "duplicate _name 'sgd' (also option 0)"),
    (_nested({'_name': ['a']}), 'optimizer[0]', '"_name" must be a string or number, got list'),
    (_nested({'_name': 'adam', 'lr': {'_type': 'uniform', '_value': [1, 0]}}), 'optimizer[0].lr', 'uniform low must be <= high'),
    (_nested(_SGD, {'_name': 'adam', 'lr': {'_type': 'loguniform', '_value': [0, 1]}}), 'optimizer[1].lr', 'loguniform low must be > 0'),
    (_nested({'_name': 'adam', 'beta': 0.9}), 'optimizer[0].beta', 'must be a dict {"_type"'),
    (_nested({'_name': 'adam', 'lr': {'_type': 'foo', '_value': [1]}}), 'optimizer[0].lr', "unknown _type 'foo'"),
    (_nested({'_name': 'a', 'inner': {'_type': 'choice', '_value': [{'_name': 'b', 'x': {'_type': 'randint', '_value': [3, 1]}}]}}),
     'optimizer[0].inner[0].x', 'randint lower must be <= upper'),
    (_nested({'_name': 'a', 'inner': {'_type': 'choice', '_value': []}}), 'optimizer[0].inner', 'non-empty list'),
]


@pytest.mark.parametrize('space, path, rule', MALFORMED, ids=[f'{i}-{m[2][:30]}' for i, m in enumerate(MALFORMED)])
def test_malformed_search_space(space, path, rule):
    with pytest.raises(ValueError) as info:
        validate_search_space(space, raise_exception=True)
    message = str(info.value)
    assert '\n' not in message
    if path is None:
        assert message.startswith('search space: ')
    else:
        assert message.startswith(f'search space {path!r}: ')
    assert rule in message


def test_corpus_size():
    assert len(MALFORMED) >= 40


def test_returns_false_and_logs(caplog):
    with caplog.at_level(logging.ERROR):
        assert validate_search_space({'x': {'_type': 'uniform', '_value': [2, 1]}}) is False
    assert "search space 'x': uniform low must be <= high" in caplog.text


@pytest.mark.parametrize('space', [
    {},
    {'lr': {'_type': 'choice', '_value': [0.1, 'a', None, [1, 2], True]}},
    {'x': {'_type': 'randint', '_value': [0, 1]}},
    # v2.5: low == high is a constant (randint [n, n] included)
    {'x': {'_type': 'randint', '_value': [3, 3]}},
    {'x': {'_type': 'uniform', '_value': [0.5, 0.5]}},
    {'x': {'_type': 'quniform', '_value': [2, 2, 1]}},
    {'x': {'_type': 'loguniform', '_value': [0.01, 0.01]}},
    {'x': {'_type': 'qloguniform', '_value': [8, 8, 2]}},
    # v2.5: a dict option without "_name" is a plain categorical value
    {'x': {'_type': 'choice', '_value': [{'a': 1}, {'a': 2, 'b': [1]}]}},
    {'x': {'_type': 'uniform', '_value': [-1, 1e-5]}},
    {'x': {'_type': 'quniform', '_value': [2, 10, 5]}},
    {'x': {'_type': 'loguniform', '_value': [1e-5, 1]}},
    {'x': {'_type': 'qloguniform', '_value': [1, 100, 10]}},
    {'x': {'_type': 'normal', '_value': [-3, 0.5]}},
    {'x': {'_type': 'qnormal', '_value': [0, 1, 0.1]}},
    {'x': {'_type': 'lognormal', '_value': [0, 1]}},
    {'x': {'_type': 'qlognormal', '_value': [1, 1, 1]}},
    {'学习率': {'_type': 'choice', '_value': ['é', 'ü']}},
    _nested(_SGD, {'_name': 'adam'}, {'_name': 3, 'm': {'_type': 'normal', '_value': [0, 1]}}, 'plain'),
    {'x': {'_type': 'uniform', '_value': (0, 1), 'extra': 'ignored'}},
])
def test_valid_search_spaces(space):
    assert validate_search_space(space, raise_exception=True) is True


def test_support_types_names_algorithm():
    space = {'a': {'_type': 'choice', '_value': [1]}, 'b': {'_type': 'normal', '_value': [0, 1]}}
    with pytest.raises(ValueError) as info:
        validate_search_space(space, ['choice', 'randint', 'quniform'], raise_exception=True, algorithm_name='GridSearch')
    assert str(info.value) == ("search space 'b': type 'normal' is not supported by GridSearch; "
                               "supported types: choice, randint, quniform")
    with pytest.raises(ValueError, match="search space 'b': type 'normal' is not supported; supported types: choice$"):
        validate_search_space(space, ['choice'], raise_exception=True)
    assert validate_search_space(space, ['choice', 'normal']) is True


def test_support_types_apply_to_nested_parameters():
    space = _nested({'_name': 'a', 'lr': {'_type': 'loguniform', '_value': [0.1, 1]}})
    with pytest.raises(ValueError, match=r"'optimizer\[0\]\.lr': type 'loguniform' is not supported by SMAC"):
        validate_search_space(space, ['choice', 'uniform'], raise_exception=True, algorithm_name='SMAC')


def test_nested_choice_can_be_refused():
    with pytest.raises(ValueError, match=r"search space 'optimizer\[0\]': nested choice .* is not supported by Metis"):
        validate_search_space(_nested(_SGD), raise_exception=True, algorithm_name='Metis', allow_nested=False)
    assert validate_search_space({'x': {'_type': 'choice', '_value': [1, 2]}}, allow_nested=False)
    # plain dict options are not nested spaces, so a tuner without nesting still takes them
    assert validate_search_space({'x': {'_type': 'choice', '_value': [{'lr': 1}, {'lr': 2}]}}, allow_nested=False)
