"""The Ray driver: the one process of an experiment that is a Ray program.

The manager never imports Ray: :class:`~.service.RayTrainingService` runs this file as a script
(``python -m nni.training_services.ray.driver`` works too, but imports the package first) and
speaks JSON lines with it on its stdin /
stdout (fd 1 is kept for the protocol; Ray's own output goes to stderr). A crash or a slow
``ray.init()`` in here cannot take the manager or its REST API down, and a local cluster the
driver started lives and dies with it.

Manager -> driver (one JSON object per line, ``"op"``):

===========  ======================================================================================
``init``     ``address`` (null: start a local cluster), ``num_cpus`` / ``num_gpus`` (local cluster),
             ``namespace``. Answer ``ready`` (``address``, ``resources``: the alive nodes' totals,
             ``nodes``) or ``error``.
``launch``   ``id``, ``argv`` (the runner's arguments), ``env``, ``num_cpus``, ``num_gpus``,
             ``resources``: start the trial runner as a Ray task holding those resources.
``cancel``   ``id``: force-cancel that task (its worker is killed; the runner dies with it).
``shutdown`` cancel every task, wait for them to end, disconnect (a local cluster stops); ``bye``.
===========  ======================================================================================

Driver -> manager (``"ev"``): ``ready``, ``error`` (``error``: one line), ``ended`` (``id``,
``ok``, ``rc``: the runner's exit code or null, ``error``: why the task failed, ``node``),
``nodes`` (sent when the set of alive nodes changes: ``resources``, ``nodes``, ``lost``: the
node ids that died), ``bye``. End of stdin is ``shutdown``.

The runner runs inside the Ray worker (:func:`run_runner_task`): when Ray kills the worker
(``ray.cancel(force=True)``, the node is lost, an OOM kill) the runner dies with it, its trials
are killed by the local service's lifeline, and its connection to the manager drops, which is
how the manager learns that the trials must run again.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, Optional

#: How often completed tasks and the node list are checked (seconds).
POLL_INTERVAL = 0.1
NODE_POLL_INTERVAL = 1.0
#: Seconds ``shutdown`` waits for cancelled tasks to end.
SHUTDOWN_WAIT = 15.0
#: Tries to start a local cluster.
LOCAL_CLUSTER_ATTEMPTS = 2


def run_runner_task(argv: list, env: dict, module: str) -> dict:
    """Body of the Ray task: serve the trial runner until it exits; ``{"rc", "stderr", "node"}``.

    The runner runs inside this Ray worker (no interpreter start per runner; Ray has loaded
    Python and its own modules already): ``--connect HOST:PORT --runner-id ID [--single]
    [--connect-timeout S]`` is served with the runner's own
    :func:`~nni.training_services.local.runner.run_connected_runner`. The worker is the runner,
    so when Ray kills it (``ray.cancel(force=True)``, a lost node, an OOM kill) its connection to
    the manager drops and its trials stop through the local service's lifeline. Other arguments,
    or a task not on the main thread (signal handlers need it), run ``python -m module`` as a
    child of the worker with a parent-death signal, as before.

    Defined in ``__main__`` when the driver runs, so Ray ships it by value: the Ray nodes need
    nni-core and nni-ts-local (the runner), not this package.
    """
    import socket
    import threading

    args = None
    if module == "nni.training_services.local.runner" and threading.current_thread() is threading.main_thread():
        from nni.training_services.local.runner import runner_parser

        try:
            args, rest = runner_parser().parse_known_args(argv)
        except SystemExit:  # arguments the runner refuses: its own process says so
            args, rest = None, argv
        # only what run_connected_runner serves: --connect/--runner-id [--single] [--connect-timeout]
        if args is not None and (rest or not (args.connect and args.runner_id) or args.log_file):
            args = None
    if args is None:
        return _runner_subprocess(argv, env, module)

    import asyncio
    import collections
    import logging
    import signal
    import traceback

    from nni.training_services.local.runner import EXIT_CONNECT_FAILED, run_connected_runner

    tail: collections.deque = collections.deque(maxlen=30)

    class Tail(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            tail.append(self.format(record))

    fmt = logging.Formatter("[%(asctime)s] %(levelname)s (%(name)s) %(message)s")
    handlers = [Tail(), logging.StreamHandler(sys.stderr)]  # stderr: the worker's log file
    nni_logger = logging.getLogger("nni")
    saved_level = nni_logger.level
    for h in handlers:
        h.setFormatter(fmt)
        nni_logger.addHandler(h)
    nni_logger.setLevel(logging.INFO)
    # The runner takes SIGTERM / SIGHUP / SIGINT while it serves; the worker is Ray's again after.
    signals = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    saved_signals = {sig: signal.getsignal(sig) for sig in signals}
    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})  # the token: the runner reads it there
    try:
        rc = asyncio.run(run_connected_runner(args.connect, args.runner_id, single=args.single, retry_for=args.connect_timeout))
    except (ValueError, ConnectionError) as err:
        rc = EXIT_CONNECT_FAILED
        tail.append(f"nni runner: {err}")
    except Exception:  # noqa: BLE001 - reported to the manager, which fails or retries the runner
        rc = 1
        tail.extend(traceback.format_exc().splitlines()[-10:])
    finally:
        for sig, handler in saved_signals.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for h in handlers:
            nni_logger.removeHandler(h)
        nni_logger.setLevel(saved_level)
    return {"rc": rc, "stderr": "\n".join(tail)[-2000:], "node": socket.gethostname()}


def _runner_subprocess(argv: list, env: dict, module: str) -> dict:
    """``python -m module argv`` as a child of this Ray worker that dies with it."""
    import ctypes
    import signal
    import socket
    import subprocess
    import tempfile

    parent = os.getpid()

    def die_with_worker() -> None:
        try:  # PR_SET_PDEATHSIG (Linux): the runner must not outlive a killed Ray worker
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent:  # the worker died before prctl took effect
            os._exit(1)

    full_env = dict(os.environ)
    full_env.update(env)
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", module, *argv], env=full_env, stdin=subprocess.DEVNULL,
                                stdout=err, stderr=err, preexec_fn=die_with_worker)
        rc = proc.wait()
        err.seek(0, 2)
        err.seek(max(0, err.tell() - 2000))
        tail = err.read().decode("utf-8", "replace")
    return {"rc": rc, "stderr": tail, "node": socket.gethostname()}


class Driver:
    """Serves the manager's commands; Ray calls happen here only."""

    def __init__(self, out) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._tasks: dict[str, Any] = {}  # runner id -> ObjectRef
        self._ray = None
        self._remote = None
        self._stop = threading.Event()
        self._nodes: dict[str, dict] = {}

    def send(self, ev: str, **fields: Any) -> None:
        line = json.dumps({"ev": ev, **fields}) + "\n"
        with self._lock:
            try:
                self._out.write(line.encode())
                self._out.flush()
            except (OSError, ValueError):
                self._stop.set()

    # ----- commands -----

    def init(self, msg: dict) -> bool:
        t0 = time.monotonic()
        try:
            import ray
        except ImportError as err:
            self.send("error", error=f"Ray is not installed where the manager runs ({err}); install it with: pip install 'nni-ts-ray[ray]'")
            return False
        self._ray = ray
        kwargs: dict = dict(include_dashboard=False, log_to_driver=False, logging_level="WARNING",
                            namespace=msg.get("namespace") or None, configure_logging=True)
        address = msg.get("address")
        if address:
            kwargs["address"] = address
        else:
            if msg.get("num_cpus") is not None:
                kwargs["num_cpus"] = int(msg["num_cpus"])
            if msg.get("num_gpus") is not None:
                kwargs["num_gpus"] = int(msg["num_gpus"])
        attempts = 1 if address else LOCAL_CLUSTER_ATTEMPTS
        t1 = time.monotonic()
        for attempt in range(1, attempts + 1):
            try:
                ray.init(**kwargs)
                break
            except Exception as err:  # noqa: BLE001 - Ray raises many kinds; the manager gets one line
                if attempt < attempts:  # Ray gives a new node 30 s to register; a loaded machine may need more
                    print(f"ray driver: starting a local cluster failed ({err}); trying again", file=sys.stderr)
                    ray.shutdown()
                    continue
                where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
                self.send("error", error=f"cannot connect to {where}: {' '.join(str(err).split())[:400]}")
                return False
        self._remote = ray.remote(max_retries=0)(run_runner_task)
        self._nodes = self._alive_nodes()
        # where start-up time goes (the manager logs the driver's stderr)
        print(f"import ray {t1 - t0:.2f} s, ray.init {time.monotonic() - t1:.2f} s", file=sys.stderr, flush=True)
        self.send("ready", address=ray.get_runtime_context().gcs_address, **self._node_summary())
        return True

    def _alive_nodes(self) -> dict[str, dict]:
        return {n["NodeID"]: n for n in self._ray.nodes() if n.get("Alive")}

    def _node_summary(self) -> dict:
        return {
            "nodes": [{"id": i, "ip": n.get("NodeManagerAddress"), "resources": n.get("Resources", {})} for i, n in self._nodes.items()],
            "resources": self._ray.cluster_resources(),
        }

    def launch(self, msg: dict) -> None:
        runner_id = str(msg["id"])
        options: dict = {"num_cpus": msg.get("num_cpus", 1), "num_gpus": msg.get("num_gpus", 0),
                         "name": f"nni-runner-{runner_id}"}
        if msg.get("resources"):
            options["resources"] = dict(msg["resources"])
        try:
            ref = self._remote.options(**options).remote(list(msg["argv"]), dict(msg.get("env") or {}), str(msg["module"]))
        except Exception as err:  # noqa: BLE001
            self.send("ended", id=runner_id, ok=False, rc=None, error=f"Ray refused the task: {' '.join(str(err).split())[:400]}", node=None)
            return
        with self._lock:
            self._tasks[runner_id] = ref

    def cancel(self, msg: dict) -> None:
        with self._lock:
            ref = self._tasks.get(str(msg["id"]))
        if ref is not None:
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished
                pass

    def shutdown(self) -> None:
        with self._lock:
            refs = list(self._tasks.values())
        for ref in refs:
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001
                pass
        deadline = time.monotonic() + SHUTDOWN_WAIT
        while time.monotonic() < deadline:
            with self._lock:
                if not self._tasks:
                    break
            time.sleep(POLL_INTERVAL)
        self._stop.set()

    # ----- watching -----

    def watch(self) -> None:
        """Report tasks that ended and nodes that came or went, until stopped."""
        ray = self._ray
        next_nodes = time.monotonic() + NODE_POLL_INTERVAL
        while not (self._stop.is_set() and not self._tasks):
            with self._lock:
                by_ref = {ref: rid for rid, ref in self._tasks.items()}
            if by_ref:
                done, _ = ray.wait(list(by_ref), num_returns=len(by_ref), timeout=POLL_INTERVAL, fetch_local=True)
                for ref in done:
                    self._report(by_ref[ref], ref)
            else:
                time.sleep(POLL_INTERVAL)
            if self._stop.is_set():
                continue
            if time.monotonic() >= next_nodes:
                next_nodes = time.monotonic() + NODE_POLL_INTERVAL
                try:
                    nodes = self._alive_nodes()
                except Exception:  # noqa: BLE001 - the GCS is briefly unreachable
                    continue
                if set(nodes) != set(self._nodes):
                    lost = sorted(set(self._nodes) - set(nodes))
                    self._nodes = nodes
                    self.send("nodes", lost=lost, **self._node_summary())

    def _report(self, runner_id: str, ref) -> None:
        with self._lock:
            self._tasks.pop(runner_id, None)
        try:
            result = self._ray.get(ref, timeout=10)
        except Exception as err:  # noqa: BLE001 - TaskCancelledError, WorkerCrashedError, NodeDiedError ...
            self.send("ended", id=runner_id, ok=False, rc=None, node=None,
                      error=f"{type(err).__name__}: {' '.join(str(err).split())[:300]}")
            return
        rc = result.get("rc")
        self.send("ended", id=runner_id, ok=rc == 0, rc=rc, node=result.get("node"),
                  error="" if rc == 0 else " ".join(str(result.get("stderr", "")).split())[-400:])


