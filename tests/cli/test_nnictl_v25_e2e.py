"""nnictl as NNI v2.5 users call it, against a real manager: ``create --debug`` logs at debug
level, ``experiment import`` reports what the tuner accepted, ``--version``."""
from __future__ import annotations

import json
import re
import time

import pytest

pytestmark = pytest.mark.slow


def test_debug_and_import_report(nnictl, write_config, free_port, tmp_path):
    config = write_config("import nni\nnni.report_final_result(nni.get_next_parameter()['x'])\n", maxTrialNumber=2, trialConcurrency=1,
                          tuner={"name": "TPE", "classArgs": {"optimize_mode": "maximize"}}, logLevel="info")
    out = nnictl("create", "--config", str(config), "--port", str(free_port), "--debug").stdout
    eid = re.search(r"The experiment id is (\w+)", out).group(1)
    deadline = time.monotonic() + 60
    while json.loads(nnictl("experiment", "status", eid).stdout)["status"] != "DONE":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # --debug wins over the config's logLevel: the manager and the dispatcher log at debug level
    log_dir = nnictl.root / eid / "log"
    assert " DEBUG " in (log_dir / "nnimanager.log").read_text()
    assert " DEBUG " in (log_dir / "dispatcher.log").read_text()

    data = tmp_path / "prior.json"
    data.write_text(json.dumps([{"parameter": {"x": 0.2}, "value": 0.2}, {"parameter": {"x": 0.7}, "value": {"default": 0.7}},
                                {"parameter": {"other": 1}, "value": 0.1}]))  # not in the search space: TPE skips it
    out = nnictl("experiment", "import", eid, "-f", str(data)).stdout
    assert f"INFO: Import data success! Sent 3 records to experiment {eid}; the manager stored 3." in out
    assert "INFO: The tuner (TpeTuner) imported 2 of 3 records." in out
    assert "Successfully import data to TPE tuner, total data: 3, imported data: 2." in (log_dir / "dispatcher.log").read_text()

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"parameter": {"x": 0.2}}]))
    proc = nnictl("experiment", "import", eid, "-f", str(bad), ok=False)
    assert proc.returncode == 1 and proc.stderr.strip().endswith("[0].value: required field is missing")
    nnictl("stop", eid)


def test_version(nnictl):
    from nni.runtime.distributions import installed_distributions

    lines = nnictl("--version").stdout.splitlines()
    dists = installed_distributions()
    assert lines[0] == dists["nni"] and lines[1:] == [f"{n} {v}" for n, v in dists.items()]
