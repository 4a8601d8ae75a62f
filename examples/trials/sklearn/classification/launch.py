"""Run this example from Python instead of nnictl (``python launch.py [port]``)."""
import json
import sys
from pathlib import Path

from nni.experiment import Experiment

here = Path(__file__).parent
experiment = Experiment("local")
experiment.config.experiment_name = "example_sklearn-classification"
experiment.config.trial_concurrency = 2
experiment.config.max_trial_number = 20
experiment.config.search_space = json.loads((here / "search_space.json").read_text())
experiment.config.trial_command = "python3 main.py"
experiment.config.trial_code_directory = here
experiment.config.tuner.name = "TPE"
experiment.config.tuner.class_args["optimize_mode"] = "maximize"

experiment.run(int(sys.argv[1]) if len(sys.argv) > 1 else 8080)
