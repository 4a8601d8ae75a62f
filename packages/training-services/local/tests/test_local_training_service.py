"""The local training service: contract suite, files, environment, metric latency, GPUs."""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest

from nni.runtime.training_service import (
    ExperimentContext,
    MetricEvent,
    RequestNeverSatisfiable,
    StateEvent,
    TrialJobStatus,
    TrialSpec,
)
from nni.runtime.trial_metrics import encode_metric_record
from nni.testing.training_service import TrainingServiceContract, collect_until_final
from nni.training_services.local import GpuScheduler, GpuInventory, LocalTrainingService, parse_gpu_indices
from nni.training_services.local.service import MetricsFileTailer, stderr_tail


class TestLocalContract(TrainingServiceContract):
    def make_service(self, context, config=None):
        return LocalTrainingService(config or {}, context, kill_grace=2)


def _ctx(tmp_path: Path, command: str, gpu: int | None = None) -> ExperimentContext:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    return ExperimentContext("exp12345", str(tmp_path / "exp"), command, str(code), trial_gpu_number=gpu)


def _param(params: dict) -> str:
    return json.dumps({"parameter_id": 0, "parameter_source": "algorithm", "parameters": params, "parameter_index": 0})


ENV_DUMP = (
    "import json, os, shutil, sys; "
    "json.dump({'env': dict(os.environ), 'cwd': os.getcwd(), 'python': shutil.which('python')}, "
    "open(os.path.join(os.environ['NNI_OUTPUT_DIR'], 'env.json'), 'w'))"
)


def test_trial_directory_env_and_files(tmp_path):
    ctx = _ctx(tmp_path, f"python -c \"{ENV_DUMP}\"; echo out-line; echo err-line >&2", gpu=0)

    async def go():
        ts = LocalTrainingService({}, ctx)
        await ts.start()
        await ts.submit(TrialSpec("abcde", 3, _param({"a": 1})))
        await collect_until_final(ts, {"abcde"})
        await ts.stop()
        return ts

    ts = asyncio.run(go())
    trial_dir = tmp_path / "exp" / "trials" / "abcde"
    assert ts.get_trial_job("abcde").status == TrialJobStatus.SUCCEEDED
    assert json.loads((trial_dir / "parameter.cfg").read_text())["parameters"] == {"a": 1}
    dump = json.loads((trial_dir / "env.json").read_text())
    env = dump["env"]
    assert env["NNI_PLATFORM"] == "local" and env["NNI_EXP_ID"] == "exp12345"
    assert env["NNI_TRIAL_JOB_ID"] == "abcde" and env["NNI_TRIAL_SEQ_ID"] == "3"
    assert env["NNI_SYS_DIR"] == str(trial_dir) == env["NNI_OUTPUT_DIR"]
    assert env["MULTI_PHASE"] == "false"
    assert env["CUDA_VISIBLE_DEVICES"] == ""  # trialGpuNumber 0: no GPU visible
    assert dump["cwd"] == ctx.trial_code_directory
    assert Path(dump["python"]).parent == Path(sys.executable).parent  # the manager's Python first on PATH
    assert (trial_dir / "stdout").read_text().strip() == "out-line"
    assert (trial_dir / "trial.log").read_text().strip() == "out-line"
    assert (trial_dir / "stderr").read_text().strip() == "err-line"
    code, ms = (trial_dir / ".nni" / "state").read_text().split()
    assert code == "0" and abs(int(ms) / 1000 - time.time()) < 60
    assert (trial_dir / "run.sh").exists()


def test_gpu_number_none_leaves_cuda_visible_devices_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    ctx = _ctx(tmp_path, f"python -c \"{ENV_DUMP}\"")

    async def go():
        ts = LocalTrainingService({}, ctx)
        await ts.start()
        await ts.submit(TrialSpec("nogpu", 0, _param({})))
        await collect_until_final(ts, {"nogpu"})
        await ts.stop()

    asyncio.run(go())
    env = json.loads((tmp_path / "exp" / "trials" / "nogpu" / "env.json").read_text())["env"]
    assert env["CUDA_VISIBLE_DEVICES"] == "5"


