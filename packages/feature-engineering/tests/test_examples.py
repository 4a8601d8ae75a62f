"""Each example runs as a script and prints what the docs promise."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(relative: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # torch / LightGBM: no thread contention on the 2-core CI
    result = subprocess.run([sys.executable, str(EXAMPLES / relative)], capture_output=True, text=True, timeout=300,
                            env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("relative", ["gradient_feature_selector/selector_example.py",
                                      "gbdt_selector/selector_example.py"])
def test_selector_examples_print_ten_feature_indices(relative):
    out = run_example(relative)
    line = next(line for line in out.splitlines() if line.startswith("selected features:"))
    selected = ast.literal_eval(line.split(":", 1)[1].strip())
    assert len(selected) == len(set(selected)) == 10 and all(0 <= i < 30 for i in selected)
    # the "worst" radius / perimeter / area / concave-points columns (20-27) are the classic strong ones
    assert len(set(selected) & {20, 21, 22, 23, 27}) >= 3


def test_pipeline_example_keeps_the_signal():
    out = run_example("gradient_feature_selector/pipeline_example.py")
    scores = {}
    for line in out.splitlines():
        name, rest = line.split(": test score ")
        score, features, noise = rest.split(", ")
        scores[name] = (float(score), int(features.split()[0]), int(noise.split()[0]))
    assert set(scores) == {"all features", "FeatureGradientSelector", "TreeBasedClassifier"}
    score, n_features, noise = scores["FeatureGradientSelector"]
    assert n_features == 20 and noise == 0 and score > 0.8
