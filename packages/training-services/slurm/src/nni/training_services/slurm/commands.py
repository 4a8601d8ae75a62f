"""SLURM's own commands, called asynchronously: ``sbatch``, ``squeue``, ``scontrol``, ``scancel``.

Also what goes into a runner job: the sbatch options of a :class:`~.config.SlurmConfig` and the
batch script. Every call is timed (:attr:`SlurmCommands.stats`), so the benchmark can say how
much of an experiment went to talking to SLURM.
"""
from __future__ import annotations

import asyncio
import math
import os
import shlex
import shutil
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

__all__ = [
    "SlurmError",
    "SlurmCommands",
    "JobInfo",
    "ACTIVE_JOB_STATES",
    "slurm_unavailable_reason",
    "format_time_limit",
    "sbatch_options",
    "batch_script",
    "parse_squeue",
    "parse_scontrol_job",
]

#: Job states in which a job holds or waits for resources (squeue's long names).
ACTIVE_JOB_STATES = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "RESIZING",
    "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD",
})

REQUIRED_COMMANDS = ("sbatch", "squeue", "scontrol", "scancel")


class SlurmError(RuntimeError):
    """A SLURM command failed; the message is one line (the command and SLURM's error)."""


def slurm_unavailable_reason() -> Optional[str]:
    """Why SLURM's commands cannot be used here, or ``None`` when they are on ``PATH``."""
    missing = [c for c in REQUIRED_COMMANDS if shutil.which(c) is None]
    if missing:
        return (f"SLURM's {', '.join(missing)} not found on PATH: run the experiment where SLURM's commands work "
                "(a login node), e.g. after installing slurm-client")
    return None


@dataclass
class JobInfo:
    """One job as squeue / scontrol show it."""

    job_id: str
    state: str  # PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT, PREEMPTED, FAILED, NODE_FAIL ...
    reason: str = ""
    node: str = ""
    exit_code: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_JOB_STATES

    def describe(self) -> str:
        reason = f", {self.reason}" if self.reason and self.reason not in ("None", "(null)") else ""
        return f"{self.state}{reason}"


@dataclass
class CommandStats:
    """Calls and seconds spent per command."""

    calls: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def _one_line(text: str, limit: int = 300) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


class SlurmCommands:
    """Runs SLURM commands without blocking the event loop.

    Args:
        env: the environment of the commands (default: this process's; ``SLURM_CONF`` there
            selects the cluster).
        timeout: seconds one command may take.
    """

    def __init__(self, env: Optional[dict] = None, timeout: float = 60.0) -> None:
        self.env = env
        self.timeout = timeout
        self.stats = CommandStats()

    async def run(self, argv: Sequence[str], env: Optional[dict] = None) -> tuple[int, str, str]:
        """``(returncode, stdout, stderr)`` of one command; :class:`SlurmError` if it cannot run."""
        start = time.perf_counter()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env if env is not None else self.env)
        except OSError as err:
            raise SlurmError(f"{argv[0]}: cannot run it ({err.strerror or err})") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise SlurmError(f"{argv[0]}: no answer within {self.timeout:g} s (is slurmctld up?)") from None
        finally:
            self.stats.add(os.path.basename(argv[0]), time.perf_counter() - start)
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    async def sbatch(self, options: Sequence[str], script: str, env: Optional[dict] = None, test_only: bool = False) -> str:
        """Submit ``script`` (a file) with ``options``; returns the job id.

        ``test_only``: only check the request (``--test-only``); returns ``""``."""
        argv = ["sbatch", "--parsable", *(["--test-only"] if test_only else []), *options, script]
        rc, out, err = await self.run(argv, env)
        if rc != 0:
            raise SlurmError(f"sbatch refused the runner job: {_one_line(err or out) or f'exit code {rc}'}")
        if test_only:
            return ""
        job_id = out.strip().split(";")[0]
        if not job_id.isdigit():
            raise SlurmError(f"sbatch: unexpected answer {_one_line(out)!r} (expected a job id)")
        return job_id

    async def squeue(self, job_ids: Iterable[str]) -> dict[str, JobInfo]:
        """The jobs of ``job_ids`` that SLURM still knows (finished ones for ``MinJobAge``)."""
        ids = sorted(set(job_ids), key=int)
        if not ids:
            return {}
        rc, out, err = await self.run(["squeue", "--noheader", "--states=all", "--format=%i|%T|%r|%N", f"--jobs={','.join(ids)}"])
        if rc != 0:
            if "invalid job id" in err.lower():
                return {}  # every one of them is gone
            raise SlurmError(f"squeue failed: {_one_line(err) or f'exit code {rc}'}")
        return parse_squeue(out)

    async def job(self, job_id: str) -> Optional[JobInfo]:
        """``scontrol show job``: the job, or ``None`` once SLURM forgot it."""
        rc, out, err = await self.run(["scontrol", "--oneliner", "show", "job", str(job_id)])
        if rc != 0:
            if "invalid job id" in err.lower():
                return None
            raise SlurmError(f"scontrol show job {job_id} failed: {_one_line(err) or f'exit code {rc}'}")
        return parse_scontrol_job(out)

    async def scancel(self, job_ids: Iterable[str]) -> None:
        ids = sorted(set(job_ids), key=int)
        if not ids:
            return
        rc, out, err = await self.run(["scancel", *ids])
        if rc != 0 and "invalid job id" not in err.lower() and "already completing" not in err.lower():
            raise SlurmError(f"scancel failed: {_one_line(err) or f'exit code {rc}'}")


