"""The warm-interpreter launcher: eligible trials are forked by one zygote, with the same semantics."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nni.runtime.training_service import ExperimentContext, TrialJobStatus, TrialSpec
from nni.testing.training_service import collect_until_final
from nni.training_services.local import LocalTrainingService
from nni.training_services.local import zygote as zg

PY = os.path.basename(sys.executable)

TRIAL = """\
import json, os, random, sys, time
out = {"pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0), "cwd": os.getcwd(), "argv": sys.argv,
       "job": os.environ.get("NNI_TRIAL_JOB_ID"), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
       "path0": sys.path[0], "random": random.random(), "preloaded": "zt_heavy" in sys.modules,
       "torch_seed": __import__("torch").initial_seed()}
with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "out.json"), "w") as f:
    json.dump(out, f)
print("to stdout")
print("to stderr", file=sys.stderr)
if sys.argv[1:2] == ["sleep"]:
    time.sleep(60)
sys.exit(int(sys.argv[2]) if sys.argv[1:2] == ["exit"] else 0)
"""


@pytest.fixture
def code_dir(tmp_path, monkeypatch):
    code = tmp_path / "code"
    code.mkdir()
    (code / "zt_trial.py").write_text(TRIAL)
    (code / "zt_heavy.py").write_text("VALUE = 1\n")
    # a stand-in for torch (found first from the code folder): seeded once at import, like torch
    (code / "torch.py").write_text("import random as _r\n_seed = _r.getrandbits(62)\n"
                                   "def seed():\n    global _seed\n    _seed = _r.getrandbits(62)\n    return _seed\n"
                                   "def initial_seed():\n    return _seed\n")
    monkeypatch.setitem(zg.ZYGOTE_MODULES, "zt_trial", ("random", "torch", "zt_heavy"))
    monkeypatch.delenv(zg.ZYGOTE_ENV, raising=False)
    return code


def _param() -> str:
    return json.dumps({"parameter_id": 0, "parameter_source": "algorithm", "parameters": {}, "parameter_index": 0})


def test_eligibility(monkeypatch):
    monkeypatch.delenv(zg.ZYGOTE_ENV, raising=False)
    assert zg.zygote_argv(f"{PY} -m nni.retiarii.trial_entry py") == [PY, "-m", "nni.retiarii.trial_entry", "py"]
    assert zg.zygote_argv(f"{sys.executable} -m nni.retiarii.trial_entry base") is not None
    assert zg.zygote_argv(f"{PY} -m other.module") is None  # not a known-safe module
    assert zg.zygote_argv(f"{PY} -m nni.retiarii.trial_entry py; rm -rf x") is None  # more than one command
    assert zg.zygote_argv(f"{PY} -m nni.retiarii.trial_entry py > log") is None
    assert zg.zygote_argv("/usr/bin/env -m nni.retiarii.trial_entry py") is None  # another program
    monkeypatch.setenv(zg.ZYGOTE_ENV, "0")
    assert zg.zygote_argv(f"{PY} -m nni.retiarii.trial_entry py") is None


def _run(ctx: ExperimentContext, specs: list[TrialSpec], cancel_after: float | None = None, **kw):
    async def go():
        ts = LocalTrainingService({}, ctx, kill_grace=1, **kw)
        await ts.start()
        zygote_pid = ts._zygote.pid if ts._zygote is not None else None
        for spec in specs:
            await ts.submit(spec)
        if cancel_after is not None:
            await asyncio.sleep(cancel_after)
            for spec in specs:
                await ts.cancel(spec.trial_id)
        await collect_until_final(ts, {s.trial_id for s in specs}, timeout=60)
        details = {s.trial_id: ts.get_trial_job(s.trial_id) for s in specs}
        await ts.stop()
        return zygote_pid, details

    return asyncio.run(go())


def test_trials_are_forked_with_their_own_env_files_and_exit_codes(tmp_path, code_dir):
    ctx = ExperimentContext("exp1", str(tmp_path / "exp"), f"{PY} -m zt_trial", str(code_dir), trial_gpu_number=0)
    specs = [TrialSpec("ok001", 0, _param()), TrialSpec("ok002", 1, _param(), command=f"{PY} -m zt_trial exit 3")]
    zygote_pid, details = _run(ctx, specs)
    assert zygote_pid is not None
    assert details["ok001"].status == TrialJobStatus.SUCCEEDED
    assert details["ok002"].status == TrialJobStatus.FAILED and details["ok002"].exit_code == 3
    outs = {}
    for tid in ("ok001", "ok002"):
        trial_dir = tmp_path / "exp" / "trials" / tid
        out = outs[tid] = json.loads((trial_dir / "out.json").read_text())
        assert out["ppid"] == zygote_pid and out["pgid"] == out["pid"]  # forked, in its own group
        assert out["preloaded"] is True
        assert out["job"] == tid and out["cuda"] == "" and out["cwd"] == str(code_dir) == out["path0"]
        assert out["argv"][0] == str(code_dir / "zt_trial.py")
        assert (trial_dir / "stdout").read_text() == "to stdout\n" == (trial_dir / "trial.log").read_text()
        assert (trial_dir / "stderr").read_text() == "to stderr\n"
    assert outs["ok002"]["argv"][1:] == ["exit", "3"]
    assert (tmp_path / "exp" / "trials" / "ok002" / ".nni" / "state").read_text().split()[0] == "3"
    assert outs["ok001"]["random"] != outs["ok002"]["random"]  # re-seeded like a new process
    assert outs["ok001"]["torch_seed"] != outs["ok002"]["torch_seed"]
    with pytest.raises(ProcessLookupError):  # the zygote went with the service
        os.kill(zygote_pid, 0)


def test_cancel_reaches_the_forked_trial(tmp_path, code_dir):
    ctx = ExperimentContext("exp2", str(tmp_path / "exp"), f"{PY} -m zt_trial sleep", str(code_dir))
    _, details = _run(ctx, [TrialSpec("slp01", 0, _param())], cancel_after=3.0)
    assert details["slp01"].status == TrialJobStatus.USER_CANCELED
    pid = json.loads((tmp_path / "exp" / "trials" / "slp01" / "out.json").read_text())["pid"]
    assert _gone(pid)  # the SIGTERM to the trial's group reached the forked process through its client


def test_disabled_runs_a_new_process(tmp_path, code_dir, monkeypatch):
    monkeypatch.setenv(zg.ZYGOTE_ENV, "0")
    ctx = ExperimentContext("exp3", str(tmp_path / "exp"), f"{PY} -m zt_trial", str(code_dir))
    zygote_pid, details = _run(ctx, [TrialSpec("new01", 0, _param())])
    assert zygote_pid is None and details["new01"].status == TrialJobStatus.SUCCEEDED
    out = json.loads((tmp_path / "exp" / "trials" / "new01" / "out.json").read_text())
    assert out["preloaded"] is False


def _zygote(tmp_path, code_dir, lifeline: int | None = None) -> tuple[subprocess.Popen, str]:
    sock = str(tmp_path / "z.sock")
    cmd = [sys.executable, "-c", "import sys; from nni.training_services.local.zygote import main; sys.exit(main())",
           "--socket", sock, "--preload", "zt_heavy", "--modules", "zt_trial"]
    if lifeline is not None:
        cmd += ["--lifeline", str(lifeline)]
    proc = subprocess.Popen(cmd, cwd=code_dir, pass_fds=() if lifeline is None else (lifeline,), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc, sock


def _client(sock: str, code_dir: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, NNI_OUTPUT_DIR=str(code_dir))
    return subprocess.Popen([sys.executable, "-I", "-S", zg.CLIENT_PATH, sock, PY, "-m", "zt_trial", *args],
                            cwd=code_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for_pid(code_dir: Path) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            return json.loads((code_dir / "out.json").read_text())["pid"]
        except (OSError, ValueError):
            time.sleep(0.05)
    raise AssertionError("the trial did not start")


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_client_signal_status_and_sigkill(tmp_path, code_dir):
    proc, sock = _zygote(tmp_path, code_dir)
    try:
        client = _client(sock, code_dir, "sleep")
        child = _wait_for_pid(code_dir)
        client.send_signal(signal.SIGTERM)  # forwarded; the client dies of the same signal
        assert client.wait(20) == -signal.SIGTERM and _gone(child)
        (code_dir / "out.json").unlink()
        client = _client(sock, code_dir, "sleep")
        child = _wait_for_pid(code_dir)
        client.kill()  # the client cannot forward SIGKILL: the zygote sees it gone and kills the trial
        client.wait(20)
        assert _gone(child)
    finally:
        proc.kill()
        proc.wait()


def test_no_zygote_falls_back_to_exec(tmp_path, code_dir):
    client = _client(str(tmp_path / "missing.sock"), code_dir, "exit", "5")
    assert client.wait(30) == 5
    assert json.loads((code_dir / "out.json").read_text())["preloaded"] is False


def test_lifeline_eof_ends_the_zygote_and_its_trials(tmp_path, code_dir):
    read_fd, write_fd = os.pipe()
    proc, sock = _zygote(tmp_path, code_dir, lifeline=read_fd)
    os.close(read_fd)
    client = _client(sock, code_dir, "sleep")
    child = _wait_for_pid(code_dir)
    os.close(write_fd)  # the manager is gone
    try:
        assert proc.wait(20) == 0  # after the grace (3 s) it kills what is left and exits
        assert _gone(child)
    finally:
        client.kill()
        client.wait()
