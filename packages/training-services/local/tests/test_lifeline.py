"""Trials do not outlive their manager: kill -9 of the process hosting the local training
service stops its trials within seconds and leaves ``.nni/manager_died``; a normal end leaves
no watcher behind and no marker."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from nni.testing.processes import process_running
from pathlib import Path

HOST = textwrap.dedent(
    """
    import asyncio, json, sys
    from nni.runtime.training_service import ExperimentContext, TrialSpec
    from nni.training_services.local import LocalTrainingService

    async def main():
        exp, code, command = sys.argv[1:4]
        ts = LocalTrainingService({}, ExperimentContext("lifeline", exp, command, code))
        await ts.start()
        await ts.submit(TrialSpec("trial", 0, json.dumps({"parameters": {}})))
        print("submitted", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)

# The trial and a grandchild it starts (in its process group) write their pids, then sleep.
TRIAL = "python -c 'import os, subprocess, time; c = subprocess.Popen([\"sleep\", \"600\"]); open(\"pids\", \"w\").write(f\"{os.getpid()} {c.pid}\"); time.sleep(600)'"




def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_kill_9_of_the_manager_stops_its_trials(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    exp = tmp_path / "exp"
    host = subprocess.Popen([sys.executable, "-c", HOST, str(exp), str(code), TRIAL], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert host.stdout.readline().strip() == "submitted"
        pids = code / "pids"
        trial_pid, child_pid = map(int, _wait(lambda: pids.exists() and pids.read_text().split(), 30, "the trial's pids"))
        assert process_running(trial_pid) and process_running(child_pid)
        time.sleep(0.3)
        assert process_running(trial_pid), "the trial must keep running while its manager lives"
        killed = time.monotonic()
        os.kill(host.pid, signal.SIGKILL)
        host.wait()
        _wait(lambda: not process_running(trial_pid) and not process_running(child_pid), 10, "the trial and its child to stop")
        assert time.monotonic() - killed < 5
        marker = exp / "trials" / "trial" / ".nni" / "manager_died"
        died_ms = int(marker.read_text().split()[0])
        assert abs(died_ms / 1000 - time.time()) < 30
        assert not (exp / "trials" / "trial" / ".nni" / "state").exists()  # no exit code: it was stopped
    finally:
        if host.poll() is None:
            os.killpg(host.pid, signal.SIGKILL)


def test_normal_end_leaves_no_watcher_and_no_marker(tmp_path):
    import asyncio

    from nni.runtime.training_service import ExperimentContext, TrialJobStatus, TrialSpec
    from nni.testing.training_service import collect_until_final
    from nni.training_services.local import LocalTrainingService

    code = tmp_path / "code"
    code.mkdir()
    ctx = ExperimentContext("lifeline", str(tmp_path / "exp"), "echo $$ > pgid; (exit 3)", str(code))

    async def go():
        ts = LocalTrainingService({}, ctx)
        await ts.start()
        await ts.submit(TrialSpec("t1", 0, '{"parameters": {}}'))
        await collect_until_final(ts, {"t1"})
        status = ts.get_trial_job("t1").status
        await ts.stop()
        return status

    assert asyncio.run(go()) == TrialJobStatus.FAILED
    trial_dir = tmp_path / "exp" / "trials" / "t1"
    assert (trial_dir / ".nni" / "state").read_text().split()[0] == "3"

    # a command that calls `exit` itself ends the wrapper early: the watcher still goes with it
    ctx2 = ExperimentContext("lifeline", str(tmp_path / "exp2"), "echo $$ > pgid2; exit 4", str(code))

    async def go2():
        ts = LocalTrainingService({}, ctx2)
        await ts.start()
        await ts.submit(TrialSpec("t2", 0, '{"parameters": {}}'))
        await collect_until_final(ts, {"t2"})
        await ts.stop()

    asyncio.run(go2())
    pgids = {int((code / "pgid").read_text()), int((code / "pgid2").read_text())}

    def group_gone() -> bool:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) in pgids and fields[0] not in ("Z", "X"):
                return False
        return True

    _wait(group_gone, 5, "the watcher to exit with its trial")
    time.sleep(0.5)  # the service closed its lifeline at stop(): a stale watcher would fire now
    assert not (trial_dir / ".nni" / "manager_died").exists()
    assert not (tmp_path / "exp2" / "trials" / "t2" / ".nni" / "manager_died").exists()
