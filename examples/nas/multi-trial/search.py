"""Multi-trial NAS on the digits model space: Random strategy, FunctionalEvaluator, local trials.

    python search.py [--trials 8] [--port 8081]

The space nests a ValueChoice inside a LayerChoice candidate, which only the pure-python engine (the
default) supports; the graph-based engine ('base') refuses it with a one-line error before starting.

The web UI (URL printed at start) shows each trial with its architecture (``sample``) as parameters.
"""
import argparse
import os

from nni.retiarii import fixed_arch
from nni.retiarii.evaluator import FunctionalEvaluator
from nni.retiarii.experiment.pytorch import RetiariiExeConfig, RetiariiExperiment
import nni.retiarii.strategy as strategy

from digits_space import DigitsNet, fit


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--trials', type=int, default=8)
    parser.add_argument('--port', type=int, default=8081)
    args = parser.parse_args()

    evaluator = FunctionalEvaluator(fit, epochs=3)
    exp = RetiariiExperiment(DigitsNet(), evaluator, [], strategy.Random(seed=0))
    config = RetiariiExeConfig('local')
    config.experiment_name = 'digits_search'
    config.trial_concurrency = 2
    config.max_trial_number = args.trials
    config.trial_code_directory = os.path.dirname(os.path.abspath(__file__))
    exp.run(config, args.port)

    for model in exp.list_models():
        print(model.status.value, model.metric, model.sample)
    best = exp.export_top_models(formatter='dict')[0]
    print('best architecture:', best)
    with fixed_arch(best):
        net = DigitsNet()  # a plain PyTorch module: train it further or save it
    print(net)


if __name__ == '__main__':
    main()
