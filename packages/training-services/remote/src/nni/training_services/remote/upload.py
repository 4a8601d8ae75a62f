"""Moving files to and from a remote machine: the trial code once per machine, trial output back.

Transfers are tar streams over one SSH exec channel (``tar -x`` / ``tar -c`` on the remote):
one round trip for the whole tree instead of one SFTP request per file.

The code directory minus ``.nniignore`` (gitignore syntax, via ``pathspec``) must stay within
the docs' limits: 2000 files and 300 MB.
"""
from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pathspec

from .ssh import _EXECUTOR, SshError, SshMachine, remote_path

__all__ = ["CodeDirError", "MAX_FILES", "MAX_BYTES", "UploadSummary", "collect_code_files", "upload_code",
           "download", "download_files", "remove"]

MAX_FILES = 2000
MAX_BYTES = 300 * 1024 * 1024
IGNORE_FILE = ".nniignore"


class CodeDirError(ValueError):
    """The trial code directory cannot be uploaded (one line: the count or size and the fix)."""


@dataclass
class UploadSummary:
    """What :func:`upload_code` sent."""

    files: int
    bytes: int
    remote_dir: str


def _ignore_spec(code_dir: Path) -> pathspec.PathSpec:
    ignore = code_dir / IGNORE_FILE
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else []
    return pathspec.GitIgnoreSpec.from_lines(lines)


def collect_code_files(code_dir: str | os.PathLike, *, max_files: int = MAX_FILES,
                       max_bytes: int = MAX_BYTES) -> list[Path]:
    """Files of ``code_dir`` (relative paths, sorted) that ``.nniignore`` does not exclude.

    Ignored folders are not walked. Symbolic links are kept as links (not followed).

    Raises:
        CodeDirError: the directory is missing, or more than ``max_files`` files or ``max_bytes``
            bytes remain.
    """
    root = Path(code_dir)
    if not root.is_dir():
        raise CodeDirError(f"trialCodeDirectory: {root} is not a directory; give the folder holding the trial code")
    spec = _ignore_spec(root)
    files: list[Path] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = PurePosixPath(Path(dirpath).relative_to(root).as_posix())
        kept = []
        for d in sorted(dirnames):
            rel = rel_dir / d
            if spec.match_file(f"{rel}/"):
                continue
            if os.path.islink(os.path.join(dirpath, d)):
                files.append(Path(rel))  # a link to a folder travels as a link
                continue
            kept.append(d)
        dirnames[:] = kept
        for f in filenames:
            rel = rel_dir / f
            if spec.match_file(str(rel)):
                continue
            files.append(Path(rel))
            full = os.path.join(dirpath, f)
            total += 0 if os.path.islink(full) else os.path.getsize(full)
        if len(files) > max_files:
            raise CodeDirError(
                f"trialCodeDirectory: {root} has more than {max_files} files to upload (found {len(files)} so far); "
                f"at most {max_files} are sent to remote machines: list what trials do not need in "
                f"{root / IGNORE_FILE} (gitignore syntax)")
    if total > max_bytes:
        raise CodeDirError(
            f"trialCodeDirectory: {root} holds {total / 2**20:.1f} MB to upload; at most {max_bytes / 2**20:.0f} MB "
            f"are sent to remote machines: list large files in {root / IGNORE_FILE} (gitignore syntax) or put "
            f"data on shared storage")
    return sorted(files)


class _ChannelFile:
    """Write-only file object over a channel's stdin, for ``tarfile`` stream mode."""

    def __init__(self, channel):
        self.channel = channel

    def write(self, data: bytes) -> int:
        self.channel.sendall(data)
        return len(data)

    def flush(self) -> None:
        pass


class _ChannelReadFile:
    """Read-only file object over a channel's stdout, for ``tarfile`` stream mode."""

    def __init__(self, channel):
        self.channel = channel

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while chunk := self.channel.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)
        out = bytearray()
        while len(out) < size:
            chunk = self.channel.recv(size - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)


def _finish(channel, machine: SshMachine, what: str) -> None:
    channel.shutdown_write()
    err = b""
    while chunk := channel.recv_stderr(65536):
        err += chunk
    while channel.recv(65536):
        pass
    status = channel.recv_exit_status()
    if status != 0:
        detail = (err.decode(errors="replace").strip().splitlines() or [f"exit status {status}"])[-1][:200]
        raise SshError(f"{machine.name}: {what} failed ({detail})", "remote")


