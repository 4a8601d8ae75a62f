"""Offline comparison of the strategies on a table of every architecture's accuracy.

A trial's accuracy depends on the architecture only (:func:`nni.nas_benchmark.space.train` trains from seed 0 on
the same data with one thread), so after the 675 architectures are trained once the strategies can be compared over
many seeds in seconds: :func:`simulate` runs a strategy on the in-process engine with an evaluator that looks the
accuracy up. The real benchmark (:mod:`nni.nas_benchmark.bench`) gives the reported figures; this is for choosing
and checking strategy settings.

The table is a JSON-lines file of ``[sample, accuracy]``; :func:`fill_table` trains what is missing (resumable),
:func:`harvest` adds the trials of finished benchmark runs.
"""
from __future__ import annotations

import json
import statistics
import time
import zlib
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

from .space import SPACE_SIZE, architectures, arch_key

__all__ = ['load_table', 'harvest', 'fill_table', 'simulate', 'compare', 'render_comparison']


def load_table(path: str) -> Dict[str, float]:
    """``{arch_key(sample): accuracy}`` from a table file (empty if there is none)."""
    table: Dict[str, float] = {}
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            if line.strip():
                sample, accuracy = json.loads(line)
                table[arch_key(sample)] = accuracy
    return table


def _append(path: str, sample: dict, accuracy: float) -> None:
    with open(path, 'a') as f:
        f.write(json.dumps([sample, accuracy]) + '\n')


def harvest(path: str, results: Iterable[str], epochs: int = 10) -> int:
    """Add the trials of benchmark ``results.json`` files run with ``epochs`` epochs to the table; returns how many
    architectures were new."""
    table = load_table(path)
    added = 0
    for result in results:
        report = json.loads(Path(result).read_text())
        if report['config']['epochs'] != epochs:
            continue
        for run in report['runs']:
            for trial in run['trials']:
                if isinstance(trial.get('default'), (int, float)) and trial.get('sample'):
                    key = arch_key(trial['sample'])
                    if key not in table:
                        table[key] = trial['default']
                        _append(path, json.loads(key), trial['default'])
                        added += 1
    return added


def _train_one(args) -> tuple:
    sample, data_path, epochs = args
    import torch

    from nni.retiarii import fixed_arch

    from .space import DigitsSearchSpace, train

    torch.set_num_threads(1)  # as in the trials: the accuracy must be the one a trial reports

    def build():
        with fixed_arch(sample, verbose=False):
            return DigitsSearchSpace()
    return sample, train(build, data_path, epochs)


def fill_table(path: str, data_path: str, epochs: int = 10, workers: int = 1, limit: Optional[int] = None,
               progress: Optional[Callable[[int, int], None]] = None) -> int:
    """Train the architectures missing from the table (at most ``limit``) in ``workers`` processes, appending each
    as it finishes (an interrupted fill resumes). Returns how many were trained."""
    table = load_table(path)
    todo = [s for s in architectures() if arch_key(s) not in table][:limit]
    jobs = [(s, data_path, epochs) for s in todo]
    done = 0
    if workers <= 1:
        results = map(_train_one, jobs)
        for sample, accuracy in results:
            _append(path, sample, accuracy)
            done += 1
            if progress:
                progress(done, len(todo))
        return done
    import multiprocessing
    with multiprocessing.get_context('spawn').Pool(workers) as pool:
        for sample, accuracy in pool.imap_unordered(_train_one, jobs):
            _append(path, sample, accuracy)
            done += 1
            if progress:
                progress(done, len(todo))
    return done


def _lookup_evaluator(table: Dict[str, float]):
    import nni
    from nni.retiarii.evaluator import FunctionalEvaluator

    def look_up(model_cls) -> None:
        sample = nni.get_next_parameter()  # in the in-process engine: this model's sample
        key = arch_key(sample)
        if key not in table:
            raise KeyError(f'architecture {key} is not in the accuracy table; fill it first (--fill-table)')
        # a few ms, different per architecture, so that with concurrency > 1 models finish out of order as in a run
        time.sleep(0.002 + zlib.crc32(key.encode()) % 50 / 10000)
        nni.report_final_result(table[key])
    return FunctionalEvaluator(look_up)


def simulate(strategy, table: Dict[str, float], trials: int = 30, concurrency: int = 2) -> List[float]:
    """Run ``strategy`` on the benchmark's space with accuracies from ``table``; the accuracies of its trials in
    submission order."""
    from nni.retiarii.execution.inprocess import InProcessExecutionEngine
    from nni.retiarii.space import mutators_for, python_model

    from .space import DigitsSearchSpace

    space = DigitsSearchSpace()
    base = python_model(space)
    base.evaluator = _lookup_evaluator(table)
    with InProcessExecutionEngine(concurrency=concurrency, max_trial_number=trials) as engine:
        strategy.run(base, mutators_for(space))
    missing = [err for err in engine.errors.values() if isinstance(err, KeyError)]
    if missing:
        raise ValueError(str(missing[0]).strip('"\''))
    return [m.metric for m in engine.models if m.metric is not None]


def compare(config, table: Dict[str, float], seeds: int = 30) -> dict:
    """Every strategy of ``config`` (made by :func:`nni.nas_benchmark.bench.make_strategy`) over ``seeds`` seeds.

    Per strategy: best accuracy per seed, their median and mean, the mean trial accuracy, and ``wins``: in how many
    groups of 3 consecutive seeds (0-2, 3-5, ...: the real benchmark's comparison) the strategy's median best beats
    Random's."""
    from .bench import make_strategy

    if len(table) < SPACE_SIZE:
        raise ValueError(f'the accuracy table has {len(table)} of {SPACE_SIZE} architectures; '
                         'fill it first (--fill-table)')
    best: Dict[str, List[float]] = {}
    mean: Dict[str, List[float]] = {}
    for name in config.strategies:
        runs = [simulate(make_strategy(name, seed, config), table, config.trials, config.concurrency)
                for seed in range(seeds)]
        best[name] = [max(r) for r in runs]
        mean[name] = [statistics.fmean(r) for r in runs]
    groups = seeds // 3
    top = sorted(table.values(), reverse=True)
    summary = {'seeds': seeds, 'groups_of_3': groups, 'table_best': top[0], 'strategies': {}}
    for name in config.strategies:
        row = {'median_best': statistics.median(best[name]), 'mean_best': statistics.fmean(best[name]),
               'mean_accuracy': statistics.fmean(mean[name]), 'best_per_seed': best[name]}
        if 'Random' in best and groups:
            def median3(values, g):
                return statistics.median(values[3 * g:3 * g + 3])
            row['wins_over_random'] = sum(median3(best[name], g) > median3(best['Random'], g) for g in range(groups))
        summary['strategies'][name] = row
    return summary


def render_comparison(summary: dict) -> str:
    """A markdown table of :func:`compare`'s result."""
    lines = [f"Offline, {summary['seeds']} seeds (best of the table: {summary['table_best']:.4f})", '',
             '| strategy | median best | mean best | mean trial accuracy | 3-seed groups beating Random |',
             '|---|---|---|---|---|']
    for name, row in summary['strategies'].items():
        wins = '-'
        if 'wins_over_random' in row and name != 'Random':
            wins = f"{row['wins_over_random']} / {summary['groups_of_3']}"
        lines.append(f"| {name} | {row['median_best']:.4f} | {row['mean_best']:.4f} | {row['mean_accuracy']:.4f} "
                     f"| {wins} |")
    return '\n'.join(lines)