def parse_squeue(text: str) -> dict[str, JobInfo]:
    """Lines of ``squeue --format=%i|%T|%r|%N`` -> job id -> :class:`JobInfo`."""
    jobs = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 2 or not parts[0]:
            continue
        parts += [""] * (4 - len(parts))
        jobs[parts[0]] = JobInfo(parts[0], parts[1].strip().upper(), parts[2].strip(), parts[3].strip())
    return jobs


def parse_scontrol_job(text: str) -> Optional[JobInfo]:
    """``scontrol --oneliner show job`` output -> :class:`JobInfo` (``None`` when empty)."""
    fields = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep and key not in fields:
            fields[key] = value
    if "JobId" not in fields:
        return None
    node = fields.get("NodeList", "")
    return JobInfo(fields["JobId"], fields.get("JobState", "").upper(), fields.get("Reason", ""),
                   "" if node == "(null)" else node, fields.get("ExitCode", ""))


def format_time_limit(seconds: float) -> str:
    """Seconds -> sbatch's ``--time`` (``D-HH:MM:SS``), rounded up to a whole second."""
    total = max(1, int(math.ceil(seconds)))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def sbatch_options(config: dict) -> list[str]:
    """The per-job resource options of a canonical ``SlurmConfig`` mapping (then ``sbatchArgs``)."""
    opts = ["--nodes=1", "--ntasks=1", f"--cpus-per-task={config.get('cpusPerTrial') or 1}"]
    for key, option in (("partition", "--partition"), ("account", "--account"), ("qos", "--qos")):
        if config.get(key):
            opts.append(f"{option}={config[key]}")
    if config.get("timeLimit"):
        opts.append(f"--time={format_time_limit(config['timeLimit'])}")
    if config.get("gpusPerTrial"):
        opts.append(f"--gres=gpu:{int(config['gpusPerTrial'])}")
    if config.get("memoryPerTrial"):
        opts.append(f"--mem={int(config['memoryPerTrial'])}M")
    return opts + [str(a) for a in config.get("sbatchArgs") or []]


def batch_script(runner_argv: Sequence[str], code_dir: str, setup_script: Optional[str] = None,
                 python_path: Optional[str] = None, comment: str = "") -> str:
    """The batch script of a runner job: go to the code, run the setup lines, exec the runner.

    The runner's token is not in it: it comes with the environment sbatch exports.
    """
    q = shlex.quote
    lines = ["#!/bin/bash"]
    if comment:
        lines.append(f"# {comment}")
    lines += ["set -e", f"cd {q(code_dir)}"]
    if python_path:
        lines.append(f"export PATH={q(python_path)}:\"$PATH\"")
    if setup_script and setup_script.strip():
        lines += ["# setupScript", setup_script.rstrip("\n"), "# end of setupScript"]
    lines += ["set +e", "exec " + " ".join(q(a) for a in runner_argv), ""]
    return "\n".join(lines)
