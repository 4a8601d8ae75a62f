"""``python -m nni.server``: run the manager of one experiment.

    python -m nni.server --config exp.json --port 8080 [--id ID] [--foreground]
    python -m nni.server --resume ID --port 8080
    python -m nni.server --view ID --port 8080

``--config`` is the canonical experiment config as JSON (what
``ExperimentConfig.canonical()`` / ``nnictl`` write). User errors are printed as one line on
stderr and the process exits with status 1.
"""
from __future__ import annotations

import argparse
import sys



def _spawn_dispatcher_early(args) -> object | None:
    """Start the dispatcher of a new experiment before importing the manager (overlap)."""
    if not args.config or args.resume or args.view or not args.experiment_id or args.debug:
        return None
    import json
    import os

    try:
        with open(args.config, encoding="utf-8") as f:
            config = json.load(f)
        root = os.path.expanduser(config.get("experimentWorkingDirectory") or "")
        if not root or not (config.get("tuner") or config.get("advisor")):
            return None
        exp_dir = os.path.join(root, args.experiment_id)
        if os.path.exists(os.path.join(exp_dir, "db", "nni.sqlite")):
            return None
        from .dispatcher_launch import spawn_early

        return spawn_early(config, exp_dir)
    except (OSError, ValueError):
        return None  # the manager reports the problem with its usual message


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nni.server", description="NNI experiment manager")
    p.add_argument("--config", help="canonical experiment config (JSON file)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--id", dest="experiment_id", help="experiment id for a new experiment (default: random)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", metavar="ID", help="resume a stopped experiment")
    group.add_argument("--view", metavar="ID", help="serve a stopped experiment read-only")
    p.add_argument("--experiment-dir", help="folder of the experiment to resume / view (default: from the registry)")
    p.add_argument("--url-prefix", default="", help="serve under this URL prefix")
    p.add_argument("--access-token", default=None,
                   help="token every request must carry (default: $NNI_ACCESS_TOKEN, else a new one, printed); "
                        "other local users can read a command line: prefer the variable")
    p.add_argument("--no-token", action="store_true",
                   help="serve without an access token (also $NNI_NO_TOKEN=1); only with --host 127.0.0.1 / localhost / ::1")
    p.add_argument("--foreground", action="store_true", help="also log to the console")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    import os

    from nni.runtime.access import TOKEN_ENV, check_no_token, no_token_from_env

    # Read once and removed, so the dispatcher and the trials do not inherit it.
    token = args.access_token or os.environ.pop(TOKEN_ENV, None) or None
    no_token = args.no_token or no_token_from_env()
    if no_token:
        try:
            check_no_token(args.host, "--no-token" if args.no_token else "NNI_NO_TOKEN")
        except ValueError as err:
            print(f"Error: {err}", file=sys.stderr)
            return 1
    early = _spawn_dispatcher_early(args)
    from .manager import ManagerError, ManagerOptions, main_async

    options = ManagerOptions(
        port=args.port,
        host=args.host,
        config_path=args.config,
        experiment_id=args.experiment_id,
        resume=args.resume,
        view=args.view,
        experiment_dir=args.experiment_dir,
        foreground=args.foreground,
        url_prefix=args.url_prefix,
        access_token=token,
        no_token=no_token,
        debug=args.debug,
        early_dispatcher=early,
    )
    try:
        return main_async(options)
    except ManagerError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except ValueError as err:  # user errors from a training service (e.g. an impossible GPU request)
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    from nni.runtime.process_exit import exit_now

    # no module teardown (aiohttp, peewee, asyncio: ~0.1-0.3 s of CPU) once the store is closed:
    # Experiment.stop() and nnictl stop wait for this exit
    exit_now(main())