def test_metric_reaches_manager_within_100ms(tmp_path):
    # The trial writes one record, sleeps, writes another; the event must arrive < 100 ms after each write.
    script = tmp_path / "code" / "t.py"
    ctx = _ctx(tmp_path, "python t.py")
    script.write_text(
        "import os, time\n"
        "from nni.runtime.trial_metrics import encode_metric_record\n"
        "p = os.path.join(os.environ['NNI_OUTPUT_DIR'], '.nni', 'metrics')\n"
        "for i in range(5):\n"
        "    rec = {'parameter_id': 0, 'trial_job_id': 'x', 'type': 'PERIODICAL', 'sequence': i, 'value': repr(time.time())}\n"
        "    with open(p, 'ab') as f: f.write(encode_metric_record(rec))\n"
        "    time.sleep(0.2)\n"
    )

    async def go():
        ts = LocalTrainingService({}, ctx)
        await ts.start()
        await ts.submit(TrialSpec("lat01", 0, _param({})))
        delays = []
        async for ev in ts.events():
            if isinstance(ev, MetricEvent):
                delays.append(time.time() - float(ev.record["value"]))
            if isinstance(ev, StateEvent) and ev.status.is_final:
                break
        await ts.stop()
        return delays

    delays = asyncio.run(go())
    assert len(delays) == 5
    assert max(delays) < 0.1, delays


def test_kill_escalates_to_sigkill(tmp_path):
    # A trial that ignores SIGTERM is killed after the grace period.
    ctx = _ctx(tmp_path, "python -c \"import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)\"")

    async def go():
        ts = LocalTrainingService({}, ctx, kill_grace=0.3)
        await ts.start()
        await ts.submit(TrialSpec("stubb", 0, _param({})))
        async for ev in ts.events():
            if isinstance(ev, StateEvent) and ev.status == TrialJobStatus.RUNNING:
                break
        await asyncio.sleep(0.2)  # let python install its handler
        t0 = time.monotonic()
        await ts.cancel("stubb")
        await collect_until_final(ts, {"stubb"}, 10)
        elapsed = time.monotonic() - t0
        await ts.stop()
        return ts, elapsed

    ts, elapsed = asyncio.run(go())
    assert ts.get_trial_job("stubb").status == TrialJobStatus.USER_CANCELED
    assert elapsed < 5


