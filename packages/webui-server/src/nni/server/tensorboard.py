"""TensorBoard tasks started from the web UI for one or more trials.

A trial writes its TensorBoard logs to ``$NNI_OUTPUT_DIR/tensorboard`` (NNI's convention); a
task runs ``python -m tensorboard.main --logdir_spec <SequenceID-TrialID>:<dir>,...`` on a free
port of the manager's host. Tasks are NNI's ``TensorboardTaskInfo`` dicts:
``{id, status, trialJobIdList, trialLogDirectoryList, pid, port}``. ``tensorboard`` is an
optional dependency: without it, starting a task fails with a message saying how to install it.
"""
from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import secrets
import socket
import sys
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

_logger = logging.getLogger("nni.server.tensorboard")

NOT_INSTALLED = ("TensorBoard is not installed in the manager's Python environment "
                 f"({sys.executable}); install it with 'pip install tensorboard' and try again")


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class TensorboardTask:
    id: str
    trial_ids: list[str]
    log_dirs: list[str]
    names: list[str]
    port: int = 0
    status: str = "DOWNLOADING_DATA"
    process: Optional[asyncio.subprocess.Process] = field(default=None, repr=False)
    log_path: Optional[Path] = None

    def info(self) -> dict:
        if self.process is not None and self.process.returncode is not None and self.status == "RUNNING":
            self.status = "ERROR" if self.process.returncode else "STOPPED"
        return {
            "id": self.id,
            "status": self.status,
            "trialJobIdList": list(self.trial_ids),
            "trialLogDirectoryList": list(self.log_dirs),
            "pid": self.process.pid if self.process is not None else None,
            "port": self.port,
        }


_MANAGERS: "weakref.WeakSet[TensorboardManager]" = weakref.WeakSet()


async def stop_every_task() -> None:
    """Stop the TensorBoard processes of every manager of this process (at shutdown)."""
    for manager in list(_MANAGERS):
        await manager.stop_all()


class TensorboardManager:
    """Starts and stops the TensorBoard processes of one manager.

    Args:
        log_dir: the experiment's ``log/`` folder (each task logs to ``tensorboard-<id>.log``).
        host: address TensorBoard binds (the manager's own).
    """

    def __init__(self, log_dir: Path, host: str = "127.0.0.1") -> None:
        self.log_dir = Path(log_dir)
        self.host = host
        self.tasks: dict[str, TensorboardTask] = {}
        _MANAGERS.add(self)

    def list(self) -> list[dict]:
        return [t.info() for t in self.tasks.values()]

    def get(self, task_id: str) -> Optional[dict]:
        task = self.tasks.get(task_id)
        return task.info() if task else None

    async def start(self, trials: list[tuple[str, int, str]]) -> dict:
        """Start (or return the running) task for ``trials``: ``(trial_id, sequence_id, output_dir)``.

        Raises:
            RuntimeError: tensorboard is not installed.
        """
        if not tensorboard_available():
            raise RuntimeError(NOT_INSTALLED)
        ids = [t[0] for t in trials]
        for task in self.tasks.values():
            if task.trial_ids == ids and task.info()["status"] == "RUNNING":
                return task.info()
        names = [f"{seq}-{tid}" for tid, seq, _ in trials]
        dirs = [str(Path(out) / "tensorboard") for _, _, out in trials]
        task = TensorboardTask(id=secrets.token_hex(4), trial_ids=ids, log_dirs=dirs, names=names)
        self.tasks[task.id] = task
        await self._launch(task)
        return task.info()

    async def _launch(self, task: TensorboardTask) -> None:
        for d in task.log_dirs:
            os.makedirs(d, exist_ok=True)  # TensorBoard shows an empty run rather than failing
        task.port = _free_port(self.host)
        spec = ",".join(f"{n}:{d}" for n, d in zip(task.names, task.log_dirs))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        task.log_path = self.log_dir / f"tensorboard-{task.id}.log"
        log = open(task.log_path, "ab")
        try:
            task.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tensorboard.main", "--logdir_spec", spec,
                "--port", str(task.port), "--host", self.host,
                stdout=log, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            log.close()
        task.status = "RUNNING"
        _logger.info("TensorBoard %s for %s on port %s (pid %s)", task.id, task.names, task.port, task.process.pid)

    async def restart(self, task_id: str) -> Optional[dict]:
        task = self.tasks.get(task_id)
        if task is None:
            return None
        if task.info()["status"] != "RUNNING":
            if not tensorboard_available():
                raise RuntimeError(NOT_INSTALLED)
            await self._launch(task)
        return task.info()

    async def stop(self, task_id: str) -> Optional[dict]:
        task = self.tasks.get(task_id)
        if task is None:
            return None
        await self._terminate(task)
        return task.info()

    async def stop_all(self) -> list[dict]:
        for task in list(self.tasks.values()):
            await self._terminate(task)
        return self.list()

    async def _terminate(self, task: TensorboardTask) -> None:
        proc = task.process
        if proc is not None and proc.returncode is None:
            task.status = "STOPPING"
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        task.status = "STOPPED"
