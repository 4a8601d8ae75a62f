"""The digits pruning example meets its accuracy target (issue 14): L1Filter at 50 % + fine-tune is
within 2 points of the unpruned model, and ModelSpeedup keeps the accuracy while shrinking the layers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "model_compress" / "pruning" / "digits_prune_speedup.py"


@pytest.mark.slow
def test_digits_prune_speedup_meets_the_accuracy_target(tmp_path):
    r = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    line = [x for x in r.stdout.splitlines() if x.startswith("Final result:")][-1]
    result = json.loads(line.split(":", 1)[1])
    assert result["accuracy_original"] > 0.9
    assert result["accuracy_finetuned"] >= result["accuracy_original"] - 0.02
    # the sped-up model computes what the masked one did
    assert result["accuracy_speedup"] == pytest.approx(result["accuracy_finetuned"], abs=1e-6)
    assert (result["conv1_out_channels"], result["conv2_out_channels"]) == (8, 16)
    assert result["flops_speedup"] < 0.3 * result["flops_original"]
    assert result["params_speedup"] < 0.5 * result["params_original"]
