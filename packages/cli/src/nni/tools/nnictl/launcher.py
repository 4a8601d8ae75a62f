"""``nnictl create | resume | view``: start a manager daemon and wait until it serves.

The manager is ``python -m nni.server`` (nni-webui-server), started in its own session with
its stdout / stderr in ``<experiment dir>/log/nnictl_stdout.log`` / ``nnictl_stderr.log``
(``nnictl log stdout|stderr``). nnictl waits for the manager as long as it makes progress
(its processes use CPU or are runnable, or its log files grow) rather than for a fixed time,
so a slow first start on a busy machine is not reported as a failure; after
:data:`STALL_SECONDS` without progress it gives up. If the manager exits, the last lines of
its logs are printed.

An experiment that fails at start (a tuner raising in ``__init__``, ``update_search_space`` or
its first ``generate_parameters``) is in ERROR while its manager and web UI stay up: ``create``
and ``resume`` wait up to :data:`EARLY_FAILURE_SECONDS` for the first trial, then print the
error's first line, the web UI URL (it shows the traceback) and how to go on, and exit with 1.

Busy port: nnictl refuses to start (it never picks another port by itself, so URLs and
scripts stay predictable) and names the process that holds the port and a free port to use
with ``--port``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from nni.runtime.ids import random_id
from nni.runtime.states import ACTIVE_STATES

from .errors import NnictlError
from .experiments import ExperimentRef, all_experiments, find, pid_alive

#: Seconds without any sign of progress after which nnictl gives up on a starting manager.
STALL_SECONDS = 30.0
LOG_TAIL_LINES = 15
#: Longest wait, once RUNNING, for the first trial (an algorithm failing at once shows up here).
EARLY_FAILURE_SECONDS = 3.0
RULE = "-" * 72

COMMANDS_TABLE = """\
You can use these commands to get more information about the experiment
{rule}
         commands                       description