def test_max_trial_duration(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    ctx = ExperimentContext("e", str(tmp_path / "exp"), "sleep 30", str(code), max_trial_duration=0.3)

    async def go():
        ts = LocalTrainingService({}, ctx, kill_grace=1)
        await ts.start()
        await ts.submit(TrialSpec("slowx", 0, _param({})))
        events = await collect_until_final(ts, {"slowx"}, 10)
        await ts.stop()
        return events

    final = [e for e in asyncio.run(go()) if isinstance(e, StateEvent)][-1]
    assert final.status == TrialJobStatus.SYS_CANCELED
    assert "maxTrialDuration" in final.message


# ----- GPUs -----

def _inventory(tmp_path, busy=(0, 0)) -> str:
    path = tmp_path / "gpus.json"
    path.write_text(json.dumps({"gpuCount": len(busy), "gpuInfos": [{"index": i, "activeProcessNum": b} for i, b in enumerate(busy)]}))
    return str(path)


def test_parse_gpu_indices():
    assert parse_gpu_indices("0,1, 3") == [0, 1, 3]
    assert parse_gpu_indices(2) == [2]
    assert parse_gpu_indices([1, 0]) == [1, 0]
    assert parse_gpu_indices(None) is None
    with pytest.raises(ValueError, match="gpuIndices"):
        parse_gpu_indices("a,b")


def test_gpu_scheduler_placement(tmp_path):
    sched = GpuScheduler(GpuInventory(_inventory(tmp_path)), max_trial_number_per_gpu=2)
    got = [sched.allocate(f"t{i}", 1)[0] for i in range(4)]
    assert sorted(g[0] for g in got) == [0, 0, 1, 1]  # spread, two per GPU
    none, why = sched.allocate("t4", 1)
    assert none is None and "GPU 0 runs 2/2" in why and "GPU 1 runs 2/2" in why
    sched.release("t0")
    assert sched.allocate("t5", 1)[0] == [got[0][0]]
    assert sched.allocate("t6", 2)[0] is None  # only one GPU has room


def test_gpu_scheduler_active_gpus(tmp_path):
    inv = GpuInventory(_inventory(tmp_path, busy=(1, 0)))
    assert GpuScheduler(inv, use_active_gpu=False).allocate("a", 1)[0] == [1]
    sched = GpuScheduler(inv, use_active_gpu=False)
    sched.allocate("a", 1)
    none, why = sched.allocate("b", 1)
    assert none is None and "used by another process" in why
    assert GpuScheduler(inv, use_active_gpu=True).allocate("c", 2)[0] == [0, 1]


def test_gpu_indices_restrict(tmp_path):
    sched = GpuScheduler(GpuInventory(_inventory(tmp_path, busy=(0, 0, 0))), gpu_indices=[2])
    assert sched.allocate("a", 1)[0] == [2]
    assert "only 1 GPU(s) exist among gpuIndices [2]" in sched.check(2)


def test_impossible_gpu_request_fails_fast(tmp_path):
    ctx = _ctx(tmp_path, "true", gpu=3)
    ts = LocalTrainingService({}, ctx, gpu_inventory=_inventory(tmp_path))
    with pytest.raises(RequestNeverSatisfiable, match="trialGpuNumber: each trial asks for 3 GPU"):
        ts.check_request(3)


def test_no_gpu_at_all_fails_fast(tmp_path):
    ts = LocalTrainingService({}, _ctx(tmp_path, "true", gpu=1), gpu_inventory=[])
    with pytest.raises(RequestNeverSatisfiable, match="only 0 GPU"):
        ts.check_request(1)


def test_gpu_trials_wait_with_reason_and_get_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_GPU_INVENTORY", _inventory(tmp_path))
    ctx = _ctx(tmp_path, "python -c \"import os, time; open(os.path.join(os.environ['NNI_OUTPUT_DIR'], 'cuda'), 'w').write(os.environ['CUDA_VISIBLE_DEVICES']); time.sleep(0.5)\"", gpu=1)

    async def go():
        ts = LocalTrainingService({"maxTrialNumberPerGpu": 2, "useActiveGpu": False}, ctx)
        await ts.start()
        for i in range(5):
            await ts.submit(TrialSpec(f"gpu{i:02d}", i, _param({})))
        waiting = ts.get_trial_job("gpu04")
        assert waiting.status == TrialJobStatus.WAITING and "waiting for 1 free GPU" in waiting.message
        running = [d for d in ts.list_trial_jobs() if d.status == TrialJobStatus.RUNNING]
        await collect_until_final(ts, {f"gpu{i:02d}" for i in range(5)}, 20)
        await ts.stop()
        return ts, len(running)

    ts, running_at_once = asyncio.run(go())
    assert running_at_once <= 4
    seen = [(tmp_path / "exp" / "trials" / f"gpu{i:02d}" / "cuda").read_text() for i in range(5)]
    assert set(seen) <= {"0", "1"}
    assert all(d.status == TrialJobStatus.SUCCEEDED for d in ts.list_trial_jobs())


# ----- helpers -----

def test_metrics_tailer_handles_partial_records(tmp_path):
    path = tmp_path / "metrics"
    tail = MetricsFileTailer(path)
    assert tail.read_new() == []
    data = encode_metric_record({"type": "FINAL", "value": "1"})
    path.write_bytes(data[:7])
    assert tail.read_new() == []
    with open(path, "ab") as f:
        f.write(data[7:] + data)
    assert len(tail.read_new()) == 2
    assert tail.read_new() == []


def test_stderr_tail(tmp_path):
    p = tmp_path / "stderr"
    p.write_text("x" * 5000 + "\nlast line\n")
    assert stderr_tail(p) == "last line"
    assert stderr_tail(tmp_path / "missing") == ""


def test_nvidia_smi_inventory(tmp_path, monkeypatch):
    # a stand-in nvidia-smi: two GPUs, one running a foreign process
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        "case \"$1\" in\n"
        "  --query-gpu=*) printf '0, GPU-aaa\\n1, GPU-bbb\\n' ;;\n"
        "  --query-compute-apps=*) printf 'GPU-bbb, 4242\\n' ;;\n"
        "esac\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.delenv("NNI_GPU_INVENTORY", raising=False)
    from nni.training_services.local.gpu import GpuInfo, query_nvidia_smi

    assert query_nvidia_smi() == [GpuInfo(0, 0), GpuInfo(1, 1)]
    sched = GpuScheduler(GpuInventory(), use_active_gpu=False)
    assert sched.allocate("a", 1)[0] == [0]
    assert sched.check(3) is not None and "nvidia-smi" in sched.check(3)
