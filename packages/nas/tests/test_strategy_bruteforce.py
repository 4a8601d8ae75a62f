"""Random and GridSearch on tiny spaces, with the in-process engine."""
import itertools

import pytest

import nni
import nni.retiarii.nn.pytorch as nn
import nni.retiarii.strategy as strategy
from nni.retiarii import Mutator, model_wrapper
from nni.retiarii.evaluator import FunctionalEvaluator
from nni.retiarii.execution.inprocess import InProcessExecutionEngine
from nni.retiarii.graph import ModelStatus
from nni.retiarii.mutator import InvalidMutation
from nni.retiarii.space import mutators_for, python_model


@model_wrapper
class Space(nn.Module):
    def __init__(self, counts):
        super().__init__()
        self.xs = nn.ModuleList([nn.ValueChoice(list(range(n)), label=f'x{i}') for i, n in enumerate(counts)])
        self.act = nn.LayerChoice([nn.Identity(), nn.ReLU()], label='act')

    def forward(self, x):
        return self.act(x)


def fit(model_cls):
    model = model_cls()
    nni.report_final_result(sum(vc() for vc in model.xs) + 10 * isinstance(model.act, nn.ReLU))


def search(s, counts=(3, 2), concurrency=2, max_trial_number=None):
    space = Space(list(counts))
    base = python_model(space)
    base.evaluator = FunctionalEvaluator(fit)
    with InProcessExecutionEngine(concurrency=concurrency, max_trial_number=max_trial_number) as engine:
        s.run(base, mutators_for(space))
    return engine.models


def arch(model):
    return tuple(sorted(model.sample.items()))


def test_random_dedup_never_repeats_and_stops_when_exhausted():
    models = search(strategy.Random(seed=1), counts=(3, 2))  # 3 * 2 * 2 = 12 architectures, no trial budget
    assert len(models) == 12
    assert len({arch(m) for m in models}) == 12
    assert all(m.status == ModelStatus.Trained for m in models)  # it waited for the running ones


def test_random_without_dedup_repeats_and_respects_budget():
    models = search(strategy.Random(dedup=False, seed=0), counts=(2,), max_trial_number=30)  # 4 architectures
    assert len(models) == 30
    assert len({arch(m) for m in models}) == 4


def test_random_budget_stops_before_exhaustion():
    models = search(strategy.Random(seed=0), counts=(4, 4), max_trial_number=7)
    assert len(models) == 7 and len({arch(m) for m in models}) == 7


def test_model_filter_drops_models():
    judged = []

    def only_identity(model):
        judged.append(model.sample['act'])
        return model.sample['act'] == '0'

    models = search(strategy.Random(model_filter=only_identity, seed=0), counts=(3,))
    assert sorted(m.sample['x0'] for m in models) == [0, 1, 2]
    assert all(m.sample['act'] == '0' for m in models)
    assert judged.count('1') == 3  # every ReLU configuration was judged once and dropped


def test_random_stops_when_the_filter_admits_nothing():
    s = strategy.Random(dedup=False, model_filter=lambda model: False, seed=0)
    s.max_rejections = 50
    assert search(s, counts=(3,)) == []


class DependentMutator(Mutator):
    """The number of choices depends on the first one: not a fixed space."""

    def mutate(self, model):
        n = self.choice([1, 2, 3])
        model.sample['n'] = n
        model.sample['rest'] = [self.choice(['a', 'b']) for _ in range(n)]


def test_variational_random_needs_no_dry_run():
    space = Space([2])
    base = python_model(space)
    base.evaluator = FunctionalEvaluator(lambda model_cls: nni.report_final_result(0))
    mutators = [DependentMutator(label='dep')]
    with InProcessExecutionEngine(concurrency=2, max_trial_number=25) as engine:
        strategy.Random(variational=True, seed=3).run(base, mutators)
    models = engine.models
    assert len(models) == 25
    assert {m.sample['n'] for m in models} == {1, 2, 3}
    assert all(len(m.sample['rest']) == m.sample['n'] for m in models)
    # the dry-run based strategies refuse such a space with a clear message
    with InProcessExecutionEngine(max_trial_number=5):
        with pytest.raises(ValueError, match='variational=True'):
            strategy.Random(seed=0).run(base, mutators)


def test_grid_visits_every_architecture_once():
    models = search(strategy.GridSearch(shuffle=False), counts=(3, 2))
    archs = [arch(m) for m in models]
    expected = [tuple(sorted({'x0': a, 'x1': b, 'act': c}.items())) for a, b, c in itertools.product(range(3), range(2), '01')]
    assert archs == expected  # odometer order over the unshuffled candidate lists
    assert all(m.status == ModelStatus.Trained for m in models)


def test_grid_shuffle_changes_order_not_set():
    orders = [[arch(m) for m in search(strategy.GridSearch(seed=seed), counts=(3, 3), concurrency=4)] for seed in (0, 1)]
    plain = [arch(m) for m in search(strategy.GridSearch(shuffle=False), counts=(3, 3), concurrency=4)]
    assert len(plain) == 18 and len(set(plain)) == 18
    for order in orders:
        assert sorted(order) == sorted(plain)
    assert orders[0] != plain and orders[1] != plain and orders[0] != orders[1]


def test_grid_respects_budget_and_skips_invalid():
    class Rejecting(Mutator):
        def mutate(self, model):
            if self.choice([0, 1, 2]) == 1:
                raise InvalidMutation('1 is not allowed')

    space = Space([2])
    base = python_model(space)
    base.evaluator = FunctionalEvaluator(lambda model_cls: nni.report_final_result(0))
    with InProcessExecutionEngine(max_trial_number=100) as engine:
        strategy.GridSearch(shuffle=False).run(base, [Rejecting(label='r')])
    assert len(engine.models) == 2  # 0 and 2
    assert len(search(strategy.GridSearch(), counts=(3, 3), max_trial_number=5)) == 5
