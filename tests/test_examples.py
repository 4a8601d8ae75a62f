"""The shipped examples load as valid NNI configs and their trials run standalone."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples" / "trials").glob("**/config.yml"))


def _script(config: Path) -> str:
    """The Python file of the config's ``trialCommand: python3 <file>``."""
    import yaml

    return yaml.safe_load(config.read_text())["trialCommand"].split()[1]


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_config_is_valid(config):
    from nni.experiment import ExperimentConfig

    canon = ExperimentConfig.load(config).to_canonical_dict()
    # with useAnnotation the search space comes from the trial code's annotations; NetworkMorphism
    # sends network graphs and uses no search space
    no_space = canon["useAnnotation"] or (canon.get("tuner") or {}).get("name") == "NetworkMorphism"
    assert (canon["searchSpace"] or no_space) and canon["trialCommand"].startswith("python3 ")
    assert (Path(canon["trialCodeDirectory"]) / _script(config)).exists()


@pytest.mark.slow
@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_trial_runs_standalone(config, tmp_path):
    # standalone mode (no NNI_PLATFORM): default parameters, results printed
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, _script(config)], cwd=config.parent, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert "Final result" in r.stdout or "final" in r.stdout.lower()
