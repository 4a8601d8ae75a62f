"""``python -m nni.nas_benchmark [--quick] [--strategies ...] [--seeds N] [--trials N] [--epochs N] [--out DIR] [--from-dir]``."""
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
    args = p.parse_args(argv)
    values = dict(strategies=['RegularizedEvolution', 'Random'], seeds=1, trials=3, epochs=2) if args.quick else {}
    for key in ('strategies', 'seeds', 'trials', 'epochs'):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    try:
        config = NasBenchmarkConfig(concurrency=args.concurrency, out=args.out, **values)
    except ValueError as err:
        print(f'nni.nas_benchmark: {err}', file=sys.stderr)
        return 2
    report = report_from_dir(args.out, config) if args.from_dir else run_benchmark(config)
    print(render_table(report))
    return 0


if __name__ == '__main__':
    sys.exit(main())
