"""Search compression algorithms and sparsities for a digits CNN with an NNI experiment.

    python auto_compress_digits.py [--port 8088] [--trials 10] [--tuner TPE]

Four pruners compete (level on every weighted layer, L1 / FPGM / TaylorFO on the conv layers),
each with a searched sparsity; every trial prunes the pre-trained CNN of ``auto_compress_module.py``,
fine-tunes it 2 epochs and reports its test accuracy. The best trials are printed at the end and
their masks and weights copied to ``./top_models``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from auto_compress_module import AutoCompressionModule, accuracy, pretrained_model

from nni.algorithms.compression.pytorch.auto_compress import (
    AutoCompressionExperiment, AutoCompressionSearchSpaceGenerator,
)


def search_space() -> dict:
    generator = AutoCompressionSearchSpaceGenerator()
    generator.add_config('level', [{'sparsity': {'_type': 'uniform', '_value': [0.5, 0.95]}, 'op_types': ['default']}])
    for name in ('l1', 'fpgm'):
        generator.add_config(name, [{'sparsity': {'_type': 'uniform', '_value': [0.25, 0.75]}, 'op_types': ['Conv2d']}])
    generator.add_config('taylorfo', [{'sparsity': {'_type': 'uniform', '_value': [0.25, 0.75]}, 'op_types': ['Conv2d']}],
                         sparsifying_training_batches={'_type': 'choice', '_value': [1, 10]})
    return generator.dumps()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--tuner", default="TPE", choices=["TPE", "Random", "Anneal", "Evolution"])
    args = parser.parse_args()

    # train (and cache) the model once here, so that the trials only load it
    print(f"pre-trained accuracy: {accuracy(pretrained_model()):.4f}")

    experiment = AutoCompressionExperiment(AutoCompressionModule, 'local')
    experiment.config.experiment_name = 'auto compression digits example'
    experiment.config.trial_concurrency = 1
    experiment.config.max_trial_number = args.trials
    experiment.config.search_space = search_space()
    experiment.config.trial_code_directory = Path(__file__).parent
    experiment.config.tuner.name = args.tuner
    if args.tuner != 'Random':
        experiment.config.tuner.class_args['optimize_mode'] = 'maximize'
    experiment.run(args.port)

    top = experiment.export_top_models(top_k=3, export_dir=Path('top_models'), optimize_mode='maximize')
    for row in top:
        print(json.dumps(row))
    print("Final result: " + json.dumps({"best_accuracy": top[0]["score"] if top else None,
                                         "best_algorithm": top[0]["algorithm_name"] if top else None}))


if __name__ == "__main__":
    main()
