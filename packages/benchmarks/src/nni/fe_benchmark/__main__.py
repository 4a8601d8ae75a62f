"""``python -m nni.fe_benchmark``: run the feature-selector benchmark and print its markdown table."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .bench import DATASETS, DEFAULT_DATASETS, SELECTORS, BenchmarkConfig, load_report, markdown_table, \
    run_benchmark, write_outputs


def _k_pair(text: str) -> tuple[str, int]:
    name, _, value = text.partition("=")
    try:
        return name, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected DATASET=INTEGER, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nni.fe_benchmark", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI size: wine and breast_cancer, 2 seeds, logistic regression only")
    parser.add_argument("--datasets", nargs="+", metavar="NAME", help=f"of {', '.join(DATASETS)} "
                        f"(default: {' '.join(DEFAULT_DATASETS)})")
    parser.add_argument("--selectors", nargs="+", metavar="NAME", help=f"of {', '.join(SELECTORS)} (default: all)")
    parser.add_argument("--seeds", type=int, help="repetitions (default 10, quick 2)")
    parser.add_argument("--noise-ratio", type=float, default=2.0, help="noise columns per original column")
    parser.add_argument("--k", type=_k_pair, nargs="+", default=[], metavar="DATASET=K",
                        help="features to select (default: " + ", ".join(f"{d}={v[1]}" for d, v in DATASETS.items())
                        + ")")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="downstream: logreg gboost (default both)")
    parser.add_argument("--test-size", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=1, help="torch / LightGBM threads (default 1)")
    parser.add_argument("--out", default="fe-benchmark-results", help="folder for results.json, table.md, png")
    parser.add_argument("--from-results", metavar="JSON", help="re-render the outputs of an earlier run")
    parser.add_argument("--quiet", action="store_true", help="no per-run progress lines on stderr")
    args = parser.parse_args(argv)
    if args.from_results:
        try:
            report = load_report(args.from_results)
        except (OSError, ValueError) as err:
            print(f"error: --from-results: cannot read {args.from_results}: {err}", file=sys.stderr)
            return 2
        write_outputs(report, Path(args.out))
        print(markdown_table(report))
        return 0
    config = BenchmarkConfig(
        datasets=args.datasets or (["wine", "breast_cancer"] if args.quick else list(DEFAULT_DATASETS)),
        selectors=args.selectors or list(SELECTORS),
        models=args.models or (["logreg"] if args.quick else ["logreg", "gboost"]),
        seeds=args.seeds if args.seeds is not None else (2 if args.quick else 10),
        noise_ratio=args.noise_ratio, k=dict(args.k), test_size=args.test_size, threads=args.threads, out=args.out)
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        report = run_benchmark(config, progress)
    except ValueError as err:  # user errors: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(markdown_table(report))
    out = Path(config.out)
    print(f"wrote {out / 'results.json'}, {out / 'table.md'}, {out / 'fe_benchmark.png'} "
          f"({report['meta']['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
