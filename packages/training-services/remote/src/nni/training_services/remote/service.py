"""The ``remote`` training service: trials on machines reached over SSH.

At :meth:`~RemoteTrainingService.start`, every machine of ``machineList`` is connected,
checked (:func:`~.preflight.preflight`: Python, nni-core, the trial runner; one line naming the
machine and the fix when something is wrong, before any trial runs) and given the trial code
(``.nniignore`` and the docs' limits, :func:`~.upload.upload_code`).

On a machine, everything lives under ``~/nni-experiments/<experiment id>/`` (the remote user's
home): ``envs/<host>_<port>/code`` (this machine's copy of the code; one per machine so that two
machines sharing a home do not overwrite each other's) and ``trials/<trial id>/`` (the trial's
files, as on the local platform). When a trial ends, its ``stdout``, ``stderr`` and
``trial.log`` are copied back into the trial's folder on the manager's machine.

Reuse mode (the docs' default, ``reuseMode: true``): one long-lived trial runner per machine
(``python -m nni.training_services.local.runner``, see :mod:`nni.runtime.runner_protocol`) is
started on an SSH exec channel; trials are handed to it and its events come back on the same
channel, authenticated by SSH itself (no port is opened on the manager, ``nniManagerIp`` is not
needed). Non-reuse mode: one runner started with ``--single`` per trial, on its own channel.

Faults: the runner stops its trials when its channel closes, so a dropped connection ends the
machine's running trials; they become SYS_CANCELED with the reason and ``requeue=True`` (the
manager runs their parameters again, elsewhere if need be). The machine is marked down and
reconnected in the background with exponential back-off (``reconnect_delay`` ..
``reconnect_max_delay``); it takes trials again once it is back. Trials wait (WAITING, with the
reason) while no machine is up.

Shared storage (``sharedStorage``, reuse mode only; :mod:`.shared_storage`): the code is copied
once into ``<storage>/nni/<id>/code`` instead of to every machine, trials work in
``<remoteMountPoint>/nni/<id>/trials/<trial id>`` on the machines (mounted there when not already
visible, unmounted at :meth:`~RemoteTrainingService.stop`), and their working folder on the
manager's machine is ``<localMountPoint>/nni/<id>/trials/<trial id>``: no SSH transfer back, except
with ``nomount``; ``stdout``, ``stderr`` and ``trial.log`` are still copied (locally) into the
trial's folder in the experiment folder, where the manager, ``nnictl log`` and the web UI read them.

GPUs: each runner schedules the GPUs its machine's ``nvidia-smi`` reports (``gpuIndices``,
``maxTrialNumberPerGpu``, ``useActiveGpu`` per machine); with ``trialGpuNumber`` set, a trial
is sent only to a machine with a free GPU slot.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import secrets
import shlex
from pathlib import Path
from typing import Optional

from nni.runtime.runner_client import RunnerClient, RunnerConnectionLost
from nni.runtime.training_service import (
    ExperimentContext,
    RequestNeverSatisfiable,
    StateEvent,
    TrialJobDetail,
)
from nni.training_services.local.runner_pool import OUTPUT_FILES, RUNNER_ERRORS, RunnerPool, copy_output_files

from .preflight import MachineInfo, preflight
from .shared_storage import SharedStorage, SharedStorageError
from .ssh import RemoteMachineError, SshError, SshMachine
from .upload import download_files, remove, upload_code

__all__ = ["RemoteTrainingService", "remote_experiment_dir"]

_logger = logging.getLogger("nni.training_services.remote")


def remote_experiment_dir(home: str, experiment_id: str) -> str:
    """Where an experiment's files live on a machine whose login home is ``home``."""
    return f"{home.rstrip('/')}/nni-experiments/{experiment_id}"


async def login_home(ssh: SshMachine) -> str:
    """The login user's home folder on the machine (absolute); one-line error when unknown."""
    rc, out, err = await ssh.run('printf %s "$HOME"')
    home = out.strip()
    if rc != 0 or not home.startswith("/"):
        raise RemoteMachineError(f"{ssh.name}: cannot find the login user's home folder ({err.strip()[-200:] or 'empty $HOME'})", "home")
    return home