def main() -> int:
    # fd 1 carries the protocol only: Ray and libraries printing to stdout go to stderr.
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    driver = Driver(protocol)
    watcher: Optional[threading.Thread] = None
    for raw in sys.stdin.buffer:
        if not raw.strip():
            continue
        try:
            msg = json.loads(raw)
            op = msg["op"]
        except (ValueError, KeyError, TypeError):
            driver.send("error", error=f"ray driver: not a command: {raw[:100]!r}")
            continue
        if op == "init":
            if not driver.init(msg):
                return 1
            watcher = threading.Thread(target=driver.watch, name="nni-ray-watch", daemon=True)
            watcher.start()
        elif driver._ray is None:
            driver.send("error", error=f"ray driver: {op} before init")
        elif op == "launch":
            driver.launch(msg)
        elif op == "cancel":
            driver.cancel(msg)
        elif op == "shutdown":
            break
    # shutdown, or end of stdin (the manager went away): leave nothing running on the cluster
    if driver._ray is not None:
        t0 = time.monotonic()
        driver.shutdown()
        if watcher is not None:
            watcher.join(SHUTDOWN_WAIT)
        t1 = time.monotonic()
        driver._ray.shutdown()
        print(f"tasks ended {t1 - t0:.2f} s, ray.shutdown {time.monotonic() - t1:.2f} s", file=sys.stderr, flush=True)
    driver.send("bye")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # Ray is disconnected and "bye" is sent: skip the interpreter's teardown of Ray's threads
    # and modules (seconds on a loaded machine) that the manager's stop would wait for.
    os._exit(code)