async def upload_code(machine: SshMachine, code_dir: str | os.PathLike, remote_dir: str, *,
                      max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> UploadSummary:
    """Replace ``remote_dir`` on the machine with the code files of ``code_dir`` (see :func:`collect_code_files`).

    ``remote_dir`` is absolute or ``~/...``; it is created with its parents.
    """
    root = Path(code_dir)
    files = collect_code_files(root, max_files=max_files, max_bytes=max_bytes)
    dest = remote_path(remote_dir)

    def send() -> int:
        channel = machine.open_exec_channel(f"rm -rf {dest} && mkdir -p {dest} && tar -xzf - -C {dest}")
        try:
            sent = 0
            with tarfile.open(fileobj=_ChannelFile(channel), mode="w|gz", format=tarfile.PAX_FORMAT) as tar:
                for rel in files:
                    info = tar.gettarinfo(str(root / rel), arcname=rel.as_posix())
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    if info.isreg():
                        sent += info.size
                        with open(root / rel, "rb") as fh:
                            tar.addfile(info, fh)
                    else:
                        tar.addfile(info)
            _finish(channel, machine, f"extracting the code into {remote_dir}")
            return sent
        except (OSError, EOFError) as err:
            if isinstance(err, SshError):
                raise
            raise SshError(f"{machine.name}: upload to {remote_dir} broke off ({type(err).__name__})",
                           "closed") from None
        finally:
            channel.close()

    sent = await asyncio.get_running_loop().run_in_executor(_EXECUTOR, send)
    return UploadSummary(files=len(files), bytes=sent, remote_dir=remote_dir)


async def download(machine: SshMachine, remote: str, local: str | os.PathLike) -> Path:
    """Copy the remote file or folder ``remote`` to ``local`` (created; a folder's content goes inside it).

    Returns ``local``. Raises :class:`SshError` when ``remote`` does not exist.
    """
    local_path = Path(local)
    src = PurePosixPath(remote)
    parent, name = remote_path(str(src.parent)), src.name

    def fetch() -> None:
        channel = machine.open_exec_channel(
            f"test -e {parent}/{_q(name)} || {{ echo 'no such file or folder' >&2; exit 2; }}; "
            f"tar -czf - -C {parent} -- {_q(name)}")
        try:
            channel.shutdown_write()
            staging = local_path.parent / f".{local_path.name}.nni-download"
            staging.mkdir(parents=True, exist_ok=True)
            try:
                with tarfile.open(fileobj=_ChannelReadFile(channel), mode="r|gz") as tar:
                    _extract(tar, staging)
            except tarfile.ReadError:
                pass  # nothing came: the command's status says why
            err = b""
            while chunk := channel.recv_stderr(65536):
                err += chunk
            status = channel.recv_exit_status()
            if status != 0:
                detail = (err.decode(errors="replace").strip().splitlines() or [f"exit status {status}"])[-1][:200]
                _rmtree(staging)
                raise SshError(f"{machine.name}: cannot download {remote} ({detail})", "remote")
            got = staging / name
            if got.is_dir() and local_path.is_dir():
                _merge(got, local_path)
            else:
                local_path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(got, local_path)
            _rmtree(staging)
        finally:
            channel.close()

    await asyncio.get_running_loop().run_in_executor(_EXECUTOR, fetch)
    return local_path


async def download_files(machine: SshMachine, remote_dir: str, names: list[str], local_dir: str | os.PathLike) -> list[str]:
    """Copy the files ``names`` of ``remote_dir`` into ``local_dir`` in one round trip; those that do
    not exist there are skipped. Returns the names copied."""
    dest = Path(local_dir)
    quoted = " ".join(_q(n) for n in names)

    def fetch() -> list[str]:
        # one tar over the files that exist (a trial may not have written stderr)
        channel = machine.open_exec_channel(
            f"cd {remote_path(remote_dir)} || exit 2; set --; for f in {quoted}; do [ -e \"$f\" ] && set -- \"$@\" \"$f\"; done; "
            f"[ $# -gt 0 ] || exit 0; tar -cf - -- \"$@\"")
        try:
            channel.shutdown_write()
            dest.mkdir(parents=True, exist_ok=True)
            got: list[str] = []
            try:
                with tarfile.open(fileobj=_ChannelReadFile(channel), mode="r|") as tar:
                    for member in tar:
                        got.append(member.name)
                        _extract_one(tar, member, dest)
            except tarfile.ReadError:
                pass  # no file to copy: an empty stream
            status = channel.recv_exit_status()
            if status != 0:
                raise SshError(f"{machine.name}: cannot read {remote_dir} (exit status {status})", "remote")
            return got
        finally:
            channel.close()

    return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, fetch)


def _extract_one(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    if member.name.startswith("/") or ".." in PurePosixPath(member.name).parts or not (member.isreg() or member.islnk()):
        raise SshError(f"refusing unsafe entry {member.name!r} in a download", "remote")
    target = dest / member.name
    if target.exists() or target.is_symlink():
        target.unlink()
    if hasattr(tarfile, "data_filter"):
        tar.extract(member, dest, filter="data")
    else:
        tar.extract(member, dest)


async def remove(machine: SshMachine, remote_dir: str) -> None:
    """``rm -rf`` a remote folder (refuses ``/``, the home folder and relative paths)."""
    norm = remote_dir.rstrip("/")
    parts = PurePosixPath(norm).parts
    deep_enough = (norm.startswith("~/") and len(parts) >= 2) or (norm.startswith("/") and len(parts) >= 3)
    if not deep_enough or ".." in parts:
        raise ValueError(f"remote folder {remote_dir!r} is too close to the root to delete; give an absolute folder "
                         f"at least two levels deep or one under ~/, without '..'")
    rc, _, err = await machine.run(f"rm -rf -- {remote_path(norm)}")
    if rc != 0:
        raise SshError(f"{machine.name}: cannot remove {remote_dir} ({err.strip()[-200:]})", "remote")


def _q(text: str) -> str:
    return shlex.quote(text)


def _extract(tar: tarfile.TarFile, dest: Path) -> None:
    if hasattr(tarfile, "data_filter"):  # refuses absolute paths, '..' and device files
        tar.extractall(dest, filter="data")
    else:  # Python < 3.11.4: check names ourselves
        for member in tar:
            if member.name.startswith("/") or ".." in PurePosixPath(member.name).parts:
                raise SshError(f"refusing unsafe path {member.name!r} in a download", "remote")
            tar.extract(member, dest)


def _merge(src: Path, dest: Path) -> None:
    for child in src.iterdir():
        target = dest / child.name
        if child.is_dir() and target.is_dir():
            _merge(child, target)
        else:
            os.replace(child, target)


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
