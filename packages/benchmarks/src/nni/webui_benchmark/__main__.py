"""``python -m nni.webui_benchmark [--trials N] [--intermediate K] [--dir DIR] [--chromium PATH]``."""
from __future__ import annotations

import argparse
import json

from .bench import run


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m nni.webui_benchmark", description=__doc__)
    p.add_argument("--trials", type=int, default=10_000)
    p.add_argument("--intermediate", type=int, default=100, help="intermediate results per trial")
    p.add_argument("--dir", help="experiment folder to build (or reuse); default: a temporary one")
    p.add_argument("--repeat", type=int, default=5, help="timed calls per route")
    p.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium binary ('' to skip the page timing)")
    p.add_argument("--page-runs", type=int, default=3, help="cold + warm page loads timed")
    args = p.parse_args()
    report = run(args.trials, args.intermediate, args.dir, args.repeat, args.chromium or None, args.page_runs)
    print(json.dumps(report, indent=2), flush=True)


if __name__ == "__main__":
    main()
