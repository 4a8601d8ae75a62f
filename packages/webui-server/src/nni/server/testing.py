"""Helpers for tests and benchmarks of the REST API and the web UI (not used by the manager).

:func:`synthetic_experiment` writes a finished experiment's store (trials, parameters,
intermediate and final metrics, trial folders with log files) the way the manager does, fast
enough for 10,000 trials x 100 intermediate results; :func:`serve_experiment` serves a store
read-only (``nnictl view``'s mode) on 127.0.0.1 in a background thread.

Every manager requires its access token: :func:`auth_headers` gives the header for raw HTTP
requests to a manager of this machine (found by port or by experiment folder, as
:class:`~nni.runtime.rest_api.RestClient` does by itself).
"""
from __future__ import annotations

import asyncio
import json
import math
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

from .store import ExperimentStore, ExperimentsRegistry, store_path

SEARCH_SPACE = {
    "lr": {"_type": "loguniform", "_value": [1e-5, 0.1]},
    "batch_size": {"_type": "choice", "_value": [16, 32, 64, 128]},
    "dropout": {"_type": "uniform", "_value": [0.0, 0.5]},
    "optimizer": {"_type": "choice", "_value": [{"_name": "sgd", "momentum": {"_type": "uniform", "_value": [0, 1]}}, {"_name": "adam"}]},
}


def synthetic_experiment(
    exp_dir: str | Path,
    n_trials: int = 20,
    n_intermediate: int = 5,
    experiment_id: str = "synth001",
    seed: int = 0,
    failed_every: int = 7,
    dict_metrics: bool = True,
    registry: Optional[ExperimentsRegistry] = None,
) -> dict:
    """Create ``<exp_dir>/db/nni.sqlite`` with a finished experiment; returns a summary.

    Trial ``i`` has sequence id ``i`` and id ``T%05d``; every ``failed_every``-th trial FAILED
    (intermediate results, no final one); the others SUCCEEDED with a final metric that is a
    dict ``{"default": x, "loss": 1 - x}`` when ``dict_metrics`` (odd trials) else a number.
    Each trial folder holds ``trial.log``, ``stdout`` and ``stderr``.
    """
    rng = random.Random(seed)
    exp_dir = Path(exp_dir)
    (exp_dir / "log").mkdir(parents=True, exist_ok=True)
    (exp_dir / "log" / "nnimanager.log").write_text("[synthetic] INFO manager log\n", encoding="utf-8")
    (exp_dir / "log" / "dispatcher.log").write_text("[synthetic] INFO dispatcher log\n", encoding="utf-8")
    store = ExperimentStore(store_path(exp_dir))
    start = int(time.time() * 1000) - (n_trials + 10) * 1000
    config = {
        "experimentName": "synthetic", "trialCommand": "python3 trial.py", "trialCodeDirectory": str(exp_dir),
        "trialConcurrency": 4, "maxTrialNumber": n_trials, "maxExperimentDuration": "2h", "searchSpace": SEARCH_SPACE,
        "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}}, "trainingService": {"platform": "local"},
    }
    store.create_experiment(experiment_id, config, str(exp_dir), start, status="DONE")
    trials, events, metrics = [], [], []
    finals: dict[str, object] = {}
    for i in range(n_trials):
        tid = f"T{i:05d}"
        opt = rng.choice(["sgd", "adam"])
        params = {
            "lr": 10 ** rng.uniform(-5, -1), "batch_size": rng.choice([16, 32, 64, 128]), "dropout": rng.uniform(0, 0.5),
            "optimizer": {"_name": "sgd", "momentum": rng.random()} if opt == "sgd" else {"_name": "adam"},
        }
        failed = failed_every and i % failed_every == failed_every - 1
        t0 = start + i * 1000
        t1 = t0 + rng.randint(5, 300) * 1000
        trial_dir = exp_dir / "trials" / tid
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "trial.log").write_text(f"trial {tid} started\n", encoding="utf-8")
        (trial_dir / "stdout").write_text(f"stdout of {tid}\n", encoding="utf-8")
        (trial_dir / "stderr").write_text("Traceback: ValueError: boom\n" if failed else "", encoding="utf-8")
        parameter = json.dumps({"parameter_id": i, "parameter_source": "algorithm", "parameters": params, "parameter_index": 0})
        status = "FAILED" if failed else "SUCCEEDED"
        trials.append((tid, i, status, parameter, str(i), t0, t0, t1, "ValueError: boom" if failed else "", str(trial_dir)))
        events += [(tid, "WAITING", t0, ""), (tid, "RUNNING", t0, ""), (tid, status, t1, "")]
        base = 0.95 - abs(math.log10(params["lr"]) + 3) * 0.05 - params["dropout"] * 0.1 + rng.gauss(0, 0.02)
        for k in range(n_intermediate):
            v = base * (1 - 0.5 * math.exp(-k / 3))
            data = {"default": v, "loss": 1 - v} if dict_metrics and i % 2 else v
            metrics.append((tid, str(i), "PERIODICAL", k, json.dumps(data), t0 + k))
        if not failed:
            data = {"default": base, "loss": 1 - base} if dict_metrics and i % 2 else base
            finals[tid] = data
            metrics.append((tid, str(i), "FINAL", 0, json.dumps(data), t1))
    conn = store.db.connection()
    with store.db.atomic():
        conn.executemany(  # rowid = sequence id, as ExperimentStore.add_trial writes it
            "INSERT INTO trial (rowid, trial_id, sequence_id, status, parameter, parameter_id, submit_time, start_time, end_time,"
            " message, working_directory, counted, generation, source) VALUES (?2,?1,?2,?,?,?,?,?,?,?,?,1,0,'algorithm')",
            trials,
        )
        conn.executemany("INSERT INTO trial_event (trial_id, event, timestamp, message) VALUES (?,?,?,?)", events)
        conn.executemany("INSERT INTO metric (trial_id, parameter_id, type, sequence, data, timestamp) VALUES (?,?,?,?,?,?)", metrics)
    store.update_experiment(next_sequence_id=n_trials, next_parameter_id=n_trials, end_time=start + (n_trials + 5) * 1000,
                            exec_duration=n_trials + 5)
    store.close()
    if registry is not None:
        registry.upsert(experiment_id, name="synthetic", status="DONE", start_time=start, end_time=start + (n_trials + 5) * 1000,
                        platform="local", workdir=str(exp_dir), port=None)
    return {"experiment_id": experiment_id, "trials": n_trials, "finals": finals, "metrics": len(metrics)}


