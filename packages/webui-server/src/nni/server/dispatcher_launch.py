"""Start the dispatcher as early as possible (standard library only).

``python -m nni.server`` calls :func:`spawn_early` before importing aiohttp and the rest of the
manager, so the dispatcher's own start (importing the tuner, numpy...) overlaps the manager's.
:class:`nni.server.dispatcher_client.DispatcherClient` then adopts the process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class EarlyDispatcher:
    popen: subprocess.Popen
    read_fd: int  # manager reads the dispatcher's commands here
    write_fd: int  # manager writes commands here

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def dispatcher_env(config: dict, experiment_dir: str) -> dict:
    log_dir = os.path.join(experiment_dir, "log")
    env = {"NNI_LOG_DIRECTORY": log_dir, "NNI_CHECKPOINT_DIRECTORY": os.path.join(experiment_dir, "checkpoint")}
    if config.get("includeIntermediateResults") or (config.get("tuner") or {}).get("includeIntermediateResults"):
        env["NNI_INCLUDE_INTERMEDIATE_RESULTS"] = "true"
    return env


PARAMS_FILE = "dispatcher_params.json"


def write_dispatcher_params(config: dict, log_dir: str) -> str:
    """Write the dispatcher's ``--exp_params_file`` into the experiment's ``log/``; its path.

    A file, not the command line: Linux caps one argument at 128 KB ("Argument list too long")
    and other local users can read command lines. The search space is left out: the dispatcher
    gets it through the pipe (``IN`` / ``US``), so a 50 MB space is not written twice. Written
    atomically (a dispatcher never reads half a file), owner-only.
    """
    os.makedirs(log_dir, exist_ok=True)
    params = {k: v for k, v in config.items() if k not in ("searchSpace", "searchSpaceFile")}
    path = os.path.join(log_dir, PARAMS_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(params, f)
    os.replace(tmp, path)
    return path


def dispatcher_command(params_file: str, fds: str) -> list:
    """The dispatcher's command line."""
    return [sys.executable, "-m", "nni", "--exp_params_file", params_file, "--command_fds", fds]


def spawn_early(config: dict, experiment_dir: str) -> EarlyDispatcher:
    log_dir = os.path.join(experiment_dir, "log")
    os.makedirs(log_dir, exist_ok=True)
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    params_file = write_dispatcher_params(config, log_dir)
    env = dict(os.environ)
    env.update(dispatcher_env(config, experiment_dir))
    with open(os.path.join(log_dir, "dispatcher.log"), "ab") as log:
        popen = subprocess.Popen(
            dispatcher_command(params_file, f"{to_child_r},{from_child_w}"),
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=log_dir,
            env=env,
            # its own session, so its own scheduling group (kernel autogroup): on a busy machine the
            # tuner's CPU does not come out of the manager's share; it exits on EOF of its commands
            start_new_session=True,
        )
    os.close(to_child_r)
    os.close(from_child_w)
    return EarlyDispatcher(popen, from_child_r, to_child_w)
