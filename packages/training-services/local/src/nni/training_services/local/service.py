"""Local training service: every trial is a process group on this machine.

Per trial, under ``<experiment dir>/trials/<trial_id>/``: ``parameter.cfg`` (the dispatcher's
parameter string), ``run.sh`` (the equivalent shell script, for reading and re-running by hand),
``stdout`` (``trial.log`` is a hard link to it, so it "includes stdout" as the docs say),
``stderr``, ``.nni/metrics`` (written by the trial API) and ``.nni/state`` (``<exit code> <epoch
ms>``, written when the trial ends).

Launch: the trial command runs in ``trialCodeDirectory`` with NNI's environment, in a new
session (its own process group), stdout / stderr appended to the trial's files. A plain command
(words and quotes only, see :func:`plain_argv`) is executed directly; anything a shell must
interpret (pipes, ``&&``, ``;``, redirections, ``$VAR``, globs, ``~``, assignments, builtins
such as ``cd``) runs with ``bash -c``. Both end with the same exit code (a signal death is
``128 + N``, as a shell reports it).

Trials do not outlive their manager: the service holds the write end of a pipe (the
"lifeline"), a guardian process (:mod:`.guardian`) the read end. When the manager exits in any
way (``kill -9`` included) the kernel closes the write end, and the guardian writes
``.nni/manager_died`` (``<epoch ms>``) into each trial still running, sends SIGTERM to its
process group and SIGKILL ``LIFELINE_GRACE`` seconds later. ``nnictl resume`` then records the
trial as SYS_CANCELED, saying so (``nni.server.resume``).

Metrics are tailed by one polling loop (every ``poll_interval`` seconds, 20 ms by default) so
a record reaches the manager well within 100 ms of being written, with no inotify.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional, Union

from nni.runtime.training_service import (
    ExperimentContext,
    MetricEvent,
    RequestNeverSatisfiable,
    StateEvent,
    TrainingService,
    TrialJobDetail,
    TrialJobStatus,
    TrialSpec,
    now_ms,
)

from nni.runtime.platform.local import PARAMETER_FILE, append_parameter_line
from nni.runtime.trial_metrics import MetricRecordReader

from .gpu import GpuInventory, GpuScheduler, parse_gpu_indices
from .guardian import TOKEN_VAR as GUARDIAN_TOKEN_VAR  # a stdlib-only module, also run as a script
from .zygote import CLIENT_PATH, ZYGOTE_MODULES, zygote_argv

_logger = logging.getLogger("nni.training_services.local")

STDERR_TAIL_BYTES = 4096
UNKNOWN_EXIT = -255
LIFELINE_GRACE = 3  # seconds between SIGTERM and SIGKILL once the manager is gone
GUARDIAN_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guardian.py")

# What makes bash do more than run argv: operators, redirections, expansions, quoting escapes,
# comments. A command with none of these (quotes allowed) is split like bash would split it.
_SHELL_CHARS = frozenset("\n;&|<>(){}$`\\*?[]~#!")
# bash's builtins and keywords: their meaning differs from (or has no) executable of that name
_SHELL_WORDS = frozenset(
    ". : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown"
    " echo enable eval exec exit export false fc fg getopts hash help history jobs kill let local logout mapfile"
    " popd printf pushd pwd read readarray readonly return set shift shopt source suspend test times trap true"
    " type typeset ulimit umask unalias unset wait"
    " if then else elif fi case esac for select while until do done in function time { } ! [[ ]] coproc".split()
)


def plain_argv(command: str, cwd: str, path: str) -> Optional[list[str]]:
    """``[executable, argv...]`` to run ``command`` without a shell, or ``None`` (use ``bash -c``).

    Plain: no character in :data:`_SHELL_CHARS`, at least one word, the first word neither a
    bash builtin / keyword nor an assignment, and it names an executable file (relative to
    ``cwd`` when it has a ``/``, else found on ``path``, whose entries must be absolute) that the
    kernel runs itself (``#!`` or ELF: bash runs a script without ``#!`` as bash, ``exec`` would
    give it ``/bin/sh``). Anything else -- including a command bash would report as not found --
    goes to the shell, so errors read as they always did."""
    if not command or any(ch in _SHELL_CHARS for ch in command):
        return None
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if not argv or argv[0] in _SHELL_WORDS or "=" in argv[0] or not argv[0]:
        return None
    name = argv[0]
    if "/" in name:
        exe = os.path.join(cwd, name)
        return [exe] + argv if _kernel_runs(exe) else None
    for folder in path.split(os.pathsep):
        if not folder.startswith("/"):
            return None  # a relative PATH entry is relative to the trial's folder: leave it to bash
        exe = os.path.join(folder, name)
        if os.path.isfile(exe) and os.access(exe, os.X_OK):
            return [exe] + argv if _kernel_runs(exe) else None
    return None


def _kernel_runs(exe: str) -> bool:
    """An executable file that ``execve`` starts by itself (an ELF binary or a ``#!`` script)."""
    try:
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            return False
        with open(exe, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(b"#!") or head == b"\x7fELF"


class MetricsFileTailer:
    """Reads the records appended to a trial's ``.nni/metrics`` since the last call."""

    def __init__(self, path: Union[str, os.PathLike]) -> None:
        self.path = str(path)
        self._offset = 0
        self._decoder = MetricRecordReader()

    def read_new(self) -> list[dict]:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return []
        if size <= self._offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read(size - self._offset)
        self._offset += len(data)
        return list(self._decoder.feed(data))


def stderr_tail(path: Union[str, os.PathLike], limit: int = STDERR_TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a file as text ('' if missing), cut at a line start."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    if size > limit and "\n" in text:
        text = text.split("\n", 1)[1]
    return text.strip()


class _PidfdProcess:
    """A child started with ``posix_spawn`` and awaited through a pidfd.

    ``posix_spawn`` (vfork underneath) and a pidfd in the event loop cost a fraction of
    ``asyncio.create_subprocess_exec``'s fork plus one watcher thread per child.
    """

    def __init__(self, pid: int, popen: Optional[subprocess.Popen] = None) -> None:
        self.pid = pid
        self.returncode: Optional[int] = None
        self._done: Optional[asyncio.Future] = None
        self._popen = popen  # kept until reaped: a collected running Popen would reap it itself

    async def wait(self) -> int:
        if self.returncode is not None:
            return self.returncode
        loop = asyncio.get_running_loop()
        if self._done is None:
            self._done = loop.create_future()
            fd = os.pidfd_open(self.pid)

            def ready() -> None:
                loop.remove_reader(fd)
                os.close(fd)
                try:
                    _, status = os.waitpid(self.pid, 0)
                    self.returncode = os.waitstatus_to_exitcode(status)
                except ChildProcessError:  # reaped by someone else: the trial's .nni/state tells
                    self.returncode = UNKNOWN_EXIT
                if self._popen is not None:
                    self._popen.returncode = self.returncode
                    self._popen = None
                if not self._done.done():
                    self._done.set_result(self.returncode)

            loop.add_reader(fd, ready)
        return await asyncio.shield(self._done)


def _pidfd_supported() -> bool:
    if not (hasattr(os, "pidfd_open") and hasattr(os, "posix_spawn")):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


_USE_PIDFD = _pidfd_supported()


async def _spawn(argv: list[str], env: dict, keep_fds: tuple = ()):
    """Start ``argv`` in a new session with stdio on /dev/null (and ``keep_fds``, which must be
    inheritable, open); returns an object with ``pid``, ``returncode`` and ``async wait()``."""
    if _USE_PIDFD:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ]
        proc = _PidfdProcess(os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True))
        await asyncio.sleep(0)
        return proc
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        pass_fds=keep_fds,
    )


