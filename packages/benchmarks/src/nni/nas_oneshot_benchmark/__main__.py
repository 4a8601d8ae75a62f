"""``python -m nni.nas_oneshot_benchmark [--repeats N] [--batch-size N] [--channels N] [--unrolled] [--threads N]``
or ``python -m nni.nas_oneshot_benchmark --quality [--seeds 0,1,2] [--threads N]``."""
from __future__ import annotations

import argparse
import json

import torch

from .bench import bench_darts_overhead, bench_darts_quality


def main() -> None:
    p = argparse.ArgumentParser(prog='python -m nni.nas_oneshot_benchmark')
    p.add_argument('--repeats', type=int, default=3, help='alternated DARTS / plain epochs (medians reported)')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--channels', type=int, default=32, help='width of the CNN space')
    p.add_argument('--unrolled', action='store_true', help='second-order DARTS')
    p.add_argument('--threads', type=int, default=None, help='torch intra-op threads (default: torch default)')
    p.add_argument('--quality', action='store_true',
                   help='instead: retrain the DARTS architecture and 5 random ones per seed, compare test accuracy')
    p.add_argument('--seeds', default='0,1,2', help='--quality: comma-separated seeds (default 0,1,2)')
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quality:
        try:
            seeds = [int(x) for x in args.seeds.split(',')]
        except ValueError:
            p.error(f'--seeds: expected comma-separated integers such as 0,1,2, got {args.seeds!r}')
        print(json.dumps(bench_darts_quality(seeds)), flush=True)
    else:
        print(json.dumps(bench_darts_overhead(args.repeats, args.batch_size, args.unrolled, args.channels)), flush=True)


if __name__ == '__main__':
    main()
