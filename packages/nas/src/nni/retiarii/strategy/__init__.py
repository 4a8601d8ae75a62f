"""Multi-trial exploration strategies (``import nni.retiarii.strategy as strategy``).

A strategy's ``run(base_model, applied_mutators)`` samples models with the Mutator/Sampler API and trains
them through the engine API of :mod:`nni.retiarii.execution`. Every strategy returns when the engine's
budget is exhausted; ``GridSearch`` and ``Random(dedup=True)`` also return once the space is exhausted,
``RegularizedEvolution`` after ``cycles`` models and ``PolicyBasedRL`` after ``max_collect`` collects
(these wait for their running models first).
"""
from .base import BaseStrategy
from .bruteforce import GridSearch, Random
from .evolution import RegularizedEvolution
from .hardware import FlopsPredictor, LatencyFilter, MeasuredLatencyPredictor
from .rl import ModelEvaluationEnv, PolicyBasedRL, PPOPolicy, ReinforcePolicy
from .tpe_strategy import TPEStrategy

__all__ = ['BaseStrategy', 'Random', 'GridSearch', 'RegularizedEvolution', 'TPEStrategy', 'PolicyBasedRL',
           'ModelEvaluationEnv', 'PPOPolicy', 'ReinforcePolicy', 'LatencyFilter', 'MeasuredLatencyPredictor', 'FlopsPredictor']
