"""Every built-in strategy passes the strategy contract suite."""
import pytest

import nni.retiarii.strategy as strategy
from nni.retiarii.strategy.contract import StrategyContract


class TestRandomContract(StrategyContract):
    exhausts_space = True

    def make_strategy(self):
        return strategy.Random(seed=0)


class TestVariationalRandomContract(StrategyContract):
    def make_strategy(self):
        return strategy.Random(variational=True, seed=0)


class TestGridSearchContract(StrategyContract):
    exhausts_space = True

    def make_strategy(self):
        return strategy.GridSearch(seed=0)


class TestRegularizedEvolutionContract(StrategyContract):
    def make_strategy(self):
        return strategy.RegularizedEvolution(population_size=4, sample_size=2, seed=0)


class TestTPEContract(StrategyContract):
    exhausts_space = True

    def make_strategy(self):
        pytest.importorskip('nni.algorithms.hpo.tpe_tuner')
        return strategy.TPEStrategy(seed=0)


class TestPolicyBasedRLContract(StrategyContract):
    time_limit = 60.0  # a torch policy update per collect: slow on a loaded 2-core machine

    def make_strategy(self):
        return strategy.PolicyBasedRL(trial_per_collect=4, seed=0)


def test_the_suite_catches_a_broken_strategy():
    class Overeager(strategy.BaseStrategy):
        """Submits without asking for free resources."""

        def run(self, base_model, applied_mutators):
            from nni.retiarii.execution import budget_exhausted, submit_models
            from nni.retiarii.strategy.utils import ChoiceSpace
            space = ChoiceSpace(base_model, applied_mutators)
            for code in range(space.size):
                if budget_exhausted():
                    return
                submit_models(space.build(base_model, space.decode(code)))

    class Broken(StrategyContract):
        def make_strategy(self):
            return Overeager()

    with pytest.raises(AssertionError, match='submitted with 0 slot'):
        Broken().test_respects_concurrency()
