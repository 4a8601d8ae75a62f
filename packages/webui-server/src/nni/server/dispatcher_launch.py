"""Start the dispatcher as early as possible (standard library only).

``python -m nni.server`` calls :func:`spawn_early` before importing aiohttp and the rest of the
manager, so the dispatcher's own start (importing the tuner, numpy...) overlaps the manager's.
:class:`nni.server.dispatcher_client.DispatcherClient` then adopts the process.
"""
from __future__ import annotations

import base64
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


def spawn_early(config: dict, experiment_dir: str) -> EarlyDispatcher:
    log_dir = os.path.join(experiment_dir, "log")
    os.makedirs(log_dir, exist_ok=True)
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    params = base64.b64encode(json.dumps(config).encode("utf-8")).decode("ascii")
    env = dict(os.environ)
    env.update(dispatcher_env(config, experiment_dir))
    with open(os.path.join(log_dir, "dispatcher.log"), "ab") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "nni", "--exp_params", params, "--command_fds", f"{to_child_r},{from_child_w}"],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=log_dir,
            env=env,
        )
    os.close(to_child_r)
    os.close(from_child_w)
    return EarlyDispatcher(popen, from_child_r, to_child_w)
