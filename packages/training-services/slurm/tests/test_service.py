"""SlurmTrainingService against a real single-node SLURM cluster (in-process, no manager)."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nni.runtime.runner_listener import ListenError
from nni.runtime.training_service import ExperimentContext, MetricEvent, StateEvent, TrialJobStatus, TrialSpec
from nni.training_services.slurm import SlurmTrainingService
from nni.training_services.slurm.commands import JobInfo, SlurmError
from nni.training_services.slurm.service import _Runner

TRIAL = """\
import os, time, nni
p = nni.get_next_parameter()
nni.report_intermediate_result(p["x"])
time.sleep(p.get("sleep", 0.2))
nni.report_final_result(p["x"] * 2)
print("job", os.environ.get("SLURM_JOB_ID"), "platform", os.environ.get("NNI_PLATFORM"))
"""


def make_context(tmp_path, experiment_id="slurm001") -> ExperimentContext:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "trial.py").write_text(TRIAL)
    return ExperimentContext(experiment_id, str(tmp_path / "exp"), f"{sys.executable} trial.py", str(code))


def spec(i: int, **params) -> TrialSpec:
    record = {"parameter_id": i, "parameter_source": "algorithm", "parameters": {"x": i, **params}, "parameter_index": 0}
    return TrialSpec(f"tr{i:03d}", i, json.dumps(record))


async def collect(ts, n_final: int, timeout: float = 60.0, on_event=None) -> list:
    """Events until ``n_final`` trials reached a final state."""
    events, finals = [], set()

    async def run():
        async for e in ts.events():
            events.append(e)
            if on_event is not None:
                await on_event(e)
            if isinstance(e, StateEvent) and e.status.is_final:
                finals.add(e.trial_id)
                if len(finals) >= n_final:
                    return

    await asyncio.wait_for(run(), timeout)
    return events


def finals_of(events) -> dict:
    return {e.trial_id: e for e in events if isinstance(e, StateEvent) and e.status.is_final}


def config(**fields) -> dict:
    return {"platform": "slurm", "cpusPerTrial": 1, "sbatchArgs": [], "reuseMode": True, **fields}


@pytest.mark.slow
def test_reuse_mode_runs_trials_one_after_another_in_few_jobs(tmp_path, slurm):
    async def main():
        ts = SlurmTrainingService(config(maxRunners=2, memoryPerTrial=100), make_context(tmp_path))
        await ts.start()
        for i in range(5):
            await ts.submit(spec(i))
        events = await collect(ts, 5)
        sbatches = ts.commands.stats.calls.get("sbatch", 0)
        await ts.stop()
        return ts, events, sbatches

    ts, events, sbatches = asyncio.run(main())
    finals = finals_of(events)
    assert {e.status for e in finals.values()} == {TrialJobStatus.SUCCEEDED}, finals
    metrics = {(e.trial_id, e.record["type"], e.record["value"]) for e in events if isinstance(e, MetricEvent)}
    assert all((f"tr{i:03d}", "FINAL", str(i * 2)) in metrics for i in range(5)), metrics
    assert sbatches == 3  # the start-up check (--test-only) and two runner jobs (maxRunners)
    assert ts.capacity() == 2
    trial = Path(ts.get_trial_job("tr000").working_directory)
    assert trial == tmp_path / "exp" / "trials" / "tr000"
    assert "platform slurm" in (trial / "trial.log").read_text()
    outputs = list(trial.glob("slurm-*.out"))
    assert len(outputs) == 1 and "Serving experiment slurm001" in outputs[0].read_text()
    assert ts.get_trial_job("tr000").url.startswith("slurm://")
    assert slurm.active_jobs() == []  # stop left nothing behind


@pytest.mark.slow
def test_one_job_per_trial_without_reuse_and_no_token_in_sight(tmp_path, slurm):
    seen = {}

    async def main():
        ts = SlurmTrainingService(config(reuseMode=False, setupScript="echo setup-ran-here", pythonPath=str(Path(sys.executable).parent)),
                                  make_context(tmp_path))
        await ts.start()
        for i in range(2):
            await ts.submit(spec(i))

        async def look(e):
            if isinstance(e, StateEvent) and e.status == TrialJobStatus.RUNNING and "job" not in seen:
                runner = ts._owner[e.trial_id]
                seen["job"] = subprocess.run(["scontrol", "show", "job", runner.job_id], capture_output=True, text=True).stdout
                seen["token"] = ts._listener.runner_env(runner.id)["NNI_RUNNER_TOKEN"]
                seen["script"] = (tmp_path / "exp" / "slurm" / f"{runner.id}.sbatch").read_text()

        events = await collect(ts, 2, on_event=look)
        await ts.stop()
        return ts, events

    ts, events = asyncio.run(main())
    assert {e.status for e in finals_of(events).values()} == {TrialJobStatus.SUCCEEDED}
    assert ts.commands.stats.calls["sbatch"] == 3  # the check and one job per trial
    assert "--single" in seen["script"] and "echo setup-ran-here" in seen["script"]
    assert f"export PATH={Path(sys.executable).parent}:" in seen["script"] and "exec python3 -m" in seen["script"]
    assert seen["token"] not in seen["job"] and seen["token"] not in seen["script"]
    out = next((tmp_path / "exp" / "trials" / "tr001").glob("slurm-*.out")).read_text()
    assert "setup-ran-here" in out
    assert slurm.active_jobs() == []


@pytest.mark.slow
def test_scancel_requeues_the_trial_of_the_job(tmp_path, slurm):
    async def main():
        ts = SlurmTrainingService(config(), make_context(tmp_path))
        await ts.start()
        await ts.submit(spec(0, sleep=30))

        async def cancel_its_job(e):
            if isinstance(e, StateEvent) and e.status == TrialJobStatus.RUNNING:
                await asyncio.sleep(0.5)
                subprocess.run(["scancel", ts._owner[e.trial_id].job_id], check=True)

        events = await collect(ts, 1, on_event=cancel_its_job)
        await ts.stop()
        return events

    final = finals_of(asyncio.run(main()))["tr000"]
    assert final.status == TrialJobStatus.SYS_CANCELED and final.requeue, final
    assert "CANCELLED" in final.message and "SLURM job" in final.message, final.message
    assert slurm.active_jobs() == []


@pytest.mark.slow
def test_jobs_that_die_before_connecting_fail_a_trial_with_the_reason(tmp_path, slurm):
    async def main():
        ts = SlurmTrainingService(config(setupScript="echo 'no such module: cuda/99' >&2; exit 3"), make_context(tmp_path))
        await ts.start()
        await ts.submit(spec(0))
        events = await collect(ts, 1, timeout=90)
        await ts.stop()
        return events

    final = finals_of(asyncio.run(main()))["tr000"]
    assert final.status == TrialJobStatus.FAILED
    assert "before its trial runner connected" in final.message and "no such module: cuda/99" in final.message, final.message
    assert slurm.active_jobs() == []


def test_a_request_slurm_refuses_fails_at_start_in_one_line(tmp_path, slurm):
    async def main():
        ts = SlurmTrainingService(config(partition="nosuchpartition"), make_context(tmp_path))
        await ts.start()

    with pytest.raises(SlurmError) as info:
        asyncio.run(main())
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("trainingService (slurm): sbatch refused the runner job") and "partition" in msg.lower(), msg


def test_timeout_requeues_unless_the_trial_had_the_whole_job(tmp_path):
    async def main():
        ts = SlurmTrainingService(config(timeLimit=60), make_context(tmp_path))
        for i in range(2):
            await ts.submit(spec(i))  # not started: stays in the backlog
        events = []
        for i, trials_run in ((0, 1), (1, 2)):
            runner = _Runner(f"r{i}")
            runner.job_id, runner.trials_run, runner.trial = str(40 + i), trials_run, f"tr{i:03d}"
            ts._backlog.remove(runner.trial)
            ts._lose_trial(runner, runner.trial, JobInfo(runner.job_id, "TIMEOUT", "TimeLimit", "node3"), "SIGTERM")
        events = ts.get_nowait()
        return finals_of(events)

    finals = asyncio.run(main())
    alone, cut = finals["tr000"], finals["tr001"]
    assert alone.status == TrialJobStatus.FAILED and not alone.requeue and "timeLimit 60 s" in alone.message
    assert cut.status == TrialJobStatus.SYS_CANCELED and cut.requeue and "TIMEOUT" in cut.message and "node3" in cut.message


def test_platform_clean_cancels_jobs_of_stopped_experiments_only(tmp_path, slurm):
    def submit(name):
        return subprocess.run(["sbatch", "--parsable", f"--job-name={name}", f"--output={tmp_path}/%j.out", "--wrap", "sleep 60"],
                              capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()

    dead, alive, other = submit("nni-dead0001-r1"), submit("nni-live0001-r1"), submit("not-nni")
    lines = SlurmTrainingService.clean_platform({"platform": "slurm"}, {"live0001"})
    assert lines == ["slurm: cancelled 1 job(s) of stopped experiments"]
    assert asyncio.run(SlurmTrainingService.remove_experiment_files({"platform": "slurm"}, "live0001")) == []
    deadline = time.monotonic() + 15
    while {dead, alive} & set(slurm.active_jobs()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(slurm.active_jobs()) == {other}
    subprocess.run(["scancel", other], check=True)


def test_a_manager_address_that_is_not_here_fails_at_start_in_one_line(tmp_path, slurm):
    async def main():
        ts = SlurmTrainingService(config(nniManagerIp="192.0.2.7"), make_context(tmp_path))  # TEST-NET-1: never local
        await ts.start()

    with pytest.raises(ListenError) as info:  # core's error, naming the field as the SLURM config has it
        asyncio.run(main())
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("trainingService.nniManagerIp: cannot listen for trial runners on '192.0.2.7'"), msg


def test_sbatch_failures_keep_trials_waiting_with_the_reason_and_stop_is_prompt(tmp_path, monkeypatch):
    # Fake SLURM commands: sbatch accepts the --test-only check, then refuses every job.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text('#!/bin/sh\ncase "$*" in *--test-only*) exit 0;; esac\n'
                                    'echo "sbatch: error: Batch job submission failed: Slurm temporarily unable to accept job" >&2\nexit 1\n')
    for name in ("squeue", "scontrol", "scancel"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")

    async def main():
        ts = SlurmTrainingService(config(), make_context(tmp_path))
        await ts.start()
        await ts.submit(spec(0))
        await asyncio.sleep(0.5)
        detail = ts.get_trial_job("tr000")
        waiting = (detail.status, detail.message)
        t0 = time.monotonic()
        await ts.stop()
        return waiting, time.monotonic() - t0, ts.get_nowait()

    waiting, stop_s, events = asyncio.run(main())
    assert waiting == (TrialJobStatus.WAITING, "sbatch failed (sbatch refused the runner job: sbatch: error: Batch job submission "
                                               "failed: Slurm temporarily unable to accept job); retrying in 2 s"), waiting
    assert stop_s < 5
    assert finals_of(events)["tr000"].status == TrialJobStatus.SYS_CANCELED
