"""PolicyBasedRL (plain-torch policy gradient) on a tiny space, with the in-process engine."""
import statistics

import pytest
import torch

import nni
import nni.retiarii.nn.pytorch as nn
import nni.retiarii.strategy as strategy
from nni.retiarii import model_wrapper
from nni.retiarii.evaluator import FunctionalEvaluator
from nni.retiarii.execution.inprocess import InProcessExecutionEngine
from nni.retiarii.space import mutators_for, python_model

TARGET = [2, 0, 1, 2]


@model_wrapper
class Space(nn.Module):
    def __init__(self, counts):
        super().__init__()
        self.xs = nn.ModuleList([nn.ValueChoice(list(range(n)), label=f'x{i}') for i, n in enumerate(counts)])

    def forward(self, x):
        return x


def matches(model_cls):
    nni.report_final_result(sum(vc() == t for vc, t in zip(model_cls().xs, TARGET)))


def search(s, max_trial_number=None):
    space = Space([3] * 4)
    base = python_model(space)
    base.evaluator = FunctionalEvaluator(matches)
    with InProcessExecutionEngine(concurrency=2, max_trial_number=max_trial_number) as engine:
        s.run(base, mutators_for(space))
    return engine.models


@pytest.mark.parametrize('policy_fn', [None, lambda env: strategy.ReinforcePolicy(env, lr=1e-2)], ids=['ppo', 'reinforce'])
def test_learns_the_one_hot_optimum(policy_fn):
    rl = strategy.PolicyBasedRL(max_collect=12, trial_per_collect=8, policy_fn=policy_fn, seed=0)
    models = search(rl)
    assert len(models) == 96  # max_collect * trial_per_collect
    rewards = [m.metric for m in models]
    first, last = statistics.mean(rewards[:8]), statistics.mean(rewards[-8:])
    assert last >= 2.5 and last > first + 1, (first, last)
    # the learned policy samples the optimum far more often than chance (1 in 81)
    samples = rl.policy.sample(200)
    assert sum(s == TARGET for s in samples) > 60


def test_policy_fn_gets_the_environment_and_budget_stops():
    seen = []

    def policy_fn(env):
        seen.append(env)
        return strategy.PPOPolicy(env, hidden_size=16)

    models = search(strategy.PolicyBasedRL(max_collect=100, trial_per_collect=5, policy_fn=policy_fn, seed=0), max_trial_number=12)
    assert len(models) == 12
    assert seen[0].candidate_counts == [3, 3, 3, 3] and seen[0].num_steps == 4
    assert seen[0].names == ['x0', 'x1', 'x2', 'x3']


def test_bad_arguments():
    with pytest.raises(ValueError, match='max_collect must be an int >= 1'):
        strategy.PolicyBasedRL(max_collect=0)
    with pytest.raises(ValueError, match='policy_fn must be a callable'):
        strategy.PolicyBasedRL(policy_fn='ppo')


def test_seed_reproduces_and_leaves_the_global_generator_alone():
    state = torch.random.get_rng_state()
    runs = [[m.sample for m in search(strategy.PolicyBasedRL(max_collect=2, trial_per_collect=4, seed=7))] for _ in range(2)]
    assert runs[0] == runs[1]
    assert torch.equal(torch.random.get_rng_state(), state)
