"""Schemathesis against the OpenAPI document a real manager serves (issue 11: the fuzz run).

A manager on 127.0.0.1 runs a small experiment (two finished trials with intermediate and final
results, so the read routes answer real data); schemathesis then generates requests from the
served document (valid and invalid ones, bounded in examples per operation and in time) and
checks every answer: no 5xx, and each body matches the schema documented for its status code.

What the run leaves out, and why:
* ``DELETE /experiment`` (``stop_experiment``): it makes the manager exit; every later request
  would fail to connect. ``test_manager_rest`` covers it.
* Budget values a valid update may set (``trialConcurrency`` / ``maxTrialNum`` up to 2**31-1)
  are lowered to 3 by a hook before the request is sent, so the fuzz run cannot start thousands
  of trial processes on the test machine; values over the limit still go out unchanged (and are
  refused); ``test_rest_hardening`` and ``test_limits`` cover the large ones.
Cancelling trials (``DELETE /trial-jobs/{id}``) stays in: generated ids match no trial (404).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nni.runtime.rest_api import API_ROOT, MAX_TRIAL_CONCURRENCY, ROUTES, RestClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

TOKEN = "fuzz-test-token-0123456789abcdef"
MAX_EXAMPLES = 25  # per operation and phase
MAX_SECONDS = 60

HOOKS = f'''
import schemathesis


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """Keep valid budget updates small: the run tests input handling, not the machine."""
    if case.method.upper() == "PUT" and case.operation.path == "/experiment" and isinstance(case.body, dict):
        params = case.body.get("params")
        if isinstance(params, dict):
            for key in ("trialConcurrency", "maxTrialNum"):
                value = params.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and 3 < value <= {MAX_TRIAL_CONCURRENCY}:
                    params[key] = 3
'''

TRIAL = """
import nni
p = nni.get_next_parameter()
nni.report_intermediate_result(p["x"])
nni.report_final_result({"default": p["x"], "loss": 1 - p["x"]})
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(TRIAL)
    config = {
        "experimentName": "fuzz", "trialCommand": f"{sys.executable} trial.py", "trialCodeDirectory": str(code),
        "trialConcurrency": 2, "maxTrialNumber": 2,
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}, "c": {"_type": "choice", "_value": ["a", 1]}},
        "tuner": {"name": "Random"}, "trainingService": {"platform": "local"},
        "experimentWorkingDirectory": str(tmp_path / "exps"),
    }
    (tmp_path / "c.json").write_text(json.dumps(config))
    (tmp_path / "nni_fuzz_hooks.py").write_text(HOOKS)
    port = _port()
    env = dict(os.environ, NNI_EXPERIMENTS_DIR=str(tmp_path / "exps"), NNI_ACCESS_TOKEN=TOKEN)
    log_path = tmp_path / "manager.log"
    with open(log_path, "wb") as log:
        manager = subprocess.Popen([sys.executable, "-m", "nni.server", "--config", str(tmp_path / "c.json"),
                                    "--port", str(port), "--id", "fuzz0001"], stdout=log, stderr=log, env=env)
    client = RestClient(port, token=TOKEN)
    try:
        deadline = time.monotonic() + 120
        while True:  # up, and both trials finished: the read routes have data to answer
            assert manager.poll() is None, log_path.read_text()
            try:
                stats = {s["trialJobStatus"]: s["trialJobNumber"] for s in client.call("get_job_statistics")}
                if stats.get("SUCCEEDED") == 2:
                    break
            except ConnectionError:
                pass
            assert time.monotonic() < deadline, f"trials did not finish: {log_path.read_text()[-2000:]}"
            time.sleep(0.2)

        st_env = dict(env, SCHEMATHESIS_HOOKS="nni_fuzz_hooks",
                      PYTHONPATH=os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        st = Path(sys.executable).parent / "schemathesis"
        assert st.is_file(), "schemathesis is in nni-webui-server's test extras: pip install -e 'packages/webui-server[test]'"
        cmd = [
            str(st), "run", f"http://127.0.0.1:{port}{API_ROOT}/openapi.json",
            "--checks", "not_a_server_error,response_schema_conformance",
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", str(MAX_EXAMPLES), "--max-time", str(MAX_SECONDS), "--workers", "1",
            "--exclude-operation-id", "stop_experiment",
            "--header", f"Authorization: Bearer {TOKEN}",
            "--request-timeout", "30", "--generation-database", "none", "--no-color",
        ]
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=st_env, timeout=MAX_SECONDS + 240)
        out = run.stdout + run.stderr
        assert run.returncode == 0, out[-12000:]
        assert "generated" in out and " failed" not in out.split("SUMMARY")[-1], out[-4000:]
        served = sum(len(ops) for ops in client.call("get_openapi")["paths"].values())
        operations = [line.strip() for line in out.splitlines() if "Operations:" in line]
        # schemathesis leaves out the document's own route; of the rest all but stop_experiment ran
        assert served >= len(ROUTES) and operations and operations[0].endswith(f"{served - 2} selected / {served - 1} total"), operations

        # the manager is still up, and no request went down the "internal error" path
        assert manager.poll() is None and client.call("get_status")["status"] in ("INITIALIZED", "RUNNING", "DONE", "NO_MORE_TRIAL")
        log_text = log_path.read_text(errors="replace")
        assert not [line for line in log_text.splitlines() if "(nni.server.rest)" in line and "failed" in line], log_text[-4000:]
    finally:
        manager.terminate()
        manager.wait(60)