1. nnictl experiment show        show the information of experiments
2. nnictl trial ls               list all of trial jobs
3. nnictl top                    monitor the status of running experiments
4. nnictl log stderr             show stderr log content
5. nnictl log stdout             show stdout log content
6. nnictl stop                   stop an experiment
7. nnictl trial kill             kill a trial job by id
8. nnictl --help                 get help information about nnictl
{rule}"""


def info(message: str) -> None:
    print(f"INFO: {message}", flush=True)


def web_ui_urls(port: int, url_prefix: str = "", host: str = "127.0.0.1", token: Optional[str] = None) -> list[str]:
    """The manager's web UI URLs: the bound address (the machine's addresses for ``0.0.0.0``),
    each carrying the access token when there is one."""
    from nni.runtime.access import web_urls

    return web_urls(port, host, url_prefix, token)


def client_host(host: Optional[str]) -> str:
    """Where nnictl reaches a manager bound to ``host``."""
    return "127.0.0.1" if not host or host in ("0.0.0.0", "::") else host


def access_env(args) -> tuple[str, Optional[str], dict]:
    """(bind address, access token or None, the manager's environment) from ``--host`` / ``--no-token``.

    The token travels in the manager's environment, never on its command line (which other
    local users can read).
    """
    from nni.runtime import access

    host = (getattr(args, "host", None) or access.DEFAULT_HOST).strip()
    env = dict(os.environ)
    env.pop(access.TOKEN_ENV, None)
    if getattr(args, "no_token", False) or access.no_token_from_env():
        try:
            access.check_no_token(host, "--no-token" if getattr(args, "no_token", False) else access.NO_TOKEN_ENV)
        except ValueError as err:
            raise NnictlError(str(err)) from None
        env[access.NO_TOKEN_ENV] = "1"
        return host, None, env
    token = access.new_token()
    env[access.TOKEN_ENV] = token
    return host, token, env


# ----- checks -----


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """Raise a one-line error naming the process on ``port`` when it is busy."""
    from .ports import describe_port_owner, free_port_near, port_is_free

    if not 0 < port < 65536:
        raise NnictlError(f"--port: {port} is not a TCP port (1-65535)")
    try:
        free = port_is_free(port, host)
    except (OSError, OverflowError, UnicodeError) as err:
        raise NnictlError(f"--host: cannot bind {host!r} ({getattr(err, 'strerror', None) or err}); give an address of this machine") from None
    if free:
        return
    owner = next((r for r in all_experiments() if r.alive and r.port == port), None)
    who = f"experiment {owner.id} (pid {owner.pid})" if owner else describe_port_owner(port)
    near = free_port_near(port)
    hint = f" (e.g. --port {near})" if near else ""
    raise NnictlError(f"port {port} is already in use by {who}; choose another port with --port{hint}")


def _new_experiment_id() -> str:
    from nni.server.store import experiments_root

    taken = {r.id for r in all_experiments()}
    while True:
        eid = random_id(8)
        if eid not in taken and not (experiments_root() / eid).exists():
            return eid


# ----- the manager process -----


class ManagerProcess:
    """A started ``python -m nni.server`` and the files it writes."""

    host = "127.0.0.1"
    token: Optional[str] = None

    def __init__(self, args: list[str], log_dir: Path, port: int, url_prefix: str = "", host: str = "127.0.0.1",
                 token: Optional[str] = None, env: Optional[dict] = None) -> None:
        self.log_dir = log_dir
        self.port = port
        self.url_prefix = url_prefix
        self.host = host
        self.token = token
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / "nnictl_stdout.log"
        self.stderr_path = log_dir / "nnictl_stderr.log"
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nni.server", *args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                start_new_session=True,  # Ctrl-C in this terminal must not stop the experiment
            )

    def client(self, timeout: float = 5):
        from nni.runtime.rest_api import RestClient

        return RestClient(self.port, host=client_host(self.host), prefix=self.url_prefix, token=self.token or False, timeout=timeout)

    @property
    def urls(self) -> list[str]:
        return web_ui_urls(self.port, self.url_prefix, self.host, self.token)

    @property
    def log_files(self) -> list[Path]:
        return [self.stderr_path, self.stdout_path, self.log_dir / "nnimanager.log", self.log_dir / "dispatcher.log"]

    def progress_token(self) -> tuple[object, bool]:
        """Something that changes while the manager works, and whether it is runnable now."""
        cpu, runnable = _cpu_of_tree(self.proc.pid)
        sizes = []
        for f in self.log_files:
            try:
                sizes.append(f.stat().st_size)
            except OSError:
                sizes.append(-1)
        return (cpu, tuple(sizes)), runnable

    def wait_ready(self, ready: Callable[[dict], bool], stall_seconds: float = STALL_SECONDS) -> dict:
        """Poll ``GET /check-status`` until ``ready(status)``; raises :class:`NnictlError` if the
        manager exits or stops making progress."""
        from nni.runtime.rest_api import RestError

        client = self.client()
        started = last_progress = time.monotonic()
        last_token: object = None
        next_note = started + 10
        delay = 0.02
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.fail(f"the experiment manager exited with code {rc}")
            try:
                status = client.call("get_status")
                if ready(status):
                    return status
            except (ConnectionError, RestError):
                pass
            token, runnable = self.progress_token()
            now = time.monotonic()
            if token != last_token or runnable:
                last_token, last_progress = token, now
            elif now - last_progress > stall_seconds:
                self.kill()
                self.fail(f"the experiment manager made no progress for {stall_seconds:.0f} s and was stopped")
            if now > next_note:
                info(f"Still waiting for the experiment manager ({now - started:.0f} s; it is making progress)...")
                next_note = now + 10
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                if os.getpgid(self.proc.pid) != self.proc.pid:  # not a session leader: only the process itself
                    raise OSError
                os.killpg(self.proc.pid, signal.SIGKILL)  # the manager and its dispatcher / trials
            except OSError:
                self.proc.kill()
            self.proc.wait()

    def fail(self, reason: str) -> None:
        """Print the last lines of the manager's logs and raise a one-line error."""
        message = reason
        for path in (self.stderr_path, self.log_dir / "nnimanager.log"):
            lines = _tail(path, LOG_TAIL_LINES)
            if not lines:
                continue
            print(f"Last lines of {path}:", file=sys.stderr)
            for line in lines:
                print(f"    {line}", file=sys.stderr)
            errors = [l for l in lines if l.startswith("Error: ")]
            if errors and message == reason:
                message = f"{reason}: {errors[-1][len('Error: '):]}"
        raise NnictlError(message)

    def stop(self, timeout: float = 60) -> None:
        from nni.runtime.rest_api import RestError

        try:
            self.client().call("stop_experiment")
        except (ConnectionError, RestError):
            if self.proc.poll() is None:
                self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def _tail(path: Path, n: int) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [l for l in lines if l.strip()][-n:]


