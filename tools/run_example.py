"""README quick start: run the scikit-learn example experiment to completion.

    python tools/run_example.py [--example sklearn/classification] [--port 8080] [--trials 10]

Loads ``examples/trials/<example>/config.yml`` (as ``nnictl create`` would), runs it through
``nni.experiment.Experiment.run()``, then prints the best trial and where the experiment lives.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--example", default="sklearn/classification")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--trials", type=int, default=10, help="maxTrialNumber for this run")
    args = p.parse_args()

    from nni.experiment import Experiment, ExperimentConfig

    config = ExperimentConfig.load(ROOT / "examples" / "trials" / args.example / "config.yml")
    config.max_trial_number = args.trials
    port = free_port(args.port)
    experiment = Experiment(config)
    ok = experiment.run(port)
    exp_dir = Path(config.to_canonical_dict(check_algorithms=False)["experimentWorkingDirectory"]) / experiment.id

    from nni.server.store import ExperimentStore, store_path

    store = ExperimentStore(store_path(exp_dir), readonly=True)
    results = store.export_data()
    statuses = {s["trialJobStatus"]: s["trialJobNumber"] for s in store.job_statistics()}
    store.close()
    print()
    print(f"Experiment {experiment.id}: {'DONE' if ok else 'did not finish'}; trials: {statuses}")
    if results:
        def score(r):
            v = json.loads(r["value"])
            return v["default"] if isinstance(v, dict) else v

        best = max(results, key=score)
        print(f"Best trial {best['trialJobId']}: value {score(best):.4f} with parameters {json.dumps(best['parameter'])}")
    print(f"Experiment folder: {exp_dir}")
    nnictl = Path(sys.executable).parent / "nnictl"
    print(f"See it in the web UI: {nnictl} view {experiment.id} --port {port}  (then open the URL it prints)")
    print(f"Or from the shell:    {nnictl} trial ls {experiment.id}   |   {nnictl} experiment export {experiment.id} --filename out.csv --type csv")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