def wait_until(predicate, timeout: float = 90, what: str = "", interval: float = 0.2):
    """Poll ``predicate()`` until it returns something truthy and return that; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def experiment_id_of(nnictl_output: str) -> str:
    """The experiment id that ``nnictl create`` / ``resume`` printed."""
    m = re.search(r"The experiment id is (\w+)", nnictl_output)
    assert m, nnictl_output
    return m.group(1)


def token_for(port: Optional[int] = None, exp_dir: str | Path | None = None, root: str | Path | None = None) -> Optional[str]:
    """The access token of the running manager on ``port`` (from the registry in ``root``, default
    ``$NNI_EXPERIMENTS_DIR``), or kept in ``exp_dir``."""
    from nni.runtime.access import find_token, read_token

    if exp_dir is not None:
        return read_token(exp_dir)
    if port is None:
        raise ValueError("give port or exp_dir")
    return find_token(port, root)


def auth_headers(port: Optional[int] = None, exp_dir: str | Path | None = None, root: str | Path | None = None) -> dict:
    """``{"Authorization": "Bearer <token>"}`` for a manager of this machine ({} when it has none)."""
    token = token_for(port, exp_dir, root)
    return {"Authorization": f"Bearer {token}"} if token else {}


def rest_get(port: int, route: str, timeout: float = 10):
    """GET ``/api/v1/nni/<route>`` of the local manager on ``port`` (with its token), decoded JSON."""
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/nni/{route}", headers=auth_headers(port))
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class ServedExperiment:
    """A read-only manager app running in a background thread (see :func:`serve_experiment`)."""

    port: int
    host: str
    prefix: str
    token: Optional[str]
    store: ExperimentStore
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _runner: object = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.prefix}"

    @property
    def headers(self) -> dict:
        """The access-token header its requests need."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def close(self) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)  # type: ignore[attr-defined]
        fut.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self.store.close()


def serve_experiment(
    exp_dir: str | Path,
    experiment_id: str,
    host: str = "127.0.0.1",
    port: Optional[int] = None,
    prefix: str = "",
    access_token: Optional[str] = None,
    registry: Optional[ExperimentsRegistry] = None,
    no_token: bool = False,
) -> ServedExperiment:
    """Serve the store of ``exp_dir`` read-only with the manager's app (REST API + web UI).

    Its access token (``access_token`` or a new one; none with ``no_token``) is ``.token``.
    """
    from aiohttp import web

    from . import webui
    from .api import RestHandlers, build_app

    port = port or free_port(host)
    store = ExperimentStore(store_path(exp_dir), readonly=True)
    registry = registry or ExperimentsRegistry()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict = {}

    async def request_stop() -> None:
        return None

    async def start() -> None:
        handlers = RestHandlers(store, None, registry, request_stop, experiment_id)
        app = build_app(handlers, prefix)
        options = SimpleNamespace(host=host, port=port, url_prefix=prefix, access_token=access_token, no_token=no_token)
        manager = SimpleNamespace(options=options, store=store)
        box["token"] = webui.setup(app, manager)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        box["runner"] = runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as err:  # surfaced to the caller below
            box["error"] = err
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="nni-served-experiment", daemon=True)
    thread.start()
    started.wait(30)
    if "error" in box:
        raise box["error"]
    norm = webui.normalize_prefix(prefix)
    return ServedExperiment(port, host, norm, box.get("token"), store, loop, thread, box["runner"])
