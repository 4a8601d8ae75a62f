"""The trial runner (``python -m nni.training_services.local.runner``) as a real subprocess driven
by :class:`nni.runtime.runner_client.RunnerClient` over pipes: core's training-service contract
through it, the trial environment, GPUs, the lifeline (stdin EOF, kill -9), ``--single``, bad
lines and a protocol version mismatch."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

from nni.runtime import runner_protocol as rp
from nni.runtime.runner_client import RunnerClient, RunnerError, spawn_local_runner
from nni.runtime.training_service import (
    ExperimentContext,
    MetricEvent,
    RequestNeverSatisfiable,
    StateEvent,
    TrainingService,
    TrialJobStatus,
    TrialSpec,
)
from nni.testing.training_service import TrainingServiceContract, collect_until_final
from nni.testing.processes import process_running


class RunnerBackedService(TrainingService):
    """A TrainingService whose trials run in a runner subprocess (what a platform builds per
    worker), so the whole contract suite exercises runner + protocol + client."""

    platform = "remote"
    is_multi_phase_job_supported = True

    def __init__(self, config: dict, context: ExperimentContext, args=()) -> None:
        super().__init__(config, context)
        self.args = args
        self.client: Optional[RunnerClient] = None
        self._pump: Optional[asyncio.Task] = None
        self._early: dict[str, list[StateEvent]] = {}

    async def start(self) -> None:
        self.client = await spawn_local_runner(args=self.args)
        await self.client.hello(self.context, self.config, platform="remote", options={"kill_grace": 2})
        self._queue()
        self._pump = asyncio.get_running_loop().create_task(self._forward())

    async def _forward(self) -> None:
        async for ev in self.client.events():
            if isinstance(ev, StateEvent):
                if ev.trial_id in self._trials:
                    self._mirror(ev)
                else:  # arrived before submit() returned
                    self._early.setdefault(ev.trial_id, []).append(ev)
            self._emit(ev)
        self._end_events()

    def _mirror(self, ev: StateEvent) -> None:
        d = self._trials[ev.trial_id]
        d.status, d.message, d.exit_code = ev.status, ev.message or d.message, ev.exit_code
        if ev.status == TrialJobStatus.RUNNING:
            d.start_time = ev.time
        if ev.status.is_final:
            d.end_time, d.start_time = ev.time, d.start_time or ev.time
            d.is_early_stopped = ev.status == TrialJobStatus.EARLY_STOPPED

    async def submit(self, spec):
        detail = await self.client.submit(spec)
        self._trials[spec.trial_id] = detail
        for ev in self._early.pop(spec.trial_id, []):
            self._mirror(ev)
        return detail

    async def cancel(self, trial_id, early_stopped=False, status=None):
        await self.client.cancel(trial_id, early_stopped, status)

    async def send_parameter(self, trial_id, parameter):
        await self.client.send_parameter(trial_id, parameter)

    async def stop(self):
        await self.client.stop()
        await self._pump
        assert self.client.errors == [], self.client.errors  # nothing but protocol came on stdout


class TestRunnerContract(TrainingServiceContract):
    def make_service(self, context, config=None):
        return RunnerBackedService(config or {}, context)


# ----- helpers -----


def _ctx(tmp_path: Path, command: str, gpu: Optional[int] = None) -> ExperimentContext:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    return ExperimentContext("exp12345", str(tmp_path / "exp"), command, str(code), trial_gpu_number=gpu)


def _param(params: dict) -> str:
    return json.dumps({"parameter_id": 0, "parameter_source": "algorithm", "parameters": params, "parameter_index": 0})






def _group_alive(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


async def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


ENV_TRIAL = (
    "import json, os, nni; nni.get_next_parameter(); "
    "print('trial noise on stdout'); "
    "[nni.report_intermediate_result(i) for i in range(3)]; "
    "nni.report_final_result({'env': {k: v for k, v in os.environ.items() if k.startswith(('NNI_', 'CUDA'))}, 'cwd': os.getcwd()})"
)

# A trial (and its child, in its process group) that records its group id, its pid and its
# child's pid, then sleeps.
SLEEPER = (
    "python -c 'import os, subprocess, time; c = subprocess.Popen([\"sleep\", \"600\"]); "
    "open(os.environ[\"NNI_TRIAL_JOB_ID\"] + \".pids\", \"w\").write(f\"{os.getpgid(0)} {os.getpid()} {c.pid}\"); time.sleep(600)'"
)


async def _trial_pids(ctx: ExperimentContext, trial_id: str) -> list[int]:
    path = Path(ctx.trial_code_directory) / f"{trial_id}.pids"
    text = await _wait_for(lambda: path.exists() and len(path.read_text().split()) == 3 and path.read_text(), 20, "the trial")
    return [int(v) for v in text.split()]


# ----- tests -----


def test_ready_environment_and_metrics_in_order(tmp_path):
    ctx = _ctx(tmp_path, f'python -c "{ENV_TRIAL}"', gpu=0)

    async def go():
        client = await spawn_local_runner()
        info = await client.hello(ctx, platform="remote")
        detail = await client.submit(TrialSpec("abcde", 3, _param({"a": 1}), env={"EXTRA": "x"}))
        events = await collect_until_final(client, {"abcde"})
        await client.stop()
        return client, info, detail, events

    client, info, detail, events = asyncio.run(go())
    assert info.protocol_version == rp.PROTOCOL_VERSION and info.nni_version
    assert info.python == ".".join(map(str, sys.version_info[:3])) and info.hostname and info.pid == client.process.pid
    assert info.single is False and isinstance(info.gpus, list) and info.capacity is None  # trialGpuNumber 0
    trial_dir = tmp_path / "exp" / "trials" / "abcde"
    assert detail.id == "abcde" and detail.sequence_id == 3 and detail.working_directory == str(trial_dir)
    states = [e.status for e in events if isinstance(e, StateEvent)]
    assert states == [TrialJobStatus.RUNNING, TrialJobStatus.SUCCEEDED]
    metrics = [e.record for e in events if isinstance(e, MetricEvent)]
    assert [(m["type"], m["sequence"]) for m in metrics] == [("PERIODICAL", 0), ("PERIODICAL", 1), ("PERIODICAL", 2), ("FINAL", 0)]
    final = json.loads(metrics[-1]["value"])
    env = final["env"]
    assert env["NNI_PLATFORM"] == "remote" and env["NNI_EXP_ID"] == "exp12345"
    assert env["NNI_TRIAL_JOB_ID"] == "abcde" and env["NNI_TRIAL_SEQ_ID"] == "3"
    assert env["NNI_SYS_DIR"] == env["NNI_OUTPUT_DIR"] == str(trial_dir)
    assert env["CUDA_VISIBLE_DEVICES"] == "" and final["cwd"] == ctx.trial_code_directory
    assert (trial_dir / "stdout").read_text().strip() == "trial noise on stdout"
    assert client.errors == []  # the trial's print did not reach the protocol stream
    assert client.process.returncode == 0 and "asked the runner to stop" in client.stopped["reason"]


def test_gpu_scheduling_with_a_fake_inventory(tmp_path):
    inventory = tmp_path / "gpus.json"
    inventory.write_text(json.dumps({"gpuCount": 3, "gpuInfos": [
        {"index": 0, "activeProcessNum": 0}, {"index": 1, "activeProcessNum": 0}, {"index": 2, "activeProcessNum": 1}]}))
    ctx = _ctx(tmp_path, "echo $CUDA_VISIBLE_DEVICES > $NNI_TRIAL_JOB_ID.gpus; sleep 0.5", gpu=1)

    async def go():
        client = await spawn_local_runner(env={**os.environ, "NNI_GPU_INVENTORY": str(inventory)})
        info = await client.hello(ctx, {"useActiveGpu": False, "maxTrialNumberPerGpu": 1})
        with pytest.raises(RequestNeverSatisfiable, match="trialGpuNumber: each trial asks for 4 GPU"):
            await client.submit(TrialSpec("huge1", 0, _param({}), gpu_number=4))
        for i in range(3):
            await client.submit(TrialSpec(f"gpu0{i}", i, _param({})))
        events = await collect_until_final(client, {"gpu00", "gpu01", "gpu02"})
        await client.stop()
        return info, events

    info, events = asyncio.run(go())
    assert info.gpus == [{"index": 0, "activeProcessNum": 0}, {"index": 1, "activeProcessNum": 0}, {"index": 2, "activeProcessNum": 1}]
    assert str(inventory) in info.gpu_source
    assert info.capacity == 3  # the local service counts usable GPUs (gpuIndices), not who else uses them now
    waiting = [e for e in events if isinstance(e, StateEvent) and e.status == TrialJobStatus.WAITING]
    assert waiting and waiting[0].trial_id == "gpu02"
    assert "GPU 2 is used by another process (useActiveGpu is false)" in waiting[0].message
    gpus = {t: (tmp_path / "code" / f"{t}.gpus").read_text().strip() for t in ("gpu00", "gpu01", "gpu02")}
    assert {gpus["gpu00"], gpus["gpu01"]} == {"0", "1"} and gpus["gpu02"] in {"0", "1"}  # never the busy GPU 2
    starts = [e.trial_id for e in events if isinstance(e, StateEvent) and e.status == TrialJobStatus.RUNNING]
    assert starts[:2] == ["gpu00", "gpu01"] and starts[2] == "gpu02"  # the third ran once a GPU was free


def test_closing_stdin_stops_the_trials_and_the_runner(tmp_path):
    ctx = _ctx(tmp_path, SLEEPER)

    async def go():
        client = await spawn_local_runner()
        await client.hello(ctx, options={"kill_grace": 2})
        await client.submit(TrialSpec("sleep", 0, _param({})))
        pgid, _, _ = await _trial_pids(ctx, "sleep")
        assert _group_alive(pgid)
        client.process.stdin.close()  # the manager (or the SSH channel) goes away
        t0 = time.monotonic()
        events = await collect_until_final(client, {"sleep"}, 10)
        reason = await asyncio.wait_for(client.closed, 10)
        rc = await asyncio.wait_for(client.process.wait(), 10)
        await client.aclose()
        await _wait_for(lambda: not _group_alive(pgid), 5, "the trial's process group to end")
        return events, reason, rc, time.monotonic() - t0

    events, reason, rc, took = asyncio.run(go())
    final = [e for e in events if isinstance(e, StateEvent)][-1]
    assert final.status == TrialJobStatus.SYS_CANCELED
    assert "stdin closed" in reason and rc == 0
    assert took < 8


def test_sigterm_to_the_runner_cancels_its_trials_and_says_why(tmp_path):
    ctx = _ctx(tmp_path, SLEEPER)

    async def go():
        client = await spawn_local_runner()
        await client.hello(ctx, options={"kill_grace": 2})
        await client.submit(TrialSpec("term1", 0, _param({})))
        _, trial_pid, _ = await _trial_pids(ctx, "term1")
        client.process.send_signal(signal.SIGTERM)
        events = await collect_until_final(client, {"term1"}, 10)
        reason = await asyncio.wait_for(client.closed, 10)
        await client.aclose()
        return events, reason, client.process.returncode, trial_pid

    events, reason, rc, trial_pid = asyncio.run(go())
    assert [e.status for e in events if isinstance(e, StateEvent)][-1] == TrialJobStatus.SYS_CANCELED
    assert reason == "the runner stopped: the runner received SIGTERM" and rc == 0
    assert not process_running(trial_pid)


def test_kill_9_of_the_runner_stops_its_trials(tmp_path):
    ctx = _ctx(tmp_path, SLEEPER)

    async def go():
        client = await spawn_local_runner()
        await client.hello(ctx)
        await client.submit(TrialSpec("kill9", 0, _param({})))
        _, trial_pid, child_pid = await _trial_pids(ctx, "kill9")
        assert process_running(trial_pid) and process_running(child_pid)
        os.kill(client.process.pid, signal.SIGKILL)
        reason = await asyncio.wait_for(client.closed, 5)
        t0 = time.monotonic()
        # the lifeline: SIGTERM to the trial's group at once (its watcher sends SIGKILL 3 s later)
        await _wait_for(lambda: not process_running(trial_pid) and not process_running(child_pid), 10, "the trial and its child to end")
        with pytest.raises(ConnectionError):
            await client.ping()
        await client.aclose()
        return reason, time.monotonic() - t0

    reason, took = asyncio.run(go())
    assert "ended without 'stopped'" in reason
    assert took < 2
    assert (tmp_path / "exp" / "trials" / "kill9" / ".nni" / "manager_died").exists()


def test_single_mode_runs_one_trial_then_exits(tmp_path):
    ctx = _ctx(tmp_path, "python -c 'import nni; nni.report_final_result(7)'")

    async def go():
        client = await spawn_local_runner(args=["--single"])
        info = await client.hello(ctx)
        await client.submit(TrialSpec("only1", 0, _param({})))
        with pytest.raises(RunnerError, match="already runs trial only1; start one runner per trial"):
            await client.submit(TrialSpec("two22", 1, _param({})))
        events = [ev async for ev in client.events()]  # ends by itself: the runner stops after the trial
        rc = await asyncio.wait_for(client.process.wait(), 10)
        await client.aclose()
        return info, events, client, rc

    info, events, client, rc = asyncio.run(go())
    assert info.single is True
    assert [e.status for e in events if isinstance(e, StateEvent)] == [TrialJobStatus.RUNNING, TrialJobStatus.SUCCEEDED]
    assert [json.loads(e.record["value"]) for e in events if isinstance(e, MetricEvent)] == [7]
    assert rc == 0 and "--single: trial only1 ended (SUCCEEDED)" in client.stopped["reason"]
    assert not (tmp_path / "exp" / "trials" / "two22").exists()


def test_bad_lines_get_an_error_and_the_runner_keeps_going(tmp_path):
    ctx = _ctx(tmp_path, "true")

    async def go():
        client = await spawn_local_runner()
        client.process.stdin.write(b"this is not json\n")
        client.process.stdin.write(b'{"type": "reboot", "id": 2}\n')
        await client.ping()  # answered after the errors: they came first
        with pytest.raises(rp.RunnerProtocolError, match="^runner protocol: submit before hello; send hello first$"):
            await client.submit(TrialSpec("early", 0, _param({})))
        await client.hello(ctx)
        with pytest.raises(ValueError, match="submit: spec: not a trial spec"):
            await client._request("submit", spec={"nothing": 1})
        assert await client.ping() < 5  # still serving
        await client.stop()
        return client

    client = asyncio.run(go())
    assert client.errors[0].startswith("line 1: runner protocol: the line is not JSON")
    assert client.errors[1].startswith("line 2: runner protocol: type: unknown message type 'reboot'; allowed: cancel, hello")
    assert len(client.errors) == 2 and all("\n" not in e for e in client.errors)


def test_protocol_version_mismatch_is_one_line_and_the_runner_exits(tmp_path):
    ctx = _ctx(tmp_path, "true")

    async def go():
        client = await spawn_local_runner()
        proc = client.process
        proc.stdin.write(rp.encode("hello", id=1, protocol_version=rp.PROTOCOL_VERSION + 1, context=rp.context_to_wire(ctx)))
        lines = [rp.decode(line) async for line in proc.stdout]
        rc = await proc.wait()
        await client.aclose()
        return lines, rc

    lines, rc = asyncio.run(go())
    assert lines[0]["type"] == "error" and lines[0]["reply_to"] == 1 and lines[0]["error_type"] == "RunnerProtocolError"
    text = lines[0]["error"]
    assert text.startswith(f"protocol_version: the manager speaks runner protocol {rp.PROTOCOL_VERSION + 1} but this side")
    assert "install the same nni-core" in text and "\n" not in text
    assert lines[-1]["type"] == "stopped" and rc == 2