def _machine_key(machine: SshMachine) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{machine.host}_{machine.port}")


class _Machine:
    """One machine as the service sees it."""

    def __init__(self, ssh: SshMachine, config: dict) -> None:
        self.ssh = ssh
        self.config = config
        self.info: Optional[MachineInfo] = None
        self.exp_dir = ""  # ~/nni-experiments/<id> there, absolute
        self.env_dir = ""
        self.code_dir = ""
        self.storage_dir = ""  # with sharedStorage: <remoteMountPoint>/nni/<id> there (trials/ and code/)
        self.shares_manager_dir = False  # the same folder as the manager's (localhost, same home)
        self.client: Optional[RunnerClient] = None  # reuse mode
        self.up = False
        self.down_reason = ""
        self.active: set[str] = set()  # trials sent here and not finished
        self.capacity: Optional[int] = None  # GPU-scheduled trials that fit at once
        self.reconnect_task: Optional[asyncio.Task] = None

    @property
    def name(self) -> str:
        return self.ssh.name

    def free(self, gpu_number: Optional[int]) -> bool:
        if not self.up:
            return False
        if gpu_number and self.capacity is not None:
            return len(self.active) < self.capacity
        return True


class RemoteTrainingService(RunnerPool):
    """Runs trials on the machines of ``machineList`` (``platform: remote``).

    Args:
        config: canonical ``trainingService`` mapping (``machineList``, ``reuseMode``).
        context: the experiment.
        reconnect_delay / reconnect_max_delay: back-off, in seconds, between attempts to reach a
            machine that went down.
        connect_attempts: tries per machine at start (network faults only; a wrong password or
            an unknown host key fails at once).
    """

    platform = "remote"

    def __init__(
        self,
        config: dict,
        context: ExperimentContext,
        reconnect_delay: float = 1.0,
        reconnect_max_delay: float = 30.0,
        connect_attempts: int = 3,
    ) -> None:
        super().__init__(config, context)
        self.reuse = self.config.get("reuseMode", True) is not False
        self.reconnect_delay = reconnect_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.connect_attempts = connect_attempts
        self._machines = [_Machine(SshMachine(m), dict(m)) for m in self.config.get("machineList") or []]
        self._singles: dict[str, RunnerClient] = {}  # non-reuse mode: the runner of each trial
        self._marker = f".nni-manager-{secrets.token_hex(6)}"
        self.storage: Optional[SharedStorage] = None
        if context.shared_storage:
            self.storage = SharedStorage(context.shared_storage, context.experiment_id, context.experiment_dir)

    # ----- lifecycle -----

    def check_request(self, gpu_number: Optional[int]) -> None:
        if not gpu_number:
            return
        limits = [self._usable_gpus(m) for m in self._machines]
        if limits and all(n is not None and n < gpu_number for n in limits):
            most = max(n for n in limits if n is not None)
            raise RequestNeverSatisfiable(
                f"trialGpuNumber: {gpu_number} GPUs per trial, but no remote machine has more than {most} usable GPU(s); "
                "lower trialGpuNumber or add a machine with more GPUs"
            )

    def _usable_gpus(self, m: _Machine) -> Optional[int]:
        """GPUs a machine can give one trial (``None``: unknown before preflight)."""
        indices = m.config.get("gpuIndices")
        count = len(indices) if isinstance(indices, (list, tuple)) else None
        if m.info is not None:
            count = m.info.gpu_count if count is None else min(count, m.info.gpu_count)
        return count

    async def start(self) -> None:
        if self._started:
            return
        if self.storage is not None:
            if not self.reuse:
                raise SharedStorageError("sharedStorage: works only in reuse mode on the remote platform; set "
                                         "trainingService.reuseMode: true (the default) or remove sharedStorage")
            await asyncio.get_running_loop().run_in_executor(
                None, self.storage.prepare_local, self.context.trial_code_directory)
        self._trials_dir.mkdir(parents=True, exist_ok=True)
        (self._trials_dir / self._marker).touch()
        try:
            results = await asyncio.gather(*(self._prepare(m) for m in self._machines), return_exceptions=True)
            problems = [str(r) for r in results if isinstance(r, BaseException)]
            if problems:
                await self._close_all()
                raise RemoteMachineError("; ".join(problems), "preflight")
            self._started = True
            self.check_request(self.context.trial_gpu_number)  # now that the GPUs are known
            if self.reuse:
                results = await asyncio.gather(*(self._start_machine_runner(m) for m in self._machines), return_exceptions=True)
                problems = [str(r) for r in results if isinstance(r, BaseException)]
                if problems:
                    await self._close_all()
                    raise RemoteMachineError("; ".join(problems), "runner")
            else:
                for m in self._machines:
                    m.up = True
        finally:
            try:
                (self._trials_dir / self._marker).unlink()
            except OSError:
                pass
        self._dispatch()

    async def _prepare(self, m: _Machine) -> None:
        await m.ssh.connect_with_retry(attempts=self.connect_attempts)
        m.info = await preflight(m.ssh)
        home = await login_home(m.ssh)
        m.exp_dir = remote_experiment_dir(home, self.context.experiment_id)
        m.env_dir = f"{m.exp_dir}/envs/{_machine_key(m.ssh)}"
        m.code_dir = f"{m.env_dir}/code"
        rc, _, _ = await m.ssh.run(f"test -e {shlex.quote(m.exp_dir + '/trials/' + self._marker)}")
        m.shares_manager_dir = rc == 0
        if self.storage is not None:
            m.storage_dir = await self.storage.prepare_machine(m.ssh, home, self.context.trial_code_directory)
            m.code_dir = f"{m.storage_dir}/code"
            _logger.info("%s: %s (python %s, nni-core %s, %d GPU(s)); shared storage at %s",
                         m.name, m.info.python, m.info.python_version, m.info.nni_version, m.info.gpu_count, m.storage_dir)
            return
        summary = await upload_code(m.ssh, self.context.trial_code_directory, m.code_dir)
        _logger.info("%s: %s (python %s, nni-core %s, %d GPU(s)); code uploaded (%d files, %d bytes)",
                     m.name, m.info.python, m.info.python_version, m.info.nni_version, m.info.gpu_count, summary.files, summary.bytes)

    def _runner_command(self, m: _Machine, single: bool) -> str:
        q = shlex.quote
        assert m.info is not None
        args = " --single" if single else ""
        return f"mkdir -p {q(m.env_dir)} && cd {q(m.env_dir)} && exec {q(m.info.python)} -m {m.info.runner_module}{args}"

    async def _open_runner(self, m: _Machine, single: bool) -> RunnerClient:
        reader, writer = await m.ssh.open_stream(self._runner_command(m, single))
        client = RunnerClient(reader, writer, name=f"trial runner on {m.name}")
        context = dataclasses.replace(self.context, experiment_dir=m.storage_dir or m.exp_dir,
                                      trial_code_directory=m.code_dir, shared_storage=None)
        try:
            info = await client.hello(context, config=m.config, platform="remote")
        except RUNNER_ERRORS as err:
            tail = writer.stderr_tail().strip().splitlines()
            await client.aclose()
            raise RemoteMachineError(f"{m.name}: the trial runner did not start ({tail[-1][:200] if tail else err})", "runner") from None
        if not single:
            m.capacity = info.capacity if self.context.trial_gpu_number else None
        return client

    async def _start_machine_runner(self, m: _Machine) -> None:
        client = await self._open_runner(m, single=False)
        m.client = client
        m.up = True
        m.down_reason = ""
        self._spawn(self._pump(m, client))

    async def _stop_runners(self) -> None:
        for m in self._machines:
            if m.reconnect_task is not None:
                m.reconnect_task.cancel()
        stops = [m.client.stop() for m in self._machines if m.client is not None]
        stops += [c.stop() for c in self._singles.values()]
        await asyncio.gather(*stops, return_exceptions=True)

    async def _release(self) -> None:
        await self._close_all()

    async def _close_all(self) -> None:
        if self.storage is not None:
            await self.storage.release()  # unmounts over the connections, before they close
        await asyncio.gather(*(m.ssh.close() for m in self._machines), return_exceptions=True)

    # ----- trials -----

    def _trial_workdir(self, trial_id: str) -> Path:
        if self.storage is not None and self.storage.local_visible:  # the machines write there directly
            return self.storage.local_root / "trials" / trial_id
        return super()._trial_workdir(trial_id)

    def _client_of(self, trial_id: str) -> Optional[RunnerClient]:
        m = self._owner.get(trial_id)
        return self._singles.get(trial_id) or (m.client if m is not None else None)

    def _where(self, trial_id: str) -> str:
        m = self._owner.get(trial_id)
        return m.name if m is not None else "?"

    def _idle_runner(self, trial_id: str) -> Optional[_Machine]:
        """The least busy machine with room for the trial."""
        free = [m for m in self._machines if m.free(self._gpu_number(self._specs[trial_id]))]
        return min(free, key=lambda x: len(x.active)) if free else None

    def _hand_over(self, m: _Machine, trial_id: str) -> None:
        m.active.add(trial_id)
        self._owner[trial_id] = m
        self._spawn(self._send(m, trial_id))

    def _launch_for_backlog(self) -> None:
        # the machines are fixed: the first waiting trial says why it waits
        if self._backlog:
            down = [f"{m.name} ({m.down_reason})" for m in self._machines if not m.up]
            why = ("no remote machine is reachable: " + "; ".join(down)) if len(down) == len(self._machines) else "waiting for a free GPU on a remote machine"
            self._waiting(self._trials[self._backlog[0]], why)

    async def _send(self, m: _Machine, trial_id: str) -> None:
        detail = self._trials[trial_id]
        client = m.client
        if not self.reuse:
            try:
                client = await self._open_runner(m, single=True)
            except (*RUNNER_ERRORS, RemoteMachineError, OSError) as err:
                self._not_handed_over(m, trial_id, err)
                return
            self._singles[trial_id] = client
            self._spawn(self._pump(m, client, single_trial=trial_id))
        if client is None:
            self._not_handed_over(m, trial_id, RunnerConnectionLost(f"{m.name} is down"))
            return
        remote = await self._submit_to(client, trial_id, m.name)
        if isinstance(remote, RequestNeverSatisfiable):
            m.active.discard(trial_id)
            self._dispatch()
        elif isinstance(remote, Exception):
            self._not_handed_over(m, trial_id, remote)
        else:
            detail.url = f"ssh://{m.ssh.user}@{m.ssh.host}:{m.ssh.port}{remote.working_directory}"
            detail.gpu_indices = remote.gpu_indices

    def _not_handed_over(self, m: _Machine, trial_id: str, err: Exception) -> None:
        """Not started anywhere: back to the front of the queue for another machine."""
        m.active.discard(trial_id)
        self._owner.pop(trial_id, None)
        self._singles.pop(trial_id, None)
        if self._trials[trial_id].status.is_final:
            return
        _logger.warning("Trial %s could not be handed to %s (%s); it waits for another machine", trial_id, m.name, err)
        if not self.reuse and m.up:
            self._machine_lost(m, str(err))
        self._requeue_first(trial_id)
        self._dispatch()

    async def _pump(self, m: _Machine, client: RunnerClient, single_trial: Optional[str] = None) -> None:
        """Forward one runner's events until its stream ends."""
        closed = await self._forward(m, client)
        if single_trial is not None:
            self._singles.pop(single_trial, None)
            detail = self._trials.get(single_trial)
            if detail is not None and not detail.status.is_final and not self._stopping:
                self._requeue(detail, f"the trial runner on {m.name} ended unexpectedly ({closed})")
                m.active.discard(single_trial)
                self._dispatch()
            return
        if not self._stopping and m.client is client:
            self._machine_lost(m, closed)

    def _on_runner_state(self, m: _Machine, detail: TrialJobDetail, event: StateEvent) -> None:
        self._set_status(detail, event.status, event.message, event.exit_code, event.time)
        if event.status.is_final:
            m.active.discard(detail.id)
            self._spawn(self._copy_output(m, detail.id))
            self._dispatch()

    async def _copy_output(self, m: _Machine, trial_id: str) -> None:
        if m.shares_manager_dir:
            return
        local = self._trials_dir / trial_id
        if self.storage is not None and self.storage.local_visible:
            # Already here, on the storage. The manager's record, `nnictl log trial` and the web UI
            # read the trial's folder in the experiment folder: a local copy, no SSH transfer.
            await asyncio.get_running_loop().run_in_executor(None, self._copy_from_storage, trial_id)
            return
        remote_dir = f"{m.storage_dir or m.exp_dir}/trials/{trial_id}"
        try:  # one round trip for the three files
            await download_files(m.ssh, remote_dir, list(OUTPUT_FILES), local)
        except (SshError, OSError) as err:
            _logger.info("Trial %s: output not copied back from %s: %s", trial_id, m.name, err)

    def _copy_from_storage(self, trial_id: str) -> None:
        assert self.storage is not None
        copy_output_files(self.storage.local_root / "trials" / trial_id, self._trials_dir / trial_id, trial_id,
                          " from the shared storage")

    def _machine_lost(self, m: _Machine, reason: str) -> None:
        """The connection to ``m`` dropped: its trials are re-queued, it is reconnected later."""
        m.up = False
        m.client = None
        m.down_reason = f"connection lost: {reason}"
        _logger.warning("%s: %s; reconnecting in the background", m.name, m.down_reason)
        for trial_id in sorted(m.active):
            detail = self._trials[trial_id]
            if not detail.status.is_final:
                self._requeue(detail, f"the connection to {m.name} was lost ({reason}); the trial was stopped there")
        m.active.clear()
        if m.reconnect_task is None or m.reconnect_task.done():
            m.reconnect_task = self._spawn(self._reconnect(m))
        self._dispatch()

    async def _reconnect(self, m: _Machine) -> None:
        delay = self.reconnect_delay
        while not self._stopping:
            await asyncio.sleep(delay)
            try:
                await m.ssh.connect()
                if self.reuse:
                    await self._start_machine_runner(m)
                else:
                    m.up = True
                _logger.info("%s is back", m.name)
                self._dispatch()
                return
            except (SshError, RemoteMachineError, OSError) as err:
                m.down_reason = str(err)
                delay = min(delay * 2, self.reconnect_max_delay)

    # ----- clean-up (nnictl experiment delete / platform clean) -----

    @staticmethod
    async def remove_experiment_files(config: dict, experiment_id: str) -> list[str]:
        """Remove ``~/nni-experiments/<experiment_id>`` on every machine; returns one line per
        machine that could not be cleaned (unreachable machines are reported, not fatal)."""
        problems = []
        for machine in config.get("machineList") or []:
            ssh = SshMachine(machine)
            try:
                await ssh.connect_with_retry(attempts=2)
                await remove(ssh, remote_experiment_dir(await login_home(ssh), experiment_id))
            except (SshError, RemoteMachineError, OSError, ValueError) as err:
                problems.append(str(err))
            finally:
                await ssh.close()
        return problems

    @classmethod
    def clean_platform(cls, config: dict, running: set) -> list[str]:
        """``nnictl platform clean``: remove ``~/nni-experiments/<id>`` of every experiment on
        every machine except those in ``running``; returns one line per machine."""
        import asyncio as _asyncio

        async def clean(machine: dict) -> str:
            ssh = SshMachine(machine)
            try:
                await ssh.connect_with_retry(attempts=2)
                rc, out, _ = await ssh.run('printf %s "$HOME"; echo; ls -1 "$HOME/nni-experiments" 2>/dev/null')
                home, *names = out.splitlines()
                removed = [n for n in names if n and n not in running and re.fullmatch(r"[A-Za-z0-9_-]+", n)]
                for name in removed:
                    await remove(ssh, remote_experiment_dir(home, name))
                return f"{ssh.name}: removed {len(removed)} experiment folder(s) under {home}/nni-experiments"
            except (SshError, RemoteMachineError, OSError, ValueError) as err:
                return f"{ssh.name}: not cleaned: {err}"
            finally:
                await ssh.close()

        async def main() -> list[str]:
            return list(await _asyncio.gather(*(clean(m) for m in config.get("machineList") or [])))

        return _asyncio.run(main())
