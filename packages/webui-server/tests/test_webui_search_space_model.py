"""The web UI model shows a custom tuner's search space as written (any JSON value) and builds
parameter columns only from NNI's standard format; runs ``static/js/model.js`` under Node."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import nni.server

MODEL_JS = Path(nni.server.__file__).parent / "webui" / "static" / "js" / "model.js"

SCRIPT = """
import { isStandardSearchSpace, ExperimentModel } from %s;
const out = [];
for (const raw of JSON.parse(process.argv[1])) {
  const m = new ExperimentModel();
  m.applySearchSpace(JSON.stringify(raw));
  out.push({ standard: m.standardSpace, space: m.searchSpace, flat: Object.keys(m.flatSpace), check: isStandardSearchSpace(raw) });
}
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_custom_spaces_are_kept_as_written():
    spaces = [
        {"lr": {"_type": "uniform", "_value": [0, 1]}},
        {"x": [1, 100], "y": {"_type": "my_own", "_value": 3}},
        [1, [2, 3]],
        "text",
    ]
    script = SCRIPT % json.dumps(MODEL_JS.as_uri())
    proc = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(spaces)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert [r["standard"] for r in result] == [True, False, False, False]
    assert [r["check"] for r in result] == [True, False, False, False]
    assert [r["space"] for r in result] == spaces
    assert result[0]["flat"] == ["lr"] and all(r["flat"] == [] for r in result[1:])
