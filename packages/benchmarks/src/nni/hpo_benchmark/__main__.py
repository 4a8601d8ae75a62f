"""``python -m nni.hpo_benchmark``: run the HPO benchmark and print its markdown table."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .benchmark import BenchmarkConfig, load_report, markdown_table, run_benchmark, write_outputs
from .runners import NNI_DEFAULT_TUNERS, PEER_NAMES, QUICK_NNI_TUNERS
from .multifidelity import MF_TASKS, mf_table, run_multifidelity, write_mf_outputs
from .tasks import QUICK_TASKS, TASK_NAMES


def default_tuners(quick: bool = False) -> list[str]:
    """The NNI tuners of :data:`NNI_DEFAULT_TUNERS` (``QUICK_NNI_TUNERS`` for ``--quick``)
    that are installed, then the peers."""
    from nni.runtime import registry

    wanted = QUICK_NNI_TUNERS if quick else NNI_DEFAULT_TUNERS
    installed = set(registry.list_names("tuner"))
    missing = [n for n in wanted if n not in installed]
    if missing:
        print(f"note: NNI tuners not installed, skipped: {', '.join(missing)}", file=sys.stderr)
    return [n for n in wanted if n in installed] + list(PEER_NAMES)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m nni.hpo_benchmark",
        description="Benchmark NNI tuners against Optuna and hyperopt on synthetic and scikit-learn tasks.",
    )
    p.add_argument("--quick", action="store_true",
                   help=f"CI mode: tasks {', '.join(QUICK_TASKS)}, tuners {', '.join(QUICK_NNI_TUNERS)} and the "
                        "peers, 3 seeds, 30 trials, latency at 100 obs")
    p.add_argument("--multifidelity", action="store_true",
                   help="instead: Hyperband and BOHB against random search at equal total budget on a "
                        f"budget-dependent objective (tasks {', '.join(MF_TASKS)}; --seeds, default 10, quick 3)")
    p.add_argument("--mf-evaluations", type=int, default=100, metavar="N",
                   help="--multifidelity total budget, in full evaluations (default 100)")
    p.add_argument("--tasks", nargs="+", metavar="TASK", help=f"default: all ({', '.join(TASK_NAMES)})")
    p.add_argument("--tuners", nargs="+", metavar="TUNER",
                   help="NNI tuner names (optionally NAME:'{json classArgs}') and peers "
                        f"({', '.join(PEER_NAMES)}); default: {', '.join(NNI_DEFAULT_TUNERS)} if installed, "
                        "plus every peer")
    p.add_argument("--seeds", type=int, help="runs per task and tuner (default 10, quick 3)")
    p.add_argument("--trials", type=int, help="trials per run (default 100, quick 30)")
    p.add_argument("--latency-obs", type=int, nargs="*", metavar="N",
                   help="observation counts for suggestion latency (default 100 1000, quick 100; none to skip)")
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--out", default="hpo-benchmark-results", help="output folder (default ./hpo-benchmark-results)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--from-results", metavar="JSON",
                   help="run nothing: render table.md and curves.png of an earlier results.json into --out")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_results:
        try:
            report = load_report(args.from_results)
        except (OSError, ValueError) as err:
            print(f"error: --from-results: cannot read {args.from_results}: {err}", file=sys.stderr)
            return 2
        write_outputs(report, Path(args.out))
        print(markdown_table(report))
        return 0
    quick = args.quick
    if args.multifidelity:
        return _main_multifidelity(args)
    config = BenchmarkConfig(
        tasks=args.tasks or list(QUICK_TASKS if quick else TASK_NAMES),
        tuners=args.tuners or default_tuners(quick),
        seeds=args.seeds if args.seeds is not None else (3 if quick else 10),
        trials=args.trials if args.trials is not None else (30 if quick else 100),
        checkpoints=(10, 20, 30) if quick else (25, 50, 100),
        latency_obs=args.latency_obs if args.latency_obs is not None else ([100] if quick else [100, 1000]),
        workers=args.workers,
        out=args.out,
        progress=not args.no_progress,
        extra={"mode": "quick" if quick else "full"},
    )
    try:
        report = run_benchmark(config)
    except ValueError as err:  # user errors: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(markdown_table(report))
    out = Path(config.out)
    print(f"wrote {out / 'results.json'}, {out / 'curves.png'}, {out / 'table.md'} "
          f"({report['meta']['wall_seconds']} s)")
    return 0


def _main_multifidelity(args: argparse.Namespace) -> int:
    if args.mf_evaluations < 1:
        print(f"error: --mf-evaluations: must be at least 1, got {args.mf_evaluations}", file=sys.stderr)
        return 2
    try:
        report = run_multifidelity(tasks=args.tasks or list(MF_TASKS),
                                   seeds=args.seeds if args.seeds is not None else (3 if args.quick else 10),
                                   full_evaluations=args.mf_evaluations)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    paths = write_mf_outputs(report, Path(args.out))
    print(mf_table(report))
    print(f"wrote {paths['json']}, {paths['table']} ({report['meta']['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