# util-linux's setsid(1): see _spawn_trial
_SETSID = next((p for p in ("/usr/bin/setsid", "/bin/setsid") if os.access(p, os.X_OK)), None)


async def _spawn_trial(executable: str, argv: list[str], env: dict, cwd: str, stdout: int, stderr: int):
    """Start a trial: ``executable`` with ``argv`` in ``cwd``, a new session, stdin on /dev/null,
    stdout / stderr on the given fds; returns an object with ``pid``, ``returncode`` and
    ``async wait()``. Raises ``OSError`` when it cannot be started (bad ``cwd``, not executable)."""
    if _USE_PIDFD:
        # The new session comes from setsid(1), which calls setsid() and execs the trial (same pid),
        # not from the fork: Popen's vfork suspends the manager until the child has exec'd, and a
        # child that calls setsid() first joins a new scheduling group (kernel autogroup) and waits
        # for the CPU there -- ~10 ms of a frozen manager per trial on a busy machine, against
        # ~0.4 ms when the exec comes first. Popen reports a failed start as OSError; the child is
        # reaped through a pidfd (the Popen object is kept so that it never reaps it itself).
        if _SETSID is not None:
            popen = subprocess.Popen([_SETSID, executable] + argv[1:], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=stdout, stderr=stderr)
        else:
            popen = subprocess.Popen(argv, executable=executable, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=stdout, stderr=stderr, start_new_session=True)
        proc = _PidfdProcess(popen.pid, popen)
        await asyncio.sleep(0)
        return proc
    return await asyncio.create_subprocess_exec(
        *argv, executable=executable, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout, stderr=stderr, start_new_session=True,
    )


