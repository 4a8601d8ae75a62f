"""A real Ray cluster on 127.0.0.1 for tests and benchmarks (``ray start --head``).

Token authentication is on (``RAY_AUTH_MODE=token`` with a fresh token): :meth:`RayCluster.env`
is what a driver needs to join it. :meth:`RayCluster.stop` kills this cluster's processes only
(found by a marker in their environment), never other clusters on the machine as ``ray stop``
would.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

__all__ = ["RayCluster", "processes_with_env", "ray_unavailable_reason"]


def ray_unavailable_reason() -> Optional[str]:
    """Why a Ray cluster cannot be started here, or ``None``."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        return "Ray is not installed (pip install 'nni-ts-ray[ray]')"
    if not Path(sys.executable).with_name("ray").exists() and shutil.which("ray") is None:
        return "the `ray` command is not installed"
    return None


def processes_with_env(marker: str) -> list[int]:
    """Live processes whose environment contains ``marker`` (``NAME=value``)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker.encode() not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        pids.append(int(entry))
    return pids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RayCluster:
    """One head node on 127.0.0.1 with ``cpus`` CPUs and custom ``resources``.

    Args:
        cpus: ``--num-cpus``.
        resources: ``--resources`` (e.g. ``{"nni_slot": 2}``).
        attempts: tries of ``ray start`` (Ray gives its raylet 30 s to register; a loaded
            machine may miss that).
    """

    def __init__(self, cpus: int = 2, resources: Optional[dict] = None, attempts: int = 3) -> None:
        self.cpus = cpus
        self.resources = dict(resources or {})
        self.attempts = attempts
        self.token = secrets.token_hex(16)
        self.marker = f"NNI_TEST_RAY_CLUSTER={secrets.token_hex(6)}"
        self.port = 0
        self._temp = ""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict:
        """Variables a driver needs to join: the token, and Ray's loopback mode (the node is 127.0.0.1)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}

    def start(self) -> "RayCluster":
        self._temp = tempfile.mkdtemp(prefix="nray", dir="/tmp")  # Ray's socket paths must stay short
        env = dict(os.environ, **self.env())
        env.pop("RAY_ADDRESS", None)
        name, value = self.marker.split("=", 1)
        env[name] = value
        ray = str(Path(sys.executable).with_name("ray"))
        if not os.path.exists(ray):
            ray = shutil.which("ray") or "ray"
        err = ""
        for _ in range(self.attempts):
            self.port = _free_port()
            cmd = [ray, "start", "--head", f"--port={self.port}", "--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}",
                   "--include-dashboard=false", f"--temp-dir={self._temp}", "--disable-usage-stats"]
            if self.resources:
                cmd.append(f"--resources={json.dumps(self.resources)}")
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
            if proc.returncode == 0:
                return self
            err = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            err = err[0]
            self._kill()
        self.stop()
        raise RuntimeError(f"ray start failed {self.attempts} times; the last error: {err}")

    def query(self) -> tuple[dict, dict]:
        """(available, total) resources, as a separate driver sees them."""
        code = ("import json, ray\nray.init(address=%r, log_to_driver=False, logging_level='ERROR')\n"
                "print(json.dumps([ray.available_resources(), ray.cluster_resources()]))" % self.address)
        env = dict(os.environ, **self.env())
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"cannot query the Ray cluster at {self.address}: {proc.stderr.strip()[-500:]}")
        available, total = json.loads(proc.stdout.strip().splitlines()[-1])
        return available, total

    def _kill(self) -> None:
        for pid in processes_with_env(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def stop(self) -> None:
        self._kill()
        if self._temp:
            shutil.rmtree(self._temp, ignore_errors=True)

    def __enter__(self) -> "RayCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
