"""The ``ray`` training service: trials on a Ray cluster.

How it runs trials: every trial runs in the one NNI trial runner
(:mod:`nni.training_services.local.runner`), served inside a Ray task that holds one trial's
resources (``num_cpus`` / ``num_gpus`` / ``resources`` from the config). The runner connects
back to the manager (:class:`~nni.runtime.runner_listener.RunnerListener`, token in its
environment) and the manager hands it trials over that connection. In reuse mode (default) a
runner runs one trial after another; otherwise each trial gets its own task (``--single``).

Concurrency follows the cluster: at start and whenever nodes come or go, the service counts how
many trials fit on the alive nodes (:meth:`~RayTrainingService.capacity`), keeps at most that
many runners, and Ray places them; trials beyond that wait (WAITING, with the reason). The first
``trialConcurrency`` runners (at most what fits) start with the service, before the first trial,
so that Ray's start of a new job's worker processes overlaps the manager's own start. GPUs are
Ray's: the runner does not schedule GPUs itself, the trial inherits the ``CUDA_VISIBLE_DEVICES``
Ray gave its task.

The manager is not a Ray program: every Ray call happens in a helper process,
:mod:`nni.training_services.ray.driver`, driven over pipes. Without ``address`` the driver
starts a private local cluster bound to 127.0.0.1 that stops with it.

Faults: a runner whose task dies (its worker killed, its node lost, ``ray.cancel``) takes its
trial down with it (the runner runs inside the worker, and its trials die with it through the
local service's lifeline); the manager sees the connection drop, or the driver reports the
task's failure, whichever comes first, and ends the trial SYS_CANCELED with ``requeue=True``
(the manager runs its parameters again) and starts another runner. Tasks that fail before their
runner connected are retried; after :data:`MAX_START_FAILURES` in a row the waiting trials fail
with the runner's error (a node without nni-core, a manager address the nodes cannot reach).

:meth:`~RayTrainingService.stop` stops every runner over its connection, then cancels what
is left on the cluster and disconnects the driver; no task of the experiment remains.

Nodes must see ``trialCodeDirectory`` and the experiment folder at the same paths as the manager
(a local cluster, or a shared file system) and have nni-core and nni-ts-local installed.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import os
import sys
from typing import Any, Optional

from nni.runtime import runner_protocol as rp
from nni.runtime.runner_client import RunnerClient
from nni.runtime.runner_listener import RunnerListener
from nni.runtime.training_service import (
    ExperimentContext,
    RequestNeverSatisfiable,
    StateEvent,
    TrialJobDetail,
    TrialJobStatus,
    TrialSpec,
)
from nni.training_services.local.runner_pool import RUNNER_ERRORS, RunnerPool

from .config import RayConfig

__all__ = ["RayTrainingService", "RayPlatformError", "trials_that_fit"]

_logger = logging.getLogger("nni.training_services.ray")

DRIVER_MODULE = "nni.training_services.ray.driver"
#: How the driver starts: its file run as ``__main__`` without importing this package (the
#: service, the config classes), which would only delay ``ray.init`` (~1 s on a loaded machine).
_DRIVER_BOOT = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"
#: Runner tasks that may fail in a row before the waiting trials fail with their error.
MAX_START_FAILURES = 3
#: Seconds ``ray.init`` may take (a cold local cluster takes 4-30 s).
INIT_TIMEOUT = 180.0


class RayPlatformError(RuntimeError):
    """The Ray platform cannot run (Ray missing, cluster unreachable); one line for users."""


def _is_loopback(address: str) -> bool:
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host == "localhost" or host.startswith("127.") or host == "::1"


def trials_that_fit(nodes: list[dict], demand: dict[str, float]) -> Optional[int]:
    """How many trials asking for ``demand`` fit on ``nodes`` at once (``None``: no limit,
    the demand is empty). Each node is ``{"resources": {name: total}}``."""
    demand = {k: v for k, v in demand.items() if v}
    if not demand:
        return None
    total = 0
    for node in nodes:
        have = node.get("resources") or {}
        total += min(int(have.get(k, 0) / v + 1e-9) for k, v in demand.items())
    return total


def _retrieve(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()  # seen; asyncio must not log it as never retrieved


@dataclasses.dataclass
class _Runner:
    id: str
    state: str = "launching"  # launching -> idle <-> busy -> (retiring) -> gone
    client: Optional[RunnerClient] = None
    trial: Optional[str] = None
    host: str = ""


class RayTrainingService(RunnerPool):
    """Runs trials as Ray tasks (``platform: ray``).

    The backlog, hand-over, cancel, send_parameter and stop are :class:`RunnerPool`'s; a runner
    is a Ray task (:class:`_Runner`), launched through the driver while the cluster has room.

    Args:
        config: canonical ``trainingService`` mapping (see :class:`~.config.RayConfig`).
        context: the experiment.
        python: the interpreter that runs the driver (default: this one).
    """

    platform = "ray"
    config_class = RayConfig

    def __init__(self, config: dict, context: ExperimentContext, python: str = sys.executable) -> None:
        super().__init__(config, context)
        c = self.config
        self.address: Optional[str] = c.get("address") or None
        gpus = c.get("numGpusPerTrial")
        if gpus is None:
            gpus = context.trial_gpu_number or 0
        self.demand: dict[str, float] = {"CPU": c.get("numCpusPerTrial", 1) if c.get("numCpusPerTrial") is not None else 1,
                                         "GPU": gpus, **(c.get("resources") or {})}
        self.reuse = c.get("reuseMode", True) is not False
        self.python = python
        self.cluster_address = ""
        self.nodes: list[dict] = []
        self._capacity: Optional[int] = None
        self._listener: Optional[RunnerListener] = None
        self._driver: Optional[asyncio.subprocess.Process] = None
        self._driver_task: Optional[asyncio.Task] = None
        self._driver_stderr: collections.deque = collections.deque(maxlen=20)
        self._ready: Optional[asyncio.Future] = None
        self._bye: Optional[asyncio.Future] = None
        self._runners: dict[str, _Runner] = {}
        self._runner_seq = 0
        self._start_failures = 0
        self._last_failure = ""

    # ----- lifecycle -----

    def check_request(self, gpu_number: Optional[int]) -> None:
        if gpu_number and not self.demand.get("GPU"):
            raise RequestNeverSatisfiable(f"trialGpuNumber: {gpu_number} GPUs per trial, but trainingService.numGpusPerTrial is 0; set numGpusPerTrial: {gpu_number}")
        if self.nodes and self._capacity == 0:
            raise RequestNeverSatisfiable(self._no_fit_message())

    def _no_fit_message(self) -> str:
        want = ", ".join(f"{k} {v:g}" for k, v in self.demand.items() if v)
        have = "; ".join(
            f"{n.get('ip')}: " + ", ".join(f"{k} {n['resources'].get(k, 0):g}" for k, v in self.demand.items() if v)
            for n in self.nodes
        ) or "no alive node"
        return (f"trainingService: a trial asks Ray for {want}, but no node of the cluster at {self.cluster_address} has that ({have}); "
                "lower numCpusPerTrial / numGpusPerTrial / resources or add a node that has them")

    def capacity(self) -> Optional[int]:
        return self._capacity

    async def start(self) -> None:
        if self._started:
            return
        host = self.config.get("nniManagerIp") or "127.0.0.1"
        self._listener = RunnerListener(host=host, field="trainingService.nniManagerIp")
        await self._listener.start()  # ListenError: one line naming the field
        try:
            await self._start_driver()
        except BaseException:
            await self._listener.close()
            raise
        self._started = True
        if self._capacity == 0:
            await self._shutdown_driver()
            await self._listener.close()
            raise RequestNeverSatisfiable(self._no_fit_message())
        _logger.info("Ray cluster %s: %d node(s), %s trial(s) at once", self.cluster_address, len(self.nodes),
                     "any number of" if self._capacity is None else self._capacity)
        self._prelaunch()
        self._dispatch()

    def _prelaunch(self) -> None:
        """Start ``trialConcurrency`` runners (at most what the cluster fits) before the first trial.

        Ray starts a new job's worker processes on demand, seconds each; launching the runner
        tasks now overlaps that with the rest of the manager's start-up (dispatcher, tuner),
        so the first trials find runners ready instead of waiting for workers."""
        want = self.context.trial_concurrency or 0
        if self._capacity is not None:
            want = min(want, self._capacity)
        for _ in range(max(0, want - len(self._live()))):
            self._launch_runner()

    def _driver_env(self) -> dict:
        env = dict(os.environ)
        if self.address is None:
            env.pop("RAY_ADDRESS", None)  # no address: our own cluster, never one that happens to be around
        if self.address is None or _is_loopback(self.address):
            # Ray's single-machine mode: the node's address is 127.0.0.1, so a local cluster binds
            # to loopback only (not reachable from the network), and a driver joining a cluster
            # on 127.0.0.1 does not wait for a node at this machine's network address.
            env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        return env

    async def _start_driver(self) -> None:
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise RayPlatformError("trainingService.platform: ray needs the Ray package; install it with: pip install 'nni-ts-ray[ray]'")
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._ready.add_done_callback(_retrieve)
        self._bye = loop.create_future()
        self._driver = await asyncio.create_subprocess_exec(
            self.python, "-c", _DRIVER_BOOT, os.path.join(os.path.dirname(os.path.abspath(__file__)), "driver.py"),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self._driver_env(), limit=rp.MAX_LINE_BYTES,
        )
        self._driver_task = self._spawn(self._read_driver(self._driver))
        self._spawn(self._log_driver_stderr(self._driver))
        await self._to_driver("init", address=self.address, num_cpus=self.config.get("localClusterCpus"),
                              num_gpus=self.config.get("localClusterGpus"), namespace=f"nni-{self.context.experiment_id}")
        try:
            ready = await asyncio.wait_for(asyncio.shield(self._ready), INIT_TIMEOUT)
        except asyncio.TimeoutError:
            await self._kill_driver()
            last = f" (its last output: {self._driver_stderr[-1]})" if self._driver_stderr else ""
            raise RayPlatformError(f"trainingService: the Ray driver did not connect to {self.address or 'a new local cluster'} within {INIT_TIMEOUT:g} s{last}") from None
        except RayPlatformError:
            await self._kill_driver()
            raise
        self.cluster_address = ready.get("address") or ""
        self._set_nodes(ready.get("nodes") or [])

    def _set_nodes(self, nodes: list[dict]) -> None:
        self.nodes = nodes
        self._capacity = trials_that_fit(nodes, self.demand)

    async def _to_driver(self, op: str, **fields: Any) -> None:
        proc = self._driver
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return
        try:
            proc.stdin.write((json.dumps({"op": op, **fields}) + "\n").encode())
            await proc.stdin.drain()
        except (ConnectionError, OSError) as err:
            _logger.warning("Ray driver: cannot send %s: %s", op, err)

    async def _log_driver_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                self._driver_stderr.append(text[:300])
                _logger.info("ray driver: %s", text[:1000])

    async def _read_driver(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        ready, bye = self._ready, self._bye  # this process's; a restarted driver gets new ones
        async for line in proc.stdout:
            try:
                msg = json.loads(line)
                ev = msg["ev"]
            except (ValueError, KeyError, TypeError):
                _logger.warning("Ray driver: unexpected line %r", line[:200])
                continue
            if ev == "ready":
                if not ready.done():
                    ready.set_result(msg)
            elif ev == "error":
                if not ready.done():
                    ready.set_exception(RayPlatformError(f"trainingService: {msg.get('error')}"))
                else:
                    _logger.warning("Ray driver: %s", msg.get("error"))
            elif ev == "ended":
                self._task_ended(msg)
            elif ev == "nodes":
                self._nodes_changed(msg)
            elif ev == "bye":
                break
        rc = await proc.wait()
        if not bye.done():
            bye.set_result(rc)
        if not ready.done():
            ready.set_exception(RayPlatformError(f"trainingService: the Ray driver exited with code {rc} before connecting (see the manager log)"))
            return  # a driver that never worked: whoever started it reports or retries
        if not self._stopping and self._started and self._driver is proc:
            # Its tasks die with it (Ray kills the tasks of a dead owner): every runner is lost.
            _logger.error("The Ray driver exited (code %s); its runners are lost, restarting it", rc)
            for r in list(self._runners.values()):
                self._runner_lost(r, f"the Ray driver exited with code {rc}")
            self._spawn(self._restart_driver())

    async def _restart_driver(self) -> None:
        delay = 1.0
        while not self._stopping:
            await asyncio.sleep(delay)
            try:
                await self._start_driver()
                _logger.info("The Ray driver is back")
                self._dispatch()
                return
            except (RayPlatformError, OSError) as err:
                _logger.warning("Restarting the Ray driver failed: %s", err)
                delay = min(delay * 2, 30.0)

    def _nodes_changed(self, msg: dict) -> None:
        self._set_nodes(msg.get("nodes") or [])
        if msg.get("lost"):
            _logger.warning("Ray nodes lost: %s; %s trial(s) fit now", ", ".join(msg["lost"]), self._capacity)
        self._dispatch()

    async def _stop_runners(self) -> None:
        """Stop every runner over its connection, then cancel what is left on the cluster (the
        driver's shutdown) and stop listening, which ends the tasks waiting for a runner."""
        clients = [r.client for r in self._runners.values() if r.client is not None and r.state != "gone"]
        await asyncio.gather(*(c.stop(timeout=30) for c in clients), return_exceptions=True)
        await self._shutdown_driver()
        if self._listener is not None:
            await self._listener.close()

    async def _shutdown_driver(self) -> None:
        proc = self._driver
        if proc is None or proc.returncode is not None:
            return
        await self._to_driver("shutdown")
        try:
            await asyncio.wait_for(asyncio.shield(self._bye), 60)
        except asyncio.TimeoutError:
            _logger.warning("The Ray driver did not shut down within 60 s; killing it")
            await self._kill_driver()

    async def _kill_driver(self) -> None:
        proc = self._driver
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()

    # ----- runners -----

    def _launch_runner(self) -> None:
        self._runner_seq += 1
        r = _Runner(f"{self.context.experiment_id}-{self._runner_seq}")
        self._runners[r.id] = r
        assert self._listener is not None
        self._listener.expect(r.id)
        argv = self._listener.runner_args(r.id) + ([] if self.reuse else ["--single"])
        self._spawn(self._to_driver(
            "launch", id=r.id, argv=argv, env=self._listener.runner_env(r.id), module=rp.RUNNER_MODULE,
            num_cpus=self.demand["CPU"], num_gpus=self.demand["GPU"],
            resources={k: v for k, v in self.demand.items() if k not in ("CPU", "GPU")},
        ))
        self._spawn(self._connect(r))

    async def _connect(self, r: _Runner) -> None:
        assert self._listener is not None
        try:
            client = await self._listener.wait_runner(r.id)
        except (asyncio.CancelledError, KeyError):
            return  # the task ended first (see _task_ended), or the service stopped
        if r.state == "gone" or self._stopping:
            await client.aclose()
            return
        r.client = client
        # Paths as the node sees them: the same ones (a local cluster or a shared file system).
        # Ray owns the GPUs: the runner must not pick GPUs itself, the trial keeps Ray's CUDA_VISIBLE_DEVICES.
        context = dataclasses.replace(self.context, trial_gpu_number=None, shared_storage=None)
        try:
            info = await client.hello(context, platform="ray")
        except (*RUNNER_ERRORS, ValueError) as err:
            await client.aclose()
            self._runner_failed(r, f"the runner did not start: {err}")
            return
        r.host = info.hostname
        r.state = "idle"
        self._start_failures = 0
        self._spawn(self._pump(r, client))
        self._dispatch()

    async def _pump(self, r: _Runner, client: RunnerClient) -> None:
        reason = await self._forward(r, client)
        if r.state == "retiring":  # non-reuse: its one trial is over
            r.state = "gone"
            return
        if not self._stopping and r.state != "gone":
            # Ray kills a dead driver's tasks, so a runner's socket may close before the driver's
            # exit is seen: give it a moment, and let the driver's exit name the cause
            driver = self._driver
            if driver is not None and driver.returncode is None:
                try:
                    await asyncio.wait_for(asyncio.shield(driver.wait()), 1.0)
                    await asyncio.sleep(0)  # the driver's own watcher handles its runners first
                except asyncio.TimeoutError:
                    pass
            if not self._stopping and r.state != "gone":
                self._runner_lost(r, reason)

    def _on_runner_state(self, r: _Runner, detail: TrialJobDetail, event: StateEvent) -> None:
        self._set_status(detail, event.status, event.message, event.exit_code, event.time)
        if event.status.is_final and r.trial == detail.id:
            r.trial = None
            if r.state == "busy":
                r.state = "idle" if self.reuse else "retiring"
            self._dispatch()

    def _task_ended(self, msg: dict) -> None:
        r = self._runners.get(str(msg.get("id")))
        if r is None:
            return
        if self._listener is not None:
            self._listener.forget(r.id)
        if r.state == "gone" or self._stopping:
            r.state = "gone"
            return
        error = msg.get("error") or f"exit code {msg.get('rc')}"
        if r.client is None:  # never connected
            self._runner_failed(r, f"the Ray task ended before the runner connected: {error}")
        elif r.state == "retiring":
            r.state = "gone"
        else:
            self._runner_lost(r, f"its Ray task ended: {error}")

    def _runner_failed(self, r: _Runner, why: str) -> None:
        """A runner that never took a trial failed; after several in a row, waiting trials fail."""
        r.state = "gone"
        self._spawn(self._to_driver("cancel", id=r.id))
        if self._stopping:
            return
        self._start_failures += 1
        self._last_failure = why
        _logger.warning("Ray runner %s: %s", r.id, why)
        if self._start_failures >= MAX_START_FAILURES:
            for trial_id in list(self._backlog):
                self._backlog.remove(trial_id)
                self._set_status(self._trials[trial_id], TrialJobStatus.FAILED,
                                 f"{MAX_START_FAILURES} Ray runner tasks in a row failed to start; the last: {why}")
            self._start_failures = 0
        self._dispatch()

    def _runner_lost(self, r: _Runner, why: str) -> None:
        """A runner with a connection is gone: its trial runs again elsewhere."""
        if r.state == "gone":
            return
        r.state = "gone"
        if r.client is not None:
            self._spawn(r.client.aclose())
        self._spawn(self._to_driver("cancel", id=r.id))
        if self._listener is not None:
            self._listener.forget(r.id)
        trial_id, r.trial = r.trial, None
        if trial_id is not None and not self._trials[trial_id].status.is_final:
            where = f" on {r.host}" if r.host else ""
            _logger.warning("Ray runner %s%s lost (%s); trial %s runs again", r.id, where, why, trial_id)
            self._requeue(self._trials[trial_id], f"the Ray task running the trial{where} was lost ({why})")
        self._dispatch()

    # ----- trials (the pool's hooks) -----

    def _trial_spec(self, spec: TrialSpec) -> TrialSpec:
        # the runner must not GPU-schedule (Ray did): gpu_number None keeps Ray's CUDA_VISIBLE_DEVICES
        return dataclasses.replace(spec, gpu_number=None)

    def _live(self) -> list[_Runner]:
        return [r for r in self._runners.values() if r.state in ("launching", "idle", "busy")]

    def _driver_up(self) -> bool:
        return self._driver is not None and self._driver.returncode is None

    def _idle_runner(self, trial_id: str) -> Optional[_Runner]:
        if not self._driver_up():
            return None
        return next((r for r in self._runners.values() if r.state == "idle"), None)

    def _hand_over(self, r: _Runner, trial_id: str) -> None:
        r.state, r.trial = "busy", trial_id
        self._owner[trial_id] = r
        self._spawn(self._send(r, trial_id))

    def _launch_for_backlog(self) -> None:
        """Start runners for the waiting trials while the cluster has room; say why they wait."""
        if not self._backlog or not self._driver_up():
            return
        live = self._live()
        launching = sum(1 for r in live if r.state == "launching")
        room = len(self._backlog) - launching
        if self._capacity is not None:
            room = min(room, self._capacity - len(live))
        for _ in range(max(0, room)):
            self._launch_runner()
        if self._capacity is not None and len(self._live()) >= self._capacity and launching == 0:
            self._note_waiting(f"waiting for a free Ray runner (the cluster fits {self._capacity} trial(s) at once)")
        else:
            self._note_waiting("waiting for Ray to start a runner task")

    async def _send(self, r: _Runner, trial_id: str) -> None:
        client = r.client
        assert client is not None
        try:
            result = await self._submit_to(client, trial_id, f"Ray runner on {r.host}")
        except ValueError as err:  # the runner refused the spec: as if it were no good
            result = err
        if isinstance(result, RequestNeverSatisfiable):  # the trial is FAILED
            r.trial, r.state = None, "idle" if r.state == "busy" else r.state
            self._dispatch()
        elif isinstance(result, Exception):
            # not started: back to the front of the queue; the runner is no good
            if r.trial == trial_id:
                r.trial = None
            self._owner.pop(trial_id, None)
            self._requeue_first(trial_id)
            self._runner_lost(r, f"submit failed: {result}")
        else:
            self._trials[trial_id].url = f"ray://{r.host}{result.working_directory}"

    def _client_of(self, trial_id: str) -> Optional[RunnerClient]:
        r = self._owner.get(trial_id)
        return r.client if r is not None and r.trial == trial_id else None

    def _where(self, trial_id: str) -> str:
        r = self._owner.get(trial_id)
        return f"Ray runner {r.id}" if r is not None else "?"

    # ----- helpers -----

    @property
    def runners_started(self) -> int:
        """Runner tasks launched so far."""
        return self._runner_seq

    def runner_count(self) -> int:
        """Runners alive now (starting, idle or running a trial)."""
        return len(self._live())