def _make_trial_dirs(trial_dir: str) -> None:
    """``<trial_dir>/.nni`` (two ``mkdir`` calls in the common case, no exception raised)."""
    try:
        os.mkdir(trial_dir)
        os.mkdir(os.path.join(trial_dir, ".nni"))
    except OSError:  # the trials folder is missing, or a resubmitted trial id: the slow way
        os.makedirs(os.path.join(trial_dir, ".nni"), exist_ok=True)


def _write_file(path: str, text: str) -> None:
    """Create or replace ``path`` with ``text`` (UTF-8)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


class _Running:
    __slots__ = ("detail", "spec", "process", "reader", "cancel_status", "kill_handle", "timeout_handle", "gpus")

    def __init__(self, detail: TrialJobDetail, spec: TrialSpec) -> None:
        self.detail = detail
        self.spec = spec
        self.process: Optional[asyncio.subprocess.Process] = None
        self.reader = None
        self.cancel_status: Optional[TrialJobStatus] = None
        self.kill_handle: Optional[asyncio.TimerHandle] = None
        self.timeout_handle: Optional[asyncio.TimerHandle] = None
        self.gpus: Optional[list[int]] = None


class LocalTrainingService(TrainingService):
    """Runs each trial with ``bash`` in its own process group (``platform: local``).

    Args:
        config: canonical ``trainingService`` mapping (``useActiveGpu``,
            ``maxTrialNumberPerGpu``, ``gpuIndices``).
        context: the experiment.
        gpu_inventory: a JSON file path, list or dict replacing ``nvidia-smi`` (tests); the
            env var ``NNI_GPU_INVENTORY`` does the same.
        poll_interval: seconds between metric-file checks.
        kill_grace: seconds between SIGTERM and SIGKILL when cancelling.
    """

    platform = "local"

    def __init__(
        self,
        config: dict,
        context: ExperimentContext,
        gpu_inventory: Union[None, str, os.PathLike, list, dict] = None,
        poll_interval: float = 0.02,
        kill_grace: float = 5.0,
    ) -> None:
        super().__init__(config, context)
        self.poll_interval = poll_interval
        self.kill_grace = kill_grace
        self.gpu = GpuScheduler(
            GpuInventory(gpu_inventory),
            parse_gpu_indices(self.config.get("gpuIndices")),
            self.config.get("maxTrialNumberPerGpu") or 1,
            self.config.get("useActiveGpu"),
        )
        self._waiting: list[_Running] = []
        self._running: dict[str, _Running] = {}
        self._exit_tasks: set[asyncio.Task] = set()
        self._poll_task: Optional[asyncio.Task] = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._trials_dir = Path(context.experiment_dir) / "trials"
        self._lifeline: Optional[tuple[int, int]] = None  # (read end given to trials, write end kept)
        self._zygote = None  # the warm interpreter forking eligible trials (see .zygote), when started
        self._zygote_socket: Optional[str] = None
        self._guardian: Optional[subprocess.Popen] = None
        self._argv_cache: dict[tuple, list[str]] = {}
        # marks this service's trials for its guardian (services may share a trials folder)
        self._guardian_token = f"{os.getpid()}-{os.urandom(6).hex()}"
        self._base_environ: Optional[dict[bytes, bytes]] = None  # see _trial_environ

    # ----- lifecycle -----

    def check_request(self, gpu_number: Optional[int]) -> None:
        reason = self.gpu.check(gpu_number)
        if reason:
            raise RequestNeverSatisfiable(reason)

    def capacity(self) -> Optional[int]:
        """GPU-scheduled trials: how many fit on the usable GPUs at once; otherwise ``None``."""
        gpu_number = self.context.trial_gpu_number
        if not gpu_number:
            return None
        return len(self.gpu.usable()) * self.gpu.max_per_gpu // gpu_number

    async def start(self) -> None:
        self._trials_dir.mkdir(parents=True, exist_ok=True)
        self._base_environ = None  # trials get the environment of the latest start
        if self._lifeline is None:
            read_fd, write_fd = os.pipe()  # both ends close-on-exec: only trials get the read end
            os.set_inheritable(read_fd, True)
            self._lifeline = (read_fd, write_fd)
            self._start_guardian()
        self._queue()
        if self._zygote is None:
            await self._start_zygote()
        if self._poll_task is None:
            self._poll_task = asyncio.get_running_loop().create_task(self._poll_loop())

    async def stop(self) -> None:
        self._stopping = True
        for run in list(self._waiting):
            self._waiting.remove(run)
            self._set_status(run.detail, TrialJobStatus.SYS_CANCELED, "experiment stopped before the trial started")
        for trial_id, run in list(self._running.items()):
            if run.cancel_status is None:
                await self.cancel(trial_id, status=TrialJobStatus.SYS_CANCELED)
        if self._exit_tasks:
            await asyncio.gather(*list(self._exit_tasks), return_exceptions=True)
        if self._poll_task is not None:
            self._poll_task.cancel()
            try:
                await self._poll_task
            except asyncio.CancelledError:
                pass
            self._poll_task = None
        self._stop_zygote()
        if self._lifeline is not None:  # every trial has ended: nothing is left to supervise
            try:
                os.write(self._lifeline[1], b"q")  # a clean stop: the guardian leaves without acting
            except OSError:
                pass
            for fd in self._lifeline:
                os.close(fd)
            self._lifeline = None
        if self._guardian is not None:
            try:
                self._guardian.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._guardian.kill()
                self._guardian.wait()
            self._guardian = None
        self._end_events()

    # ----- trials -----

    async def submit(self, spec: TrialSpec) -> TrialJobDetail:
        if self._stopping:
            raise RuntimeError("the local training service is stopping")
        gpu_number = spec.gpu_number if spec.gpu_number is not None else self.context.trial_gpu_number
        self.check_request(gpu_number)
        trial_dir = os.path.join(self._trials_dir, spec.trial_id)
        _make_trial_dirs(trial_dir)
        _write_file(os.path.join(trial_dir, PARAMETER_FILE), spec.parameter.rstrip("\n") + "\n")
        detail = TrialJobDetail(
            id=spec.trial_id,
            status=TrialJobStatus.WAITING,
            sequence_id=spec.sequence_id,
            submit_time=now_ms(),
            working_directory=str(trial_dir),
            url=f"file://localhost:{trial_dir}",
        )
        self._trials[spec.trial_id] = detail
        run = _Running(detail, spec)
        self._waiting.append(run)
        self._schedule()
        return detail

    async def cancel(self, trial_id: str, early_stopped: bool = False, status: Optional[TrialJobStatus] = None) -> None:
        final = TrialJobStatus.EARLY_STOPPED if early_stopped else (status or TrialJobStatus.USER_CANCELED)
        for run in self._waiting:
            if run.detail.id == trial_id:
                self._waiting.remove(run)
                self._set_status(run.detail, final)
                return
        run = self._running.get(trial_id)
        if run is None or run.cancel_status is not None:
            return
        run.cancel_status = final
        self._signal(run, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        run.kill_handle = loop.call_later(self.kill_grace, self._signal, run, signal.SIGKILL)

    async def send_parameter(self, trial_id: str, parameter: str) -> None:
        detail = self._trials[trial_id]  # KeyError for an unknown trial, as the contract says
        if detail.status.is_final:
            return
        # the trial's file channel polls parameter.cfg for the line of the index it asked for
        append_parameter_line(os.path.join(detail.working_directory, PARAMETER_FILE), parameter)

    def _signal(self, run: _Running, sig: int) -> None:
        if run.process is None or run.process.returncode is not None:
            return
        try:
            os.killpg(run.process.pid, sig)
        except ProcessLookupError:
            try:  # not its own group yet (setsid(1) has not run): the process alone, no children yet
                os.kill(run.process.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        except PermissionError:
            pass

    def _schedule(self) -> None:
        """Start waiting trials, first come first served, while resources allow."""
        while self._waiting and not self._stopping:
            run = self._waiting[0]
            gpu_number = run.spec.gpu_number if run.spec.gpu_number is not None else self.context.trial_gpu_number
            if gpu_number:
                gpus, why = self.gpu.allocate(run.detail.id, gpu_number)
                if gpus is None:
                    if run.detail.message != why:
                        run.detail.message = why
                        _logger.info("Trial %s waits: %s", run.detail.id, why)
                        # same state, new reason: tell the manager so the trial record says why
                        self._emit(StateEvent(run.detail.id, TrialJobStatus.WAITING, now_ms(), why))
                    return
                run.gpus = gpus
            self._waiting.pop(0)
            task = asyncio.get_running_loop().create_task(self._launch(run, gpu_number))
            self._exit_tasks.add(task)
            task.add_done_callback(self._exit_tasks.discard)

    def _environment(self, run: _Running, gpu_number: Optional[int]) -> dict:
        ctx = self.context
        trial_dir = run.detail.working_directory
        env = {
            "NNI_PLATFORM": "local",
            "NNI_EXP_ID": ctx.experiment_id,
            "NNI_TRIAL_JOB_ID": run.detail.id,
            "NNI_SYS_DIR": trial_dir,
            "NNI_OUTPUT_DIR": trial_dir,
            "NNI_TRIAL_SEQ_ID": str(run.spec.sequence_id),
            "MULTI_PHASE": "false",
        }
        if gpu_number == 0:
            env["CUDA_VISIBLE_DEVICES"] = ""
        elif gpu_number:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in run.gpus or [])
        elif self.gpu.gpu_indices is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in self.gpu.gpu_indices)
        env.update({k: str(v) for k, v in (run.spec.env or {}).items()})
        return env

    def _trial_environ(self, env: dict) -> dict[bytes, bytes]:
        """The trial's whole environment: the manager's (as it was at :meth:`start`), ``env``,
        the guardian's token, and ``PATH`` led by this Python's folder (also set in ``env``).

        Bytes from a copy kept since :meth:`start`: copying and encoding ``os.environ`` anew
        cost the manager ~1.5 ms of CPU per trial."""
        if self._base_environ is None:
            self._base_environ = dict(os.environb)
            self._base_environ[os.fsencode(GUARDIAN_TOKEN_VAR)] = os.fsencode(self._guardian_token)
        full = self._base_environ.copy()
        for k, v in env.items():
            full[os.fsencode(k)] = os.fsencode(v)
        path = env["PATH"] if "PATH" in env else os.fsdecode(self._base_environ.get(b"PATH", b""))
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + path
        full[b"PATH"] = os.fsencode(env["PATH"])
        return full

    def _start_guardian(self) -> None:
        """The process that stops this service's trials when its process dies (see .guardian)."""
        try:
            self._guardian = subprocess.Popen(
                [sys.executable, "-I", "-S", GUARDIAN_PATH, str(self._lifeline[0]), self._guardian_token, str(LIFELINE_GRACE)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                start_new_session=True, pass_fds=(self._lifeline[0],),
            )
        except OSError as err:
            _logger.warning("Cannot start the lifeline guardian; trials will outlive a crashed manager: %s", err)

    # ----- the zygote (warm interpreter for NAS trials, see .zygote) -----

    async def _start_zygote(self) -> None:
        argv = zygote_argv(self.context.trial_command)
        if argv is None:
            return
        import socket
        import tempfile

        preload = ",".join(ZYGOTE_MODULES[argv[2]])
        # a short private folder: a unix socket path is limited to 107 bytes
        folder = tempfile.mkdtemp(prefix="nni-zygote-")
        socket_path = os.path.join(folder, "s")
        env = os.environ.copy()
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        listener = None
        try:
            # bound and listening here, before the zygote starts: the first trials' clients queue
            # on it while the zygote imports (a connect before a bind would fail and run them cold)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(socket_path)
            listener.listen(128)
            listener.set_inheritable(True)
            keep = [listener.fileno()]
            # -c, not -m: the package has imported .zygote already (runpy would warn)
            cmd = [sys.executable, "-c", "import sys; from nni.training_services.local.zygote import main; sys.exit(main())",
                   "--socket", socket_path, "--listen-fd", str(listener.fileno()),
                   "--preload", preload, "--modules", ",".join(ZYGOTE_MODULES)]
            if self._lifeline is not None:
                cmd += ["--lifeline", str(self._lifeline[0])]
                keep.append(self._lifeline[0])
            log_dir = os.path.join(self.context.experiment_dir, "log")
            os.makedirs(log_dir, exist_ok=True)
            fd = os.open(os.path.join(log_dir, "zygote.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                code_dir = self.context.trial_code_directory
                self._zygote = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, env=env, start_new_session=True,
                    cwd=code_dir if os.path.isdir(code_dir) else None, pass_fds=tuple(keep),
                )
            finally:
                os.close(fd)
        except OSError as err:
            _logger.warning("Cannot start the trial launcher (zygote); trials start as new processes: %s", err)
            shutil.rmtree(folder, ignore_errors=True)
            return
        finally:
            if listener is not None:
                listener.close()  # the zygote's copy only: once it is gone, clients are refused and run cold
        self._zygote_socket = socket_path
        _logger.info("Trial launcher (zygote) pid %s preloads %s for %s trials", self._zygote.pid, preload, argv[2])

    def _stop_zygote(self) -> None:
        if self._zygote is None:
            return
        if self._zygote.poll() is None:
            self._zygote.terminate()
            try:
                self._zygote.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
                self._zygote.wait()
        if self._zygote_socket:
            shutil.rmtree(os.path.dirname(self._zygote_socket), ignore_errors=True)
        self._zygote = None
        self._zygote_socket = None

    def _argv(self, run: _Running, env: dict, code_dir: str) -> list[str]:
        """``[executable, argv...]`` of the trial (see the module docstring)."""
        command = run.spec.command or self.context.trial_command
        if self._zygote_socket is not None:
            argv = zygote_argv(command)
            if argv is not None:  # forked by the warm interpreter; the client stands in for it
                return [sys.executable, sys.executable, "-I", "-S", CLIENT_PATH, self._zygote_socket] + argv
        key = (command, code_dir, env["PATH"])
        argv = self._argv_cache.get(key)
        if argv is None:  # one look-up per command: every trial of an experiment runs the same one
            argv = plain_argv(command, code_dir, env["PATH"]) or ["/bin/bash", "/bin/bash", "-c", command]
            if len(self._argv_cache) > 64:
                self._argv_cache.clear()
            self._argv_cache[key] = argv
        return argv

    def _script(self, run: _Running, env: dict, code_dir: str) -> str:
        """``run.sh``: what the trial runs, as a shell script (NNI's layout; not executed)."""
        trial_dir = run.detail.working_directory
        q = shlex.quote
        command = run.spec.command or self.context.trial_command
        lines = ["#!/bin/bash", f"cd {q(code_dir)}"]
        lines += [f"export {k}={q(v)}" for k, v in env.items() if k != "PATH"]
        lines.append(f"export PATH={q(os.path.dirname(sys.executable))}:\"$PATH\"")
        lines.append(f"eval {q(command)} 1>>{q(trial_dir + '/stdout')} 2>>{q(trial_dir + '/stderr')}")
        lines.append(f"echo $? `date +%s%3N` >{q(trial_dir + '/.nni/state')}")
        return "\n".join(lines) + "\n"

    async def _launch(self, run: _Running, gpu_number: Optional[int]) -> None:
        detail = run.detail
        trial_dir = detail.working_directory
        env = self._environment(run, gpu_number)
        detail.gpu_indices = run.gpus
        code_dir = run.spec.code_directory or self.context.trial_code_directory
        full_env = self._trial_environ(env)
        # os-level calls, not pathlib: this runs once per trial on the manager's loop
        _write_file(os.path.join(trial_dir, "run.sh"), self._script(run, env, code_dir))
        stdout = os.path.join(trial_dir, "stdout")
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        out_fd = os.open(stdout, flags, 0o644)
        try:
            os.link(stdout, os.path.join(trial_dir, "trial.log"))
        except OSError:
            pass
        run.reader = MetricsFileTailer(os.path.join(trial_dir, ".nni", "metrics"))
        argv = self._argv(run, env, code_dir)
        try:
            err_fd = os.open(os.path.join(trial_dir, "stderr"), flags, 0o644)
            try:
                run.process = await _spawn_trial(argv[0], argv[1:], full_env, code_dir, out_fd, err_fd)
            finally:
                os.close(err_fd)
        except OSError as err:
            self.gpu.release(detail.id)
            self._set_status(detail, TrialJobStatus.FAILED, f"cannot start the trial: {err}")
            self._schedule()
            return
        finally:
            os.close(out_fd)
        detail.pid = run.process.pid
        detail.message = ""
        self._running[detail.id] = run
        self._set_status(detail, TrialJobStatus.RUNNING)
        if self.context.max_trial_duration:
            run.timeout_handle = asyncio.get_running_loop().call_later(
                self.context.max_trial_duration, self._trial_timeout, detail.id
            )
        self._wake.set()
        if self._stopping:  # stop() came while this trial was being launched
            await self.cancel(detail.id, status=TrialJobStatus.SYS_CANCELED)
        rc = await run.process.wait()
        if rc < 0 and rc != UNKNOWN_EXIT:  # killed by signal N: 128 + N, as a shell reports it
            rc = 128 - rc
        if rc != UNKNOWN_EXIT:
            _write_file(os.path.join(trial_dir, ".nni", "state"), f"{rc} {now_ms()}\n")
        self._finish(run, rc)

    def _trial_timeout(self, trial_id: str) -> None:
        run = self._running.get(trial_id)
        if run is not None and run.cancel_status is None:
            run.detail.message = f"maxTrialDuration ({self.context.max_trial_duration:g}s) reached"
            asyncio.get_running_loop().create_task(self.cancel(trial_id, status=TrialJobStatus.SYS_CANCELED))

    def _finish(self, run: _Running, rc: int) -> None:
        detail = run.detail
        if rc == UNKNOWN_EXIT:
            try:
                rc = int((Path(detail.working_directory) / ".nni" / "state").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        self._read_metrics(run)  # whatever was written before the exit
        for handle in (run.kill_handle, run.timeout_handle):
            if handle is not None:
                handle.cancel()
        self._running.pop(detail.id, None)
        self.gpu.release(detail.id)
        if run.cancel_status is not None:
            status, message = run.cancel_status, detail.message if run.cancel_status == TrialJobStatus.SYS_CANCELED else ""
        elif rc == 0:
            status, message = TrialJobStatus.SUCCEEDED, ""
        else:
            tail = stderr_tail(Path(detail.working_directory) / "stderr")
            status = TrialJobStatus.FAILED
            message = f"exit code {rc}" + (f"; stderr tail:\n{tail}" if tail else "")
        self._set_status(detail, status, message, exit_code=rc)
        self._schedule()

    # ----- metrics -----

    def _read_metrics(self, run: _Running) -> None:
        if run.reader is None:
            return
        try:
            records = run.reader.read_new()
        except Exception as err:  # a corrupt record must not kill the manager
            _logger.warning("Trial %s: unreadable metric record: %s", run.detail.id, err)
            return
        t = now_ms()
        for rec in records:
            self._emit(MetricEvent(run.detail.id, rec, t))

    async def _poll_loop(self) -> None:
        while True:
            if not self._running:
                self._wake.clear()
                await self._wake.wait()
            for run in list(self._running.values()):
                self._read_metrics(run)
            await asyncio.sleep(self.poll_interval)

