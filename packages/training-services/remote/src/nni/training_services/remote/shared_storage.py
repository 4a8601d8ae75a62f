"""``sharedStorage`` (NFS or Azure Blob) for the remote platform in reuse mode.

Layout (the docs'): everything of an experiment lives under ``<storage>/nni/<experiment id>/``:
``code/`` (the trial code, copied once instead of once per machine) and
``trials/<trial id>/`` (the trials' working folders, written by the machines directly).

``localMounted`` says how the manager's machine sees the storage at ``localMountPoint``:
``usermount`` (already mounted by the user: the folder must exist), ``nnimount`` (NNI mounts it
and unmounts it at the end) or ``nomount`` (not visible here: the first machine copies the code in
and trial output is copied back over SSH as without shared storage).

On a machine, the storage counts as visible when the marker file the manager (or, with
``nomount``, the first machine) wrote into the experiment's folder can be seen under
``remoteMountPoint``; otherwise NNI mounts it there (as root, or with ``sudo -n``: the docs ask for
passwordless sudo), checks the marker again, and unmounts it when the experiment stops.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath

from .ssh import SshError, SshMachine
from .upload import collect_code_files, upload_code

__all__ = ["SharedStorage", "SharedStorageError", "resolve_remote_point"]

_logger = logging.getLogger("nni.training_services.remote")


class SharedStorageError(ValueError):
    """The shared storage cannot be used (one line: where, the command, the fix)."""


def resolve_remote_point(point: str, home: str) -> str:
    """``remoteMountPoint`` as an absolute path: relative paths (and ``~``) are under the login home."""
    home = home.rstrip("/")
    if point == "~" or point.startswith("~/"):
        point = point[2:]
    if point.startswith("/"):
        return str(PurePosixPath(point))
    rel = PurePosixPath(point)
    return f"{home}/{rel}" if str(rel) != "." else home


def _as_root(cmd: str) -> str:
    """Shell text running ``cmd`` as root: directly when already root, else through ``sudo -n``."""
    return f'if [ "$(id -u)" = 0 ]; then {cmd}; else sudo -n {cmd}; fi'


class SharedStorage:
    """One experiment's shared storage, as the manager uses it.

    Args:
        config: the canonical ``sharedStorage`` mapping.
        experiment_id: the experiment's id (its folder is ``nni/<id>`` on the storage).
        experiment_dir: the experiment's local folder (holds the blobfuse settings, mode 0600).
    """

    def __init__(self, config: dict, experiment_id: str, experiment_dir: str) -> None:
        self.config = dict(config)
        self.kind = config.get("storageType")
        if self.kind not in ("NFS", "AzureBlob"):
            raise SharedStorageError(f"sharedStorage.storageType: {self.kind!r} is not supported; use NFS or AzureBlob")
        self.local_mounted = config.get("localMounted")
        self.experiment_id = experiment_id
        self.experiment_dir = Path(experiment_dir)
        self.local_point = Path(os.path.expanduser(str(config["localMountPoint"])))
        self.remote_point = str(config["remoteMountPoint"])
        self.marker = f".nni-storage-{secrets.token_hex(6)}"
        self._marker_written = False
        self._lock = asyncio.Lock()
        self._local_mounted_by_nni = False
        self._mounted: dict[str, tuple[SshMachine, str]] = {}  # machine name -> (machine, point NNI mounted there)

    # ----- paths -----

    @property
    def local_visible(self) -> bool:
        """Whether the storage is seen on this machine (trial output then needs no copy back)."""
        return self.local_mounted != "nomount"

    @property
    def local_root(self) -> Path:
        """``<localMountPoint>/nni/<experiment id>``."""
        return self.local_point / "nni" / self.experiment_id

    def remote_root(self, home: str) -> str:
        """``<remoteMountPoint>/nni/<experiment id>`` on a machine whose login home is ``home``."""
        return f"{resolve_remote_point(self.remote_point, home)}/nni/{self.experiment_id}"

    # ----- mount commands -----

    def _account_key(self) -> str:
        key = self.config.get("storageAccountKey")
        if key:
            return key
        group, account = self.config.get("resourceGroupName"), self.config.get("storageAccountName")
        cmd = ["az", "storage", "account", "keys", "list", "--resource-group", str(group), "--account-name",
               str(account), "--query", "[0].value", "--output", "tsv"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise SharedStorageError(f"sharedStorage.storageAccountKey: not given, and looking it up with the Azure CLI "
                                     f"failed ({err}); give storageAccountKey or install and log in to `az`") from None
        if proc.returncode != 0 or not proc.stdout.strip():
            why = (proc.stderr.strip().splitlines() or ["no key returned"])[-1][:200]
            raise SharedStorageError(f"sharedStorage.storageAccountKey: not given, and `{' '.join(cmd)}` failed ({why}); "
                                     f"give storageAccountKey or fix resourceGroupName")
        self.config["storageAccountKey"] = proc.stdout.strip()
        return self.config["storageAccountKey"]

    def blobfuse_settings(self) -> str:
        """blobfuse's ``--config-file`` content (holds the account key: written with mode 0600 only)."""
        return (f"accountName {self.config['storageAccountName']}\naccountKey {self._account_key()}\n"
                f"containerName {self.config['containerName']}\n")

    def mount_command(self, point: str, settings_file: str = "") -> str:
        """The mount command for ``point`` (shell text, no secret in it)."""
        q = shlex.quote
        if self.kind == "NFS":
            return f"mount -t nfs {q(self.config['nfsServer'] + ':' + self.config['exportedDirectory'])} {q(point)}"
        tmp = f"/tmp/nni-blobfuse-{self.experiment_id}"
        return (f"blobfuse {q(point)} --tmp-path={q(tmp)} --config-file={q(settings_file)} "
                f"-o attr_timeout=240 -o entry_timeout=240 -o negative_timeout=120 -o allow_other")

    # ----- the manager's machine -----

    def prepare_local(self, code_dir: str) -> None:
        """Make the storage visible here (per ``localMounted``), write the marker and copy the code in.

        Blocking (mount, file copies): run it in an executor. Nothing happens with ``nomount``.
        """
        if self.kind == "AzureBlob":
            self._account_key()  # a lookup with `az` blocks: done here, in the executor
        if self.local_mounted == "nomount":
            return
        at = f"sharedStorage.localMountPoint: {self.local_point}"
        if self.local_mounted == "usermount":
            if not self.local_point.is_dir():
                raise SharedStorageError(f"{at} does not exist; with localMounted: usermount mount the storage there "
                                         f"first, or use localMounted: nnimount to let NNI mount it")
        elif self.local_mounted == "nnimount":
            self.local_point.mkdir(parents=True, exist_ok=True)
            if not os.path.ismount(self.local_point):
                self._mount_local()
        else:
            raise SharedStorageError(f"sharedStorage.localMounted: {self.local_mounted!r} is not supported; "
                                     f"use usermount, nnimount or nomount")
        try:
            self.local_root.mkdir(parents=True, exist_ok=True)
            (self.local_root / self.marker).touch()
            self._copy_code(Path(code_dir), self.local_root / "code")
        except OSError as err:
            raise SharedStorageError(f"{at}: cannot write the experiment's folder {self.local_root} ({err.strerror or err}); "
                                     f"the storage must be writable by this user") from None
        self._marker_written = True

    def _mount_local(self) -> None:
        settings = ""
        if self.kind == "AzureBlob":
            settings = str(self.experiment_dir / "blobfuse.cfg")
            self.experiment_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(settings, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.blobfuse_settings())
            Path(f"/tmp/nni-blobfuse-{self.experiment_id}").mkdir(parents=True, exist_ok=True)
        cmd = self.mount_command(str(self.local_point), settings)
        argv = shlex.split(cmd)
        if os.geteuid() != 0:
            argv = ["sudo", "-n", *argv]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
            failed, why = proc.returncode != 0, (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1][:200]
        except (OSError, subprocess.TimeoutExpired) as err:
            failed, why = True, str(err)
        if failed:
            tool = "nfs-common (mount.nfs)" if self.kind == "NFS" else "blobfuse"
            raise SharedStorageError(
                f"sharedStorage.localMounted: nnimount: `{' '.join(argv)}` failed ({why}); this machine needs {tool} and "
                f"root or passwordless sudo, or mount the storage yourself and use localMounted: usermount")
        self._local_mounted_by_nni = True
        _logger.info("Shared storage mounted at %s", self.local_point)

    @staticmethod
    def _copy_code(src: Path, dest: Path) -> None:
        files = collect_code_files(src)  # .nniignore and the docs' limits, as for an upload
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for rel in files:
            source, target = src / rel, dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                os.symlink(os.readlink(source), target)
            else:
                shutil.copy2(source, target)

    # ----- training machines -----

    async def prepare_machine(self, machine: SshMachine, home: str, code_dir: str) -> str:
        """Make the storage visible on ``machine``; returns the experiment's folder there.

        With ``nomount`` the first machine to get here also writes the marker and the code.
        """
        root = self.remote_root(home)
        if not self._marker_written:
            async with self._lock:
                if not self._marker_written:
                    await self._prepare_writer(machine, home, root, code_dir)
                    self._marker_written = True
                    return root
        if await self._sees_marker(machine, root):
            return root
        await self._mount_remote(machine, home)
        if not await self._sees_marker(machine, root):
            raise SharedStorageError(
                f"{machine.name}: mounted the shared storage at {resolve_remote_point(self.remote_point, home)}, but the "
                f"experiment's folder {root} is not there; the machine mounted another storage than the manager's "
                f"(check nfsServer / exportedDirectory / containerName)")
        return root

    async def _prepare_writer(self, machine: SshMachine, home: str, root: str, code_dir: str) -> None:
        point = resolve_remote_point(self.remote_point, home)
        rc, _, _ = await machine.run(f"mountpoint -q {shlex.quote(point)}")
        if rc != 0:
            await self._mount_remote(machine, home)
        q = shlex.quote
        rc, _, err = await machine.run(f"mkdir -p {q(root + '/trials')} && touch {q(root + '/' + self.marker)}")
        if rc != 0:
            raise SharedStorageError(f"{machine.name}: cannot write the experiment's folder {root} on the shared storage "
                                     f"({err.strip()[-200:]}); the storage must be writable by the login user")
        await upload_code(machine, code_dir, f"{root}/code")

    async def _sees_marker(self, machine: SshMachine, root: str) -> bool:
        rc, _, _ = await machine.run(f"test -e {shlex.quote(root + '/' + self.marker)}")
        return rc == 0

    async def _mount_remote(self, machine: SshMachine, home: str) -> None:
        q = shlex.quote
        point = resolve_remote_point(self.remote_point, home)
        prefix, data = f"mkdir -p {q(point)}", None
        settings = ""
        if self.kind == "AzureBlob":
            settings = f"{home.rstrip('/')}/.nni-blobfuse/{self.experiment_id}.cfg"
            # the key travels on stdin into a 0600 file: never on a command line
            prefix = (f"umask 077 && mkdir -p {q(str(PurePosixPath(settings).parent))} && cat > {q(settings)} && "
                      f"{prefix} && mkdir -p /tmp/nni-blobfuse-{self.experiment_id} && "
                      f"{{ [ -z \"$(ls -A {q(point)})\" ] || {{ echo 'remoteMountPoint is not empty' >&2; exit 3; }}; }}")
            data = self.blobfuse_settings().encode()
        cmd = self.mount_command(point, settings)
        run = f"{prefix} && {_as_root(cmd)}"
        if settings:  # blobfuse has read its settings once mounted: the key does not stay on the machine
            run = f"{{ {run}; }}; rc=$?; rm -f {q(settings)}; exit $rc"
        try:
            rc, _, err = await machine.run(run, input=data, timeout=180)
        except SshError as error:
            rc, err = -1, str(error)
        if rc != 0:
            tool = "the NFS client (nfs-common)" if self.kind == "NFS" else "blobfuse"
            why = (err.strip().splitlines() or [f"exit status {rc}"])[-1][:200]
            raise SharedStorageError(
                f"{machine.name}: cannot mount the shared storage: `sudo -n {cmd}` failed ({why}); the machine needs "
                f"{tool}, passwordless sudo for the login user and access to the storage")
        self._mounted[machine.name] = (machine, point)
        _logger.info("%s: shared storage mounted at %s", machine.name, point)

    # ----- the end -----

    async def release(self) -> None:
        """Unmount what NNI mounted (machines, then here) and drop the marker; problems are logged."""
        for name, (machine, point) in list(self._mounted.items()):
            try:
                rc, _, err = await machine.run(_as_root(f"umount {shlex.quote(point)}"), timeout=60)
                if rc != 0:
                    _logger.warning("%s: umount %s failed: %s", name, point, err.strip()[-200:])
            except (SshError, OSError) as error:
                _logger.warning("%s: umount %s not done: %s", name, point, error)
            self._mounted.pop(name, None)
        if self.local_visible and self._marker_written:
            try:
                (self.local_root / self.marker).unlink()
            except OSError:
                pass
        if self._local_mounted_by_nni:
            await asyncio.get_running_loop().run_in_executor(None, self._unmount_local)

    def _unmount_local(self) -> None:
        argv = ["umount", str(self.local_point)]
        if os.geteuid() != 0:
            argv = ["sudo", "-n", *argv]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                _logger.warning("`%s` failed: %s", " ".join(argv), proc.stderr.strip()[-200:])
        except (OSError, subprocess.TimeoutExpired) as err:
            _logger.warning("`%s` not done: %s", " ".join(argv), err)
        self._local_mounted_by_nni = False
        for path in (self.experiment_dir / "blobfuse.cfg",):
            try:
                path.unlink()
            except OSError:
                pass
