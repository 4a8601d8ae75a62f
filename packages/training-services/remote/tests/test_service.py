"""RemoteTrainingService against two real OpenSSH servers on 127.0.0.1 (in-process, no manager)."""
from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import textwrap
from pathlib import Path

import pytest

from nni.runtime.training_service import ExperimentContext, MetricEvent, StateEvent, TrialJobStatus, TrialSpec
from nni.training_services.remote.service import RemoteTrainingService

TRIAL = textwrap.dedent(
    """\
    import os, nni
    p = nni.get_next_parameter()
    nni.report_intermediate_result(p["x"] / 2)
    nni.report_final_result(p["x"])
    print("platform", os.environ["NNI_PLATFORM"], "gpus", repr(os.environ.get("CUDA_VISIBLE_DEVICES")))
    """
)


@pytest.fixture
def experiment_id():
    """A fresh id; the machines' ~/nni-experiments/<id> folders are removed afterwards."""
    eid = "rt" + secrets.token_hex(3)
    yield eid
    for home in (Path.home(),):
        shutil.rmtree(home / "nni-experiments" / eid, ignore_errors=True)


def _context(tmp_path, code, eid, gpu=None, command="python3 trial.py"):
    return ExperimentContext(eid, str(tmp_path / "exp"), command, str(code), trial_gpu_number=gpu)


def _code(tmp_path, text=TRIAL):
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "trial.py").write_text(text)
    (code / ".nniignore").write_text("data/\n")
    (code / "data").mkdir(exist_ok=True)
    (code / "data" / "big.bin").write_bytes(b"x" * 1000)
    return code


def _param(i):
    return json.dumps({"parameter_id": i, "parameter_source": "algorithm", "parameters": {"x": i}})


async def _collect(ts, n_final, timeout=60):
    states, metrics = {}, {}

    async def run():
        async for ev in ts.events():
            if isinstance(ev, StateEvent):
                states.setdefault(ev.trial_id, []).append(ev)
                if sum(1 for evs in states.values() if evs[-1].status.is_final) >= n_final:
                    return
            elif isinstance(ev, MetricEvent):
                metrics.setdefault(ev.trial_id, []).append(ev.record)

    await asyncio.wait_for(run(), timeout)
    return states, metrics


@pytest.mark.parametrize("reuse", [True, False])
def test_trials_spread_over_two_machines(tmp_path, key_server, password_server, reuse, experiment_id):
    code = _code(tmp_path)
    config = {"platform": "remote", "reuseMode": reuse, "machineList": [key_server.machine(), password_server.machine()]}

    async def main():
        ts = RemoteTrainingService(config, _context(tmp_path, code, experiment_id))
        await ts.start()
        try:
            for i in range(6):
                await ts.submit(TrialSpec(f"t{i:04d}", i, _param(i)))
            states, metrics = await _collect(ts, 6)
        finally:
            await ts.stop()
        return ts, states, metrics

    ts, states, metrics = asyncio.run(main())
    assert all(evs[-1].status == TrialJobStatus.SUCCEEDED for evs in states.values()), states
    for i in range(6):
        recs = metrics[f"t{i:04d}"]
        assert [r["type"] for r in recs] == ["PERIODICAL", "FINAL"]
        assert json.loads(recs[-1]["value"]) == i if isinstance(recs[-1]["value"], str) else recs[-1]["value"] == i
    hosts = {d.url.split("@")[1].split("/")[0] for d in ts.list_trial_jobs()}
    assert len(hosts) == 2, hosts  # both machines ran trials
    out = (tmp_path / "exp" / "trials" / "t0000" / "stdout").read_text()
    assert "platform remote" in out  # copied back from the machine


def test_wrong_password_fails_preflight_in_one_line(tmp_path, password_server, experiment_id):
    code = _code(tmp_path)
    machine = password_server.machine(password="wrong-" + password_server.account.password)
    ts = RemoteTrainingService({"platform": "remote", "machineList": [machine]}, _context(tmp_path, code, experiment_id))
    with pytest.raises(Exception) as info:
        asyncio.run(ts.start())
    text = str(info.value)
    assert password_server.name in text and "\n" not in text
    assert password_server.account.password not in text
