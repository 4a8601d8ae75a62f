"""The engine benchmarks (see the package docstring)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nni.platform_benchmark.common import TRIAL, timed_run
from nni.platform_benchmark.common import free_port as _free_port
from nni.platform_benchmark.common import quiet as _quiet
from nni.runtime.states import ExperimentStatus

NOOP_TRIAL = "import nni\nnni.get_next_parameter()\nnni.report_final_result(0)\n"
REFERENCE_TRIAL = (
    "import time, nni\n"
    "p = nni.get_next_parameter()\n"
    "for i in range(5):\n"
    "    time.sleep(0.1)\n"
    "    nni.report_intermediate_result(p['x'] * i)\n"
    "nni.report_final_result(p['x'])\n"
)


def _experiment(workdir: Path, trial: str, space: dict, concurrency: int, trials: int, tuner: str, class_args: dict | None = None):
    from nni.experiment import Experiment

    code = workdir / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "trial.py").write_text(trial)
    exp = Experiment("local")
    exp.config.trial_command = f"{Path(sys.executable).name} trial.py"
    exp.config.trial_code_directory = str(code)
    exp.config.trial_concurrency = concurrency
    exp.config.max_trial_number = trials
    exp.config.search_space = space
    exp.config.tuner.name = tuner
    if class_args:
        exp.config.tuner.class_args = class_args
    exp.config.experiment_working_directory = str(workdir / "experiments")
    return exp


def _cpu_seconds(pid: int):
    """User + system CPU seconds of a process (Linux ``/proc``), or ``None``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _trial_api_seconds(workdir: Path, repeat: int = 15) -> float:
    """Median extra wall time of a no-op trial process over ``python -c 'import nni'``:
    what ``nni.get_next_parameter()`` + ``nni.report_final_result()`` cost in the trial."""
    trial_dir = workdir / "api-trial"
    (trial_dir / ".nni").mkdir(parents=True, exist_ok=True)
    (trial_dir / "parameter.cfg").write_text('{"parameter_id": 0, "parameter_source": "algorithm", "parameters": {"x": 1}, "parameter_index": 0}\n')
    env = dict(os.environ, NNI_PLATFORM="local", NNI_EXP_ID="bench", NNI_TRIAL_JOB_ID="bench", NNI_TRIAL_SEQ_ID="0",
               NNI_SYS_DIR=str(trial_dir), NNI_OUTPUT_DIR=str(trial_dir))
    extra = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import nni"], check=True)
        bare = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", NOOP_TRIAL], check=True, env=env)
        extra.append(time.perf_counter() - t - bare)
    extra.sort()
    return extra[len(extra) // 2]


def bare_spawn_seconds(repeat: int = 20) -> float:
    """Median wall time of ``python -c 'import nni'``."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import nni"], check=True)
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def _trial_times(store_file: Path) -> list[tuple[int, int, int]]:
    from nni.server.store import ExperimentStore

    store = ExperimentStore(store_file, readonly=True)
    try:
        return [(r.submit_time, r.start_time, r.end_time) for r in store.trial_rows()]
    finally:
        store.close()


def bench_overhead(trials: int = 200) -> dict:
    """Per-trial time of no-op trials at concurrency 1, minus a bare ``import nni`` spawn."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ.setdefault("NNI_EXPERIMENTS_DIR", str(workdir / "experiments"))
        bare_before = bare_spawn_seconds()
        exp = _experiment(workdir, NOOP_TRIAL, {"x": {"_type": "uniform", "_value": [0, 1]}}, 1, trials, "Random")
        t0 = time.perf_counter()
        with _quiet():
            exp.start(_free_port())
            while exp.get_status() not in (ExperimentStatus.DONE, ExperimentStatus.ERROR):
                time.sleep(0.05)
            ok = exp.get_status() == "DONE"
            manager_cpu = _cpu_seconds(exp._process.pid)
            exp.stop()
        total = time.perf_counter() - t0
        bare_after = bare_spawn_seconds()
        bare = (bare_before + bare_after) / 2
        times = _trial_times(workdir / "experiments" / exp.id / "db" / "nni.sqlite")
        first_submit = min(t[0] for t in times)
        last_end = max(t[2] for t in times)
        per_trial = (last_end - first_submit) / 1000 / len(times)
        # the same orchestration around a trial that is not Python (`true`): the engine alone
        exp2 = _experiment(workdir / "shell", NOOP_TRIAL, {"x": {"_type": "uniform", "_value": [0, 1]}}, 1, min(trials, 100), "Random")
        exp2.config.trial_command = "true"
        with _quiet():
            exp2.run(_free_port())
        times2 = _trial_times(workdir / "shell" / "experiments" / exp2.id / "db" / "nni.sqlite")
        engine_per_trial = (max(t[2] for t in times2) - min(t[0] for t in times2)) / 1000 / len(times2)
        trial_api = _trial_api_seconds(workdir)
    return {
        "benchmark": "overhead",
        "trials": trials,
        "done": ok,
        "bare_spawn_ms": round(bare * 1000, 1),
        "per_trial_ms": round(per_trial * 1000, 1),
        "overhead_ms": round((per_trial - bare) * 1000, 1),
        "target_overhead_ms": 50,
        "engine_only_per_trial_ms": round(engine_per_trial * 1000, 1),
        "trial_api_ms": round(trial_api * 1000, 1),
        "experiment_wall_s": round(total, 2),
        "manager_cpu_ms_per_trial": None if manager_cpu is None else round(manager_cpu * 1000 / trials, 1),
        "load_average": round(os.getloadavg()[0], 2),
    }


def _cpu_children() -> float:
    """CPU seconds (user + system) of this process's reaped children and their reaped children."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _cpu_self() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def spawn_floor_seconds(n: int, concurrency: int) -> float:
    """Wall time of ``n`` bare ``python -c 'import nni'`` processes, ``concurrency`` at a time:
    the floor of any engine that starts one Python process per trial."""
    env = dict(os.environ)
    t0 = time.perf_counter()
    running: set[int] = set()
    started = 0
    while started < n or running:
        while started < n and len(running) < concurrency:
            # each in its own session, as the local training service starts trials: with the
            # kernel's autogroup scheduling a session is one scheduling group, so on a busy machine
            # 8 spawns sharing one session would get the CPU share of one trial
            running.add(os.posix_spawn(sys.executable, [sys.executable, "-c", "import nni"], env, setsid=True))
            started += 1
        for pid in list(running):  # wait for one of ours (never another child of this process)
            if os.waitpid(pid, os.WNOHANG)[0]:
                running.discard(pid)
        if len(running) >= concurrency or (started >= n and running):
            time.sleep(0.001)
    return time.perf_counter() - t0


#: What an instant trial imports from nni (see NOOP_TRIAL).
TRIAL_MODULES = ("nni", "nni.trial", "nni.runtime.platform", "nni.runtime.platform.local", "nni.runtime.env_vars",
                 "nni.runtime.trial_metrics", "nni.runtime.json_lite")


def stale_bytecode(modules: tuple = TRIAL_MODULES) -> list[str]:
    """The modules whose cached bytecode is missing or older than their source. With
    ``PYTHONDONTWRITEBYTECODE`` set, each trial process compiles them again (~5 ms for
    ``nni.trial``), which a pip-installed wheel never does: ``tools/setup.sh`` compiles them."""
    import importlib.util

    out = []
    for name in modules:
        spec = importlib.util.find_spec(name)
        source = getattr(spec, "origin", None) if spec else None
        if not source or not source.endswith(".py"):
            continue
        cached = importlib.util.cache_from_source(source)
        if not os.path.exists(cached) or os.path.getmtime(cached) < os.path.getmtime(source):
            out.append(name)
    return out


def trial_files_ms(folder: Path, n: int = 200) -> float:
    """Median CPU milliseconds of creating one trial's files in ``folder`` (two folders, four
    files, one link: what the local service and the trial write). A file system slows this down
    for a few minutes after many files were deleted (ext4 skips recently freed inodes), as
    after another benchmark run: the report gives it beside the ratio."""
    times = []
    for i in range(n):
        trial = folder / f"files{i:04d}"
        c0 = time.process_time()
        os.mkdir(trial)
        os.mkdir(trial / ".nni")
        for name in ("parameter.cfg", "run.sh", "stdout", ".nni/metrics"):
            (trial / name).write_bytes(b"x" * 200)
        os.link(trial / "stdout", trial / "trial.log")
        times.append((time.process_time() - c0) * 1000)
    times.sort()
    return times[len(times) // 2]


def bench_throughput(trials: int = 1000, concurrency: int = 8, workdir: str | None = None) -> dict:
    """``trials`` instant trials (read parameters, report a final result) at ``concurrency``
    through ``Experiment.run()``, against the spawn floor measured in the same run (half
    before, half after, so that a change of machine load hits both alike); the experiment in
    a new folder under ``workdir`` (default: the system's temporary folder)."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        workdir = Path(tmp)
        os.environ.setdefault("NNI_EXPERIMENTS_DIR", str(workdir / "experiments"))
        (workdir / "files").mkdir()
        files_ms = trial_files_ms(workdir / "files")
        c0 = _cpu_children()
        floor = spawn_floor_seconds(trials // 2, concurrency)
        floor_cpu = _cpu_children() - c0
        exp = _experiment(workdir, NOOP_TRIAL, {"x": {"_type": "uniform", "_value": [0, 1]}}, concurrency, trials, "Random")
        c0, s0 = _cpu_children(), _cpu_self()
        t0 = time.perf_counter()
        with _quiet():
            exp.start(_free_port())
            t_started = time.perf_counter()
            while exp.get_status() not in (ExperimentStatus.DONE, ExperimentStatus.ERROR):
                time.sleep(0.05)
            ok = exp.get_status() == "DONE"
            manager_cpu = _cpu_seconds(exp._process.pid)
            exp.stop()
        wall = time.perf_counter() - t0
        # everything the run cost: manager, dispatcher, every trial (bash and Python), and the
        # status polls of Experiment.run() in this process
        run_cpu = _cpu_children() - c0 + _cpu_self() - s0
        c0 = _cpu_children()
        floor += spawn_floor_seconds(trials - trials // 2, concurrency)
        floor_cpu += _cpu_children() - c0
        times = _trial_times(workdir / "experiments" / exp.id / "db" / "nni.sqlite")
        succeeded = len(times)
        trials_s = (max(t[2] for t in times) - min(t[0] for t in times)) / 1000
    return {
        "benchmark": "throughput",
        "trials": trials,
        "concurrency": concurrency,
        "done": ok and succeeded == trials,
        # first submit -> last end, from the store: the trials' part of the run
        "trials_wall_s": round(trials_s, 2),
        # Experiment.run() from start() to stopped, manager start-up and shutdown included
        "run_wall_s": round(wall, 2),
        "startup_s": round(t_started - t0, 2),
        "spawn_floor_s": round(floor, 2),
        "ratio": round(trials_s / floor, 3),
        "run_ratio": round(wall / floor, 3),
        "target_ratio": 1.3,
        "manager_cpu_ms_per_trial": None if manager_cpu is None else round(manager_cpu * 1000 / trials, 2),
        # CPU time, which a busy machine changes far less than wall time: the run (start-up and
        # shut-down included) per trial against one bare spawn of the floor
        "cpu_ms_per_trial": round(run_cpu * 1000 / trials, 2),
        "floor_cpu_ms_per_spawn": round(floor_cpu * 1000 / trials, 2),
        "cpu_ratio": round(run_cpu / floor_cpu, 3),
        "trial_files_cpu_ms": round(files_ms, 3),
        "stale_bytecode": stale_bytecode(),
        "workdir": str(Path(tmp).parent),
        "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
    }


def bench_reference() -> dict:
    """The issue's reference workload through ``Experiment.run()``."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ.setdefault("NNI_EXPERIMENTS_DIR", str(workdir / "experiments"))
        exp = _experiment(workdir, REFERENCE_TRIAL, {"x": {"_type": "uniform", "_value": [0, 1]}}, 2, 20, "TPE", {"optimize_mode": "maximize"})
        t0 = time.perf_counter()
        with _quiet():
            ok = exp.run(_free_port())
        wall = time.perf_counter() - t0
    return {"benchmark": "reference", "done": ok, "wall_s": round(wall, 2), "target_s": 8.0, "floor_s": 6.5, "load_average": round(os.getloadavg()[0], 2)}


def bench_store(trials: int = 10_000, metrics_per_trial: int = 100) -> dict:
    """Write ``trials`` x ``metrics_per_trial`` metrics the way the scheduler does."""
    from nni.server.store import ExperimentStore

    with tempfile.TemporaryDirectory() as tmp:
        store = ExperimentStore(Path(tmp) / "nni.sqlite")
        store.create_experiment("bench", {}, tmp, 0)
        param = json.dumps({"parameter_id": 0, "parameter_source": "algorithm", "parameters": {"x": 0.5}, "parameter_index": 0})
        t0 = time.perf_counter()
        batch_times = []
        for i in range(trials):
            tid = f"t{i:05d}"
            store.add_trial(tid, i, param, i, i, f"/trials/{tid}")
            store.trial_state(tid, "RUNNING", i + 1)
            rows = [
                {"trial_id": tid, "parameter_id": str(i), "type": "PERIODICAL", "sequence": s, "data": "0.5", "timestamp": i + s}
                for s in range(metrics_per_trial)
            ]
            b = time.perf_counter()
            # the scheduler commits what one poll (20 ms) brings; here: 10 batches of 10 per trial
            for k in range(0, metrics_per_trial, 10):
                store.add_metrics(rows[k : k + 10])
            batch_times.append((time.perf_counter() - b) / 10)
            store.trial_state(tid, "SUCCEEDED", i + 2, "", 0)
        wall = time.perf_counter() - t0
        size_mb = (Path(tmp) / "nni.sqlite").stat().st_size / 2**20
        t1 = time.perf_counter()
        n_jobs = len(store.trial_jobs())
        list_ms = (time.perf_counter() - t1) * 1000
        t2 = time.perf_counter()
        latest = len(store.metric_data_latest())
        latest_ms = (time.perf_counter() - t2) * 1000
        store.close()
    batch_times.sort()
    total_metrics = trials * metrics_per_trial
    return {
        "benchmark": "store",
        "trials": trials,
        "metrics": total_metrics,
        "wall_s": round(wall, 1),
        "metrics_per_s": round(total_metrics / wall),
        "batch_of_10_median_ms": round(batch_times[len(batch_times) // 2] * 1000, 3),
        "batch_of_10_p99_ms": round(batch_times[int(len(batch_times) * 0.99)] * 1000, 3),
        "db_mb": round(size_mb, 1),
        "trial_jobs_ms": round(list_ms, 1),
        "trial_jobs": n_jobs,
        "metric_data_latest_ms": round(latest_ms, 1),
        "latest_records": latest,
    }


def _remote_startup(training_service: dict, workdir: Path) -> float:
    """Seconds RemoteTrainingService.start() takes (no trial), then stopped."""
    import asyncio

    from nni.runtime.training_service import ExperimentContext
    from nni.training_services.remote.service import RemoteTrainingService

    code = workdir / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "trial.py").write_text(TRIAL % 0)
    ts = RemoteTrainingService(training_service, ExperimentContext("benchstart", str(workdir / "exp"), "python3 trial.py", str(code)))

    async def go() -> float:
        t0 = time.perf_counter()
        await ts.start()
        elapsed = time.perf_counter() - t0
        await ts.stop()
        return elapsed

    return asyncio.run(go())


def bench_remote(trials: int = 40, concurrency: int = 4, trial_seconds: float = 0.2, repeats: int = 3) -> dict:
    """The issue's remote workload (``trials`` trials of ``trial_seconds`` at ``concurrency``) on two
    real sshd machines on 127.0.0.1 (reuse mode) against the same workload on ``local``, runs
    alternated, medians of ``repeats``. Needs root and Debian's openssh-server."""
    from nni.training_services.remote.testing import SshServer, sshd_unavailable_reason

    reason = sshd_unavailable_reason()
    if reason:
        return {"benchmark": "remote", "skipped": reason}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ.setdefault("NNI_EXPERIMENTS_DIR", str(workdir / "experiments"))
        os.environ["NNI_CONFIG_DIR"] = str(workdir / "config")
        servers = [SshServer(workdir / f"machine{i}") for i in range(2)]
        runs: dict[str, list[dict]] = {"local": [], "remote": []}
        try:
            for server in servers:
                server.start()
                server.trust(workdir / "config" / "known_hosts")
            remote = {"platform": "remote", "machineList": [s.machine() for s in servers]}
            # the local trials find python3 where the machines do (the fixtures' wrapper folder)
            os.environ["PATH"] = f"{servers[0].bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
            startups = []
            for _ in range(repeats):
                for name, ts in (("local", {"platform": "local"}), ("remote", remote)):
                    # python3: the name the machines' PATH resolves (and, through the PATH set above, the local trials')
                    runs[name].append(timed_run(workdir / f"{name}{len(runs[name])}", name, trials, concurrency, ts,
                                                trial_seconds, python="python3"))
                startups.append(_remote_startup(remote, workdir / f"startup{len(startups)}"))
        finally:
            for server in servers:
                server.stop()

    def median(name: str, key: str) -> float:
        values = sorted(r[key] for r in runs[name] if r[key] is not None)
        return values[len(values) // 2]

    local_wall, remote_wall = median("local", "wall_s"), median("remote", "wall_s")
    startup = sorted(startups)[len(startups) // 2]
    return {
        "benchmark": "remote",
        "trials": trials, "concurrency": concurrency, "trial_s": trial_seconds, "repeats": repeats,
        "all_succeeded": all(r["succeeded"] == trials for rs in runs.values() for r in rs),
        "local_wall_s": round(local_wall, 2), "remote_wall_s": round(remote_wall, 2),
        "ratio": round(remote_wall / local_wall, 2), "target_ratio": 1.5,
        # median RUNNING -> end time beyond the trial's own 0.2 s (process start, import, report)
        "local_trial_run_overhead_ms": round(median("local", "trial_overhead_s") * 1000),
        "remote_trial_run_overhead_ms": round(median("remote", "trial_overhead_s") * 1000),
        # what each trial costs beyond local, from the wall times: (remote - local) x concurrency / trials
        "extra_per_trial_ms": round((remote_wall - local_wall) * concurrency / trials * 1000),
        "target_extra_per_trial_ms": 150,
        # the platform's start (connect, preflight, code upload, runner start on both machines,
        # in parallel) measured alone, and the per-trial extra once it is taken out
        "remote_startup_s": round(startup, 2),
        "extra_per_trial_after_startup_ms": round((remote_wall - startup - local_wall) * concurrency / trials * 1000),
        "load_average": round(os.getloadavg()[0], 2),
    }
