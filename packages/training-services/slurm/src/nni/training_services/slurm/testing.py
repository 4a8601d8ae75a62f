"""A real single-node SLURM cluster for tests: munged, slurmctld and slurmd on private ports.

Uses Debian's ``slurm-wlm`` and ``munge`` (``apt-get install slurm-wlm munge``). Everything
lives in one temporary folder (``slurm.conf``, the munge key and socket, state, spool, logs);
commands find the cluster through ``SLURM_CONF`` (:attr:`SlurmCluster.env`)::

    cluster = SlurmCluster()
    cluster.start()          # returns once the node is idle
    subprocess.run(["sbatch", "--wrap", "true"], env=cluster.env)
    cluster.stop()           # cancels every job, stops the daemons, removes the folder

As root, munged runs as the ``munge`` user and the SLURM daemons as root; otherwise all of them
run as the current user (then jobs run as that user too). The node is configured with
``SlurmdParameters=config_overrides`` so that it offers ``cpus`` CPUs whatever the machine has.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

__all__ = ["SlurmCluster", "cluster_unavailable_reason"]

_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")


def _find(name: str) -> Optional[str]:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None)


def cluster_unavailable_reason() -> Optional[str]:
    """Why a test cluster cannot start here (``None``: it can)."""
    missing = [b for b in _BINARIES if _find(b) is None]
    if missing:
        return f"SLURM test cluster: {', '.join(missing)} not installed (apt-get install slurm-wlm munge)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("munge")
        except KeyError:
            return "SLURM test cluster: running as root but there is no 'munge' user to run munged as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    """One node (this machine) and one partition ``debug``.

    Args:
        cpus: CPUs the node offers (``CR_CPU``: jobs are packed by CPU).
        memory_mb: the node's ``RealMemory``.
        root: the folder to use (default: a new one under the system temp folder; it must be
            reachable by the ``munge`` user, so not below a private ``tmp_path``).
        fast_scheduling: ``SchedulerParameters=sched_interval=1``: a job starts about 1 s after
            sbatch instead of Debian's default 2-3 s (tests are faster; the benchmark reports both).
    """

    def __init__(self, cpus: int = 8, memory_mb: int = 4096, root: Optional[str] = None, fast_scheduling: bool = True) -> None:
        self.cpus = cpus
        self.fast_scheduling = fast_scheduling
        self.memory_mb = memory_mb
        self.root = Path(root or tempfile.mkdtemp(prefix="nni-slurm-"))
        self.conf = self.root / "slurm.conf"
        self.node = socket.gethostname().split(".")[0]
        self.partition = "debug"
        self._procs: list[subprocess.Popen] = []

    @property
    def env(self) -> dict:
        """This process's environment with ``SLURM_CONF`` pointing at the cluster."""
        return dict(os.environ, SLURM_CONF=str(self.conf))

    def _write_config(self) -> tuple[str, str]:
        root = self.root
        os.chmod(root, 0o755)
        user = pwd.getpwuid(os.geteuid()).pw_name
        munge_user = "munge" if os.geteuid() == 0 else user
        mu = pwd.getpwnam(munge_user)
        munge_dir = root / "munge"
        munge_dir.mkdir(exist_ok=True)
        key = root / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        for path, mode in ((munge_dir, 0o755), (key, 0o400)):
            if os.geteuid() == 0:
                os.chown(path, mu.pw_uid, mu.pw_gid)
            os.chmod(path, mode)
        for sub in ("state", "spool", "log"):
            (root / sub).mkdir(exist_ok=True)
        ctld_port, slurmd_port = _free_port(), _free_port()
        self.conf.write_text("\n".join([
            "ClusterName=nnitest",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            f"SlurmUser={user}",
            f"SlurmdUser={user}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={munge_dir}/munge.sock",
            f"StateSaveLocation={root}/state",
            f"SlurmdSpoolDir={root}/spool",
            f"SlurmctldPidFile={root}/slurmctld.pid",
            f"SlurmdPidFile={root}/slurmd.pid",
            f"SlurmctldLogFile={root}/log/slurmctld.log",
            f"SlurmdLogFile={root}/log/slurmd.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SchedulerType=sched/builtin",
            *(["SchedulerParameters=sched_interval=1,sched_min_interval=0"] if self.fast_scheduling else []),
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "JobAcctGatherType=jobacct_gather/none",
            "MpiDefault=none",
            "MailProg=/bin/true",
            "ReturnToService=2",
            "SlurmdParameters=config_overrides",
            "MinJobAge=300",
            "KillWait=2",
            "InactiveLimit=0",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        return munge_user, str(munge_dir)

    def _spawn(self, argv: list[str], log: str, user: Optional[str] = None) -> subprocess.Popen:
        out = open(self.root / "log" / log, "ab")
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=self.env, user=user, start_new_session=True)
        finally:
            out.close()
        self._procs.append(proc)
        return proc

    def start(self, timeout: float = 60.0) -> None:
        """Start munged, slurmctld and slurmd; return once the node is idle."""
        reason = cluster_unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        munge_user, munge_dir = self._write_config()
        self._spawn([_find("munged"), "--foreground", f"--socket={munge_dir}/munge.sock", f"--key-file={self.root}/munge.key",
                     f"--pid-file={munge_dir}/munged.pid", f"--log-file={munge_dir}/munged.log", f"--seed-file={munge_dir}/munged.seed"],
                    "munged.out", user=munge_user if os.geteuid() == 0 else None)
        self._wait(lambda: os.path.exists(f"{munge_dir}/munge.sock"), 15, "munged's socket")
        self._spawn([_find("slurmctld"), "-D", "-f", str(self.conf)], "slurmctld.out")
        self._spawn([_find("slurmd"), "-D", "-f", str(self.conf)], "slurmd.out")
        self._wait(self._node_idle, timeout, "the SLURM node to become idle")

    def _node_idle(self) -> bool:
        for proc in self._procs:
            if proc.poll() is not None:
                raise RuntimeError(f"SLURM test cluster: {proc.args[0]} exited with {proc.returncode}; see {self.root}/log")
        out = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True, env=self.env).stdout
        return out.strip() == "idle"

    def _wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                logs = "; ".join(p.name for p in (self.root / "log").glob("*"))
                raise RuntimeError(f"SLURM test cluster: timed out waiting for {what} (logs in {self.root}/log: {logs})")
            time.sleep(0.1)

    def active_jobs(self) -> list[str]:
        """Ids of jobs that are pending, running or completing."""
        out = subprocess.run(["squeue", "--noheader", "--format=%i"], capture_output=True, text=True, env=self.env).stdout
        return out.split()

    def squeue(self) -> str:
        """``squeue``'s output (for assertion messages)."""
        return subprocess.run(["squeue"], capture_output=True, text=True, env=self.env).stdout

    def cancel_all(self, timeout: float = 30.0) -> None:
        """Cancel every job and wait until squeue shows none."""
        jobs = self.active_jobs()
        if jobs:
            subprocess.run(["scancel", *jobs], capture_output=True, env=self.env)
            try:
                self._wait(lambda: not self.active_jobs(), timeout, "the jobs to end")
            except RuntimeError:
                pass

    def stop(self) -> None:
        """Cancel every job, stop the daemons (the ones this object started), remove the folder."""
        try:
            if any(p.poll() is None for p in self._procs[1:]):
                self.cancel_all()
        finally:
            for proc in reversed(self._procs):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(5)
            self._procs.clear()
            shutil.rmtree(self.root, ignore_errors=True)
