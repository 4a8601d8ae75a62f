"""``python -m nni.platform_benchmark --platform slurm|ray [platform options]``."""
from __future__ import annotations

import argparse
import importlib
import sys

PLATFORMS = ("slurm", "ray")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nni.platform_benchmark", add_help=False)
    parser.add_argument("--platform", choices=PLATFORMS, required=True, help="the platform to compare with local")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    module = importlib.import_module(f"{__package__}.{args.platform}")
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
