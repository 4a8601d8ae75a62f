"""``python -m nni.nas_benchmark [--quick] [--strategies ...] [--seeds N] [--trials N] [--epochs N] [--out DIR] [--from-dir]``.

Offline (:mod:`nni.nas_benchmark.offline`): ``--fill-table TABLE [--workers N]`` trains every architecture missing from
the accuracy table (taking the trials of ``--out``'s results first), ``--offline TABLE`` compares the strategies on it
over ``--seeds`` seeds (default 30).
"""
from __future__ import annotations

import argparse
import sys

from .bench import STRATEGIES, NasBenchmarkConfig, render_table, report_from_dir, run_benchmark


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='python -m nni.nas_benchmark')
    p.add_argument('--quick', action='store_true', help='CI size: RegularizedEvolution and Random, 1 seed, 3 trials, 2 epochs')
    p.add_argument('--strategies', nargs='+', choices=STRATEGIES, default=None)
    p.add_argument('--seeds', type=int, default=None)
    p.add_argument('--trials', type=int, default=None)
    p.add_argument('--epochs', type=int, default=None, help='training epochs per trial (default 10)')
    p.add_argument('--concurrency', type=int, default=2)
    p.add_argument('--out', default='nas-benchmark-results')
    p.add_argument('--from-dir', action='store_true',
                   help="only summarise the finished searches already in --out (e.g. of an interrupted run)")
    p.add_argument('--fill-table', metavar='TABLE', help='train the architectures missing from this accuracy table')
    p.add_argument('--workers', type=int, default=1, help='processes for --fill-table')
    p.add_argument('--offline', metavar='TABLE', help='compare the strategies on this (full) accuracy table')
    args = p.parse_args(argv)
    if args.offline and args.seeds is None:
        args.seeds = 30
    values = dict(strategies=['RegularizedEvolution', 'Random'], seeds=1, trials=3, epochs=2) if args.quick else {}
    for key in ('strategies', 'seeds', 'trials', 'epochs'):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    try:
        config = NasBenchmarkConfig(concurrency=args.concurrency, out=args.out, **values)
    except ValueError as err:
        print(f'nni.nas_benchmark: {err}', file=sys.stderr)
        return 2
    if args.fill_table or args.offline:
        return _offline(args, config)
    report = report_from_dir(args.out, config) if args.from_dir else run_benchmark(config)
    print(render_table(report))
    return 0


def _offline(args, config) -> int:
    from pathlib import Path

    from . import offline
    from .space import write_digits

    if args.fill_table:
        results = [str(p) for p in [Path(args.out) / 'results.json'] if p.exists()]
        added = offline.harvest(args.fill_table, results, config.epochs)
        data_path = write_digits(str(Path(args.fill_table).with_suffix('.digits.pt')))
        trained = offline.fill_table(args.fill_table, data_path, config.epochs, max(args.workers, 1),
                                     progress=lambda done, total: print(f'{done}/{total}', file=sys.stderr, flush=True))
        print(f'{args.fill_table}: {added} architectures from benchmark results, {trained} trained')
    if args.offline:
        try:
            summary = offline.compare(config, offline.load_table(args.offline), config.seeds)
        except ValueError as err:
            print(f'nni.nas_benchmark: {err}', file=sys.stderr)
            return 2
        print(offline.render_comparison(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