def _cpu_of_tree(pid: int) -> tuple[int, bool]:
    """CPU ticks used by ``pid`` and its children, and whether any of them is runnable."""
    total, runnable = 0, False
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return 0, False
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(entry) != pid and fields[1] != str(pid):
            continue
        total += sum(int(x) for x in fields[11:15])
        runnable = runnable or fields[0] in ("R", "D")
    return total, runnable


def _follow(manager: ManagerProcess) -> None:
    """``--foreground``: print the manager's log until it exits; Ctrl-C stops the experiment."""
    log = manager.log_dir / "nnimanager.log"
    pos = 0
    try:
        while True:
            try:
                with open(log, encoding="utf-8", errors="replace") as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos = f.tell()
            except OSError:
                chunk = ""
            if chunk:
                sys.stdout.write(chunk)
                sys.stdout.flush()
            if manager.proc.poll() is not None and not chunk:
                return
            time.sleep(0.2)
    except KeyboardInterrupt:
        info("Stopping the experiment...")
        manager.stop()
        info("Experiment stopped.")


def _print_block(experiment_id: str, manager: ManagerProcess, extra: str = "") -> None:
    print(RULE)
    print(f"The experiment id is {experiment_id}")
    print(f"The Web UI urls are: {'   '.join(manager.urls)}")
    if extra:
        print(extra)
    print(RULE)
    print()
    print(COMMANDS_TABLE.format(rule=RULE), flush=True)


def _ready_to_run(status: dict) -> bool:
    return status.get("status") != "INITIALIZED"


def _wait_early_failure(manager: ManagerProcess, status: dict) -> dict:
    """Once RUNNING, wait until a trial is active or the status changes (at most
    :data:`EARLY_FAILURE_SECONDS`), so an algorithm that fails on its first call is reported."""
    from nni.runtime.rest_api import RestError

    client = manager.client()
    deadline = time.monotonic() + EARLY_FAILURE_SECONDS
    while status.get("status") == "RUNNING" and time.monotonic() < deadline:
        try:
            stats = client.call("get_job_statistics")
            if any(s.get("trialJobStatus") in ACTIVE_STATES and s.get("trialJobNumber") for s in stats):
                return status
            time.sleep(0.05)
            status = client.call("get_status")
        except (ConnectionError, RestError):
            return status
    return status


def _after_start(manager: ManagerProcess, status: dict, experiment_id: str, verb: str) -> None:
    """Report an experiment that failed at start; its manager and web UI stay up."""
    status = _wait_early_failure(manager, status)
    if status.get("status") != "ERROR":
        return
    errors = status.get("errors") or ["unknown error"]
    first = next((line.strip() for line in str(errors[-1]).splitlines() if line.strip()), "unknown error")
    _print_block(experiment_id, manager)
    url = manager.urls[0]
    raise NnictlError(
        f"experiment {experiment_id} failed to {verb}: {first}. The web UI ({url}) and 'nnictl log stderr {experiment_id}' "
        f"show the traceback; after fixing it run 'nnictl stop {experiment_id}' and 'nnictl resume {experiment_id}'"
    )


# ----- commands -----


