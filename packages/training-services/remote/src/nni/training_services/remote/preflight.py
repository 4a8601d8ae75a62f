"""Checks a remote machine before any trial is sent there.

``pythonPath`` is a folder (or several, ``:``-separated) put in front of ``PATH``, as the docs
say ("This path will be inserted at the front of PATH"); the interpreter is then the first
``python3`` (else ``python``) found on that ``PATH``.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from nni.runtime.distributions import core_version

from .ssh import RemoteMachineError, SshMachine

__all__ = ["MachineInfo", "preflight", "RUNNER_MODULE"]

RUNNER_MODULE = "nni.training_services.local.runner"

# Runs on the remote interpreter: facts as one JSON line; must work on Python >= 3.7 without nni.
_PROBE = r'''
import json, platform, shutil, subprocess, sys
out = {"python": sys.executable, "version": platform.python_version(), "nni": None, "runner": False, "gpus": None}
try:
    from importlib.metadata import version
    out["nni"] = version("nni-core")
except Exception:
    pass
try:
    import importlib.util
    out["runner"] = importlib.util.find_spec(sys.argv[1]) is not None
except Exception:
    pass
smi = shutil.which("nvidia-smi")
if smi:
    try:
        res = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=20)
        if res.returncode == 0:
            out["gpus"] = len([l for l in res.stdout.decode().splitlines() if l.strip()])
    except Exception:
        pass
print("NNI-PROBE " + json.dumps(out))
'''


@dataclass
class MachineInfo:
    """What :func:`preflight` found on a machine."""

    name: str                 # user@host:port
    python: str               # the interpreter command to start (found on PATH; may be a wrapper script)
    python_version: str       # e.g. "3.11.7"
    nni_version: str          # nni-core on the machine
    runner_module: str        # the trial runner module, importable there
    gpu_count: int = 0        # GPUs nvidia-smi lists (0 without nvidia-smi)
    extra: dict = field(default_factory=dict)


def _same_minor(a: str, b: str) -> bool:
    return a.split(".")[:2] == b.split(".")[:2]


async def preflight(machine: SshMachine, *, manager_version: str | None = None, runner_module: str = RUNNER_MODULE,
                    timeout: float = 60.0) -> MachineInfo:
    """Connect (if needed) and check Python, nni-core and the trial runner on ``machine``.

    Args:
        machine: the machine; connected here when it is not.
        manager_version: nni-core version the manager runs (default: this process's); the
            machine's must have the same major.minor.
        runner_module: the module the trial runner is started from.
        timeout: seconds for the remote checks.

    Raises:
        RemoteMachineError: (:class:`SshError` for connection faults) one line naming the machine and the fix.
    """
    await machine.connect()
    name = machine.name
    where = f" in pythonPath {machine.python_path}" if machine.python_path else " on the login PATH"
    rc, out, _ = await machine.run("command -v python3 || command -v python", timeout=timeout)
    python = out.strip().splitlines()[0] if rc == 0 and out.strip() else ""
    if not python:
        raise RemoteMachineError(f"{name}: python not found{where}; install Python 3 there or set pythonPath "
                                 f"to the folder holding python3", "python")
    rc, out, err = await machine.run(f"{_quote(python)} -c {_quote(_PROBE)} {_quote(runner_module)}", timeout=timeout)
    line = next((ln for ln in out.splitlines() if ln.startswith("NNI-PROBE ")), None)
    if line is None:
        detail = (err.strip().splitlines() or ["no output"])[-1][:200]
        raise RemoteMachineError(f"{name}: {python} does not run ({detail}); set pythonPath to a working Python 3 "
                                 f"environment", "python")
    facts = json.loads(line[len("NNI-PROBE "):])
    wanted = manager_version or core_version()
    if facts["nni"] is None:
        raise RemoteMachineError(f"{name}: nni is not installed for {facts['python']}; install nni-core {wanted} "
                                 f"and nni-ts-local there (pip install), or set pythonPath to an environment "
                                 f"that has them", "nni")
    if not _same_minor(facts["nni"], wanted):
        raise RemoteMachineError(f"{name}: nni-core {facts['nni']} is installed for {facts['python']} but the "
                                 f"manager runs {wanted}; install the same major.minor version there", "nni")
    if not facts["runner"]:
        raise RemoteMachineError(f"{name}: the trial runner {runner_module} is not importable by {facts['python']}; "
                                 f"install nni-ts-local {wanted} there", "nni")
    return MachineInfo(name=name, python=python, python_version=facts["version"], nni_version=facts["nni"],
                       runner_module=runner_module, gpu_count=facts["gpus"] or 0,
                       extra={"executable": facts["python"]})


def _quote(text: str) -> str:
    return shlex.quote(text)
