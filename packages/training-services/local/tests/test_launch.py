"""How a trial command is launched: directly when it is a plain command, with bash when it needs a
shell; the same cwd, environment, output files, exit codes and cancel either way; the guardian
stops only its own service's trials."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from nni.runtime.training_service import ExperimentContext, TrialJobStatus, TrialSpec
from nni.testing.processes import process_running
from nni.testing.training_service import collect_until_final
from nni.training_services.local import LocalTrainingService
from nni.training_services.local.service import GUARDIAN_PATH, plain_argv

PY = os.path.dirname(sys.executable)


@pytest.mark.parametrize("command", [
    "python trial.py --lr=0.1 'a b' \"c d\"",
    "./run_me --x 1",
])
def test_plain_commands_are_split_like_bash_would(tmp_path, command):
    (tmp_path / "run_me").write_text("#!/bin/sh\n")
    (tmp_path / "run_me").chmod(0o755)
    argv = plain_argv(command, str(tmp_path), PY + os.pathsep + os.environ["PATH"])
    assert argv is not None
    if command.startswith("python"):
        assert argv == [os.path.join(PY, "python"), "python", "trial.py", "--lr=0.1", "a b", "c d"]
    else:
        assert argv == [os.path.join(str(tmp_path), "./run_me"), "./run_me", "--x", "1"]


@pytest.mark.parametrize("command", [
    "python a.py | tee x", "cd sub && python a.py", "python a.py; echo done", "python a.py > out",
    "python $SCRIPT", "python *.py", "python ~/a.py", "FOO=1 python a.py", "echo hi", "cd sub",
    "source env.sh", "python a.py # comment", "python `which a`", "no-such-command-xyz", "python 'unclosed",
    "./not_executable", "./no_shebang --x 1", "",
])
def test_commands_needing_a_shell_go_to_bash(tmp_path, command):
    (tmp_path / "not_executable").write_text("")
    # bash runs a script without '#!' as bash; exec would hand it to /bin/sh
    (tmp_path / "no_shebang").write_text("echo ${BASH_VERSION}\n")
    (tmp_path / "no_shebang").chmod(0o755)
    assert plain_argv(command, str(tmp_path), PY + os.pathsep + os.environ["PATH"]) is None
    # a relative PATH entry is resolved by bash from the trial's folder: leave it to bash
    assert plain_argv("python a.py", str(tmp_path), "bin" + os.pathsep + PY) is None


def _run(tmp_path, command: str, cancel_after: float | None = None):
    code = tmp_path / "code"
    code.mkdir(parents=True, exist_ok=True)
    ctx = ExperimentContext("launch", str(tmp_path / "exp"), command, str(code))

    async def go():
        ts = LocalTrainingService({}, ctx, kill_grace=1.0)
        await ts.start()
        await ts.submit(TrialSpec("t1", 0, json.dumps({"parameter_id": 0, "parameters": {"x": 1}})))
        if cancel_after is not None:
            await asyncio.sleep(cancel_after)
            await ts.cancel("t1")
        await collect_until_final(ts, {"t1"}, timeout=30)
        detail = ts.get_trial_job("t1")
        await ts.stop()
        return detail

    return asyncio.run(go()), tmp_path / "exp" / "trials" / "t1", code


TRIAL = (
    "import os, sys; print(os.getcwd(), os.environ['NNI_TRIAL_JOB_ID'], os.environ['NNI_SYS_DIR'], sys.argv[1:]);"
    " print('err', file=sys.stderr); sys.exit(int(sys.argv[1]))"
)


@pytest.mark.parametrize("shell", [False, True])
def test_direct_and_shell_launches_behave_alike(tmp_path, shell):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "t.py").write_text(TRIAL)
    command = "python t.py 3" + (" && true" if shell else "")
    detail, trial_dir, code = _run(tmp_path, command)
    assert detail.status == TrialJobStatus.FAILED and detail.exit_code == 3 and "err" in detail.message
    assert (trial_dir / "stdout").read_text() == f"{code} t1 {trial_dir} ['3']\n" == (trial_dir / "trial.log").read_text()
    assert (trial_dir / "stderr").read_text() == "err\n"
    assert (trial_dir / ".nni" / "state").read_text().split()[0] == "3"
    assert "cd " in (trial_dir / "run.sh").read_text() and "python t.py 3" in (trial_dir / "run.sh").read_text()


def test_a_signal_death_is_128_plus_n_and_missing_commands_are_bash_errors(tmp_path):
    detail, trial_dir, _ = _run(tmp_path, "python -c 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)'")
    assert detail.status == TrialJobStatus.FAILED and detail.exit_code == 137
    assert (trial_dir / ".nni" / "state").read_text().split()[0] == "137"
    detail, trial_dir, _ = _run(tmp_path / "b", "no-such-command-xyz --flag")
    assert detail.status == TrialJobStatus.FAILED and detail.exit_code == 127 and "not found" in detail.message


def test_cancel_stops_the_whole_group_of_a_direct_trial(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "t.py").write_text(
        "import os, subprocess, time\nc = subprocess.Popen(['sleep', '60'])\n"
        "open('pids', 'w').write(f'{os.getpid()} {c.pid}')\ntime.sleep(60)\n")
    detail, _, code = _run(tmp_path, "python t.py", cancel_after=1.5)
    assert detail.status == TrialJobStatus.USER_CANCELED
    trial_pid, child_pid = map(int, (code / "pids").read_text().split())
    assert trial_pid == detail.pid
    deadline = time.monotonic() + 5
    while (process_running(trial_pid) or process_running(child_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_running(child_pid)


def test_the_guardian_stops_only_its_own_services_trials(tmp_path):
    """Two services sharing one trials folder (runners of a cloud platform do): the lifeline of
    one breaking stops its trial, not the other's."""
    trials = tmp_path / "trials"
    procs, pipes = [], []
    for i, token in enumerate(("tok-a", "tok-b")):
        (trials / f"t{i}" / ".nni").mkdir(parents=True)
        env = dict(os.environ, NNI_SYS_DIR=str(trials / f"t{i}"), NNI_LOCAL_GUARDIAN=token)
        procs.append(subprocess.Popen(["sleep", "60"], env=env, start_new_session=True))
        r, w = os.pipe()
        guardian = subprocess.Popen([sys.executable, "-I", "-S", GUARDIAN_PATH, str(r), token, "0.5"], pass_fds=(r,),
                                    start_new_session=True)
        os.close(r)
        pipes.append((w, guardian))
    try:
        os.close(pipes[0][0])  # service a "dies"
        pipes[0][1].wait(timeout=10)
        assert procs[0].wait(timeout=5) == -signal.SIGTERM
        assert (trials / "t0" / ".nni" / "manager_died").read_text().strip().isdigit()
        assert procs[1].poll() is None and not (trials / "t1" / ".nni" / "manager_died").exists()
        os.write(pipes[1][0], b"q")  # service b stops cleanly: its guardian leaves, the trial stays
        os.close(pipes[1][0])
        assert pipes[1][1].wait(timeout=10) == 0
        time.sleep(0.2)
        assert procs[1].poll() is None and not (trials / "t1" / ".nni" / "manager_died").exists()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