def create(args) -> int:
    from nni.experiment.config import ExperimentConfig

    config_file = Path(args.config).expanduser()
    if not config_file.is_file():
        raise NnictlError(f"--config: file not found: {config_file}")
    config = ExperimentConfig.load(config_file)  # ConfigError (a ValueError) names the field
    canon = config.to_canonical_dict()
    if args.debug:
        canon["debug"] = True
    host, token, env = access_env(args)
    check_port(args.port, host)
    experiment_id = _new_experiment_id()
    exp_dir = Path(os.path.expanduser(canon["experimentWorkingDirectory"])) / experiment_id
    from nni.runtime.access import private_dir

    private_dir(exp_dir)  # owner only: the store and the access token go here
    config_json = exp_dir / "experiment_config.json"
    from nni.runtime.experiment_profile import write_config_file

    write_config_file(canon, config_json)  # SSH secrets masked; they go to an owner-only file beside it
    platforms = [t.get("platform", "?") for t in canon["trainingService"]] if isinstance(canon["trainingService"], list) \
        else [canon["trainingService"].get("platform", "?")]
    info("Starting restful server...")
    cmd = ["--config", str(config_json), "--port", str(args.port), "--id", experiment_id, "--host", host]
    if args.debug:
        cmd.append("--debug")
    if args.url_prefix:
        cmd += ["--url-prefix", args.url_prefix]
    if token is None:
        cmd.append("--no-token")
    manager = ManagerProcess(cmd, exp_dir / "log", args.port, args.url_prefix or "", host, token, env)
    manager.wait_ready(lambda s: True)
    info("Successfully started Restful server!")
    info(f"Setting {','.join(platforms)} config...")
    info(f"Successfully set {','.join(platforms)} config!")
    info("Starting experiment...")
    status = manager.wait_ready(_ready_to_run)
    _after_start(manager, status, experiment_id, "start")
    info("Successfully started experiment!")
    _print_block(experiment_id, manager)
    if args.foreground:
        _follow(manager)
    return 0


def _target(args, for_what: str) -> tuple[str, Optional[Path], Optional[ExperimentRef]]:
    """(experiment id, explicit experiment folder or None, registry entry or None)."""
    if args.experiment_dir:
        folder = Path(args.experiment_dir).expanduser().resolve()
        from nni.server.store import ExperimentStore, store_path

        if not store_path(folder).is_file():
            raise NnictlError(f"--experiment_dir: {folder} is not an experiment folder (no db/nni.sqlite)")
        store = ExperimentStore(store_path(folder), readonly=True)
        try:
            stored_id = store.experiment_row().id
        finally:
            store.close()
        if args.id and args.id != stored_id:
            raise NnictlError(f"--experiment_dir: {folder} holds experiment {stored_id}, not {args.id}")
        ref = next((r for r in all_experiments() if r.id == stored_id), None)
        return stored_id, folder, ref
    if not args.id:
        raise NnictlError(f"give the id of the experiment to {for_what} (or its folder with --experiment_dir)")
    ref = find(args.id)
    return ref.id, None, ref


def _relaunch(args, mode: str) -> int:
    verb = {"resume": "resume", "view": "view"}[mode]
    experiment_id, folder, ref = _target(args, verb)
    if ref is not None and ref.alive:
        raise NnictlError(f"experiment {experiment_id} is already running on port {ref.port}; stop it first with 'nnictl stop {experiment_id}'")
    host, token, env = access_env(args)
    check_port(args.port, host)
    exp_dir = folder or (ref.directory if ref else None)
    cmd = [f"--{mode}", experiment_id, "--port", str(args.port), "--host", host]
    if token is None:
        cmd.append("--no-token")
    if folder is not None:
        cmd += ["--experiment-dir", str(folder)]
    if getattr(args, "debug", False):
        cmd.append("--debug")
    if getattr(args, "url_prefix", None):
        cmd += ["--url-prefix", args.url_prefix]
    info("Starting restful server...")
    manager = ManagerProcess(cmd, Path(exp_dir) / "log", args.port, getattr(args, "url_prefix", None) or "", host, token, env)
    if mode == "view":
        manager.wait_ready(lambda s: True)
        info("Successfully started Restful server!")
        _print_block(experiment_id, manager,
                     extra=f"The experiment is viewed read-only; stop viewing with 'nnictl stop {experiment_id}'")
    else:
        manager.wait_ready(lambda s: True)
        info("Successfully started Restful server!")
        info("Resuming experiment...")
        status = manager.wait_ready(_ready_to_run)
        _after_start(manager, status, experiment_id, "resume")
        info("Successfully resumed experiment!")
        _print_block(experiment_id, manager)
    if getattr(args, "foreground", False):
        _follow(manager)
    return 0


def resume(args) -> int:
    return _relaunch(args, "resume")


def view(args) -> int:
    return _relaunch(args, "view")


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait until process ``pid`` is gone; ``True`` if it exited in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)
