"""Real OpenSSH servers on 127.0.0.1 for tests (this package's and the end-to-end ones).

Each :class:`SshServer` runs Debian's ``/usr/sbin/sshd -D -e -f <generated sshd_config>`` on a
free loopback port with a generated host key, for a fresh login account (:class:`LoginAccount`) that accepts a
generated user key or, with ``password_auth=True``, its random password. Its machine dict is the
canonical camelCase ``machineList`` entry.

Per-machine environment hook: every command NNI runs on a machine starts with the machine's
``pythonPath`` in front of ``PATH`` (as the docs say). The fixture's ``pythonPath`` is a private
``bin`` folder holding a ``python3`` wrapper (``exec <this interpreter>``) and, with
``gpus=N``, a fake ``nvidia-smi`` that lists N idle GPUs, so the runner on that machine finds
the fake tool just as a real one would be found on ``PATH``. Extra variables for that machine go
in ``<bin>/env.sh``, which the wrapper sources before starting Python.

sshd needs root here (it must switch to the logged-in account); :func:`sshd_unavailable_reason`
says why a test has to be skipped elsewhere.
"""
from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .ssh import known_hosts_path

__all__ = ["SSHD", "LoginAccount", "SshServer", "sshd_unavailable_reason", "free_port"]

SSHD = "/usr/sbin/sshd"
_SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def sshd_unavailable_reason() -> str | None:
    """Why real sshd fixtures cannot run on this machine, or None when they can."""
    if not Path(SSHD).exists():
        return f"{SSHD} is missing (install Debian's openssh-server)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is missing (install openssh-client)"
    if os.name != "posix" or os.geteuid() != 0:
        return "sshd fixtures need root (sshd must switch to the logged-in account)"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Answers --query-gpu=<fields> with one CSV row per idle GPU (any field list, in order) and
# --query-compute-apps with nothing (no process runs on the fake GPUs).
_FAKE_NVIDIA_SMI = r"""#!/bin/sh
# fake nvidia-smi of the NNI test fixtures: @GPUS@ idle GPUs
q=""
for a in "$@"; do
  case "$a" in
    --query-gpu=*) q="${a#--query-gpu=}" ;;
    --query-compute-apps=*) exit 0 ;;
  esac
done
if [ -z "$q" ]; then echo "fake nvidia-smi: @GPUS@ GPUs"; exit 0; fi
i=0
while [ "$i" -lt @GPUS@ ]; do
  line=""
  for f in $(echo "$q" | tr ',' ' '); do
    case "$f" in
      index) v=$i ;;
      uuid|gpu_uuid) v="GPU-fake-$i" ;;
      name) v="Fake GPU" ;;
      memory.total|memory.free) v=81920 ;;
      *) v=0 ;;
    esac
    line="${line:+$line, }$v"
  done
  echo "$line"
  i=$((i + 1))
done
"""


def _keygen(path: Path, passphrase: str = "") -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "nni-test", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (read from /proc; sshd puts sessions in new sessions)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _die_with_parent() -> None:
    """In the child: SIGKILL when the thread that started it ends (a killed test run leaves no sshd)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class LoginAccount:
    """A login account with a random password, removed by :meth:`remove`.

    It is an alias of uid 0 (``useradd -o -u 0``) with its own home in a temporary folder and
    ``/bin/sh`` as shell: the test interpreter lives under ``/root`` (mode 700), so a runner on the
    machine must run as root, but root's own login would read ``/root/.bashrc`` (slow, and a
    pyenv rehash killed with a session leaves a lock that stalls later logins) and put remote
    experiment folders under ``/root``. It lives as long as the test.
    """

    PREFIX = "nnit"

    def __init__(self, home: Path):
        self.sweep()
        self.name = self.PREFIX + secrets.token_hex(4)
        self.password = secrets.token_urlsafe(18)
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self._run(["useradd", "-o", "-u", "0", "-g", "0", "-M", "-d", str(home), "-s", "/bin/sh", self.name])
        subprocess.run(["chpasswd"], input=f"{self.name}:{self.password}\n", text=True, check=True,
                       capture_output=True)

    @staticmethod
    def _run(cmd: list[str]) -> None:
        # useradd / userdel lock /etc/passwd; parallel test processes may hold it for a moment
        for attempt in range(20):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode == 0 or (cmd[0] == "userdel" and proc.returncode == 6):  # 6: no such user
                return
            time.sleep(0.1 * (attempt + 1))
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")

    @classmethod
    def sweep(cls) -> None:
        """Remove accounts left by killed test runs (ours, uid 0, home folder gone)."""
        try:
            lines = Path("/etc/passwd").read_text().splitlines()
        except OSError:
            return
        for line in lines:
            fields = line.split(":")
            if (len(fields) >= 7 and fields[0].startswith(cls.PREFIX) and len(fields[0]) == len(cls.PREFIX) + 8
                    and fields[2] == "0" and not Path(fields[5]).exists()):
                subprocess.run(["userdel", "-f", fields[0]], capture_output=True)

    def remove(self) -> None:
        """Delete the account (``userdel -f``: uid 0 always owns running processes)."""
        self._run(["userdel", "-f", self.name])


class SshServer:
    """One OpenSSH server on 127.0.0.1, started by :meth:`start`, stopped by :meth:`stop`.

    Args:
        workdir: private folder for keys, config, log and the machine's ``bin``.
        password_auth: log in with the account's password instead of the generated key.
        gpus: put a fake ``nvidia-smi`` listing this many GPUs in the machine's ``pythonPath``.
        python: the interpreter the machine's ``python3`` wrapper runs.
    """

    host = "127.0.0.1"

    def __init__(self, workdir: Path, *, password_auth: bool = False, gpus: int | None = None,
                 python: str = sys.executable):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.password_auth = password_auth
        self.port = free_port()
        self.host_key = self.workdir / "ssh_host_ed25519_key"
        self.user_key = self.workdir / "id_ed25519"
        _keygen(self.host_key)
        _keygen(self.user_key)
        (self.workdir / "authorized_keys").write_text((self.workdir / "id_ed25519.pub").read_text())
        self.bin_dir = self.workdir / "bin"
        self.bin_dir.mkdir(exist_ok=True)
        self._write_bin(python, gpus)
        self.account: LoginAccount | None = LoginAccount(self.workdir / "home")
        self.log_path = self.workdir / "sshd.log"
        self.config_path = self.workdir / "sshd_config"
        self._write_config()
        self.proc: subprocess.Popen | None = None

    def _write_bin(self, python: str, gpus: int | None) -> None:
        env_file = self.bin_dir / "env.sh"
        env_file.write_text("# sourced by python3 before the interpreter starts: per-machine variables\n")
        wrapper = self.bin_dir / "python3"
        wrapper.write_text(f'#!/bin/sh\n. {shlex.quote(str(env_file))}\nexec {shlex.quote(python)} "$@"\n')
        wrapper.chmod(0o755)
        if gpus is not None:
            smi = self.bin_dir / "nvidia-smi"
            smi.write_text(_FAKE_NVIDIA_SMI.replace("@GPUS@", str(int(gpus))))
            smi.chmod(0o755)

    def _write_config(self) -> None:
        lines = [
            f"Port {self.port}",
            f"ListenAddress {self.host}",
            f"HostKey {self.host_key}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.workdir / 'authorized_keys'}",
            "StrictModes no",
            "UsePAM no",
            "PermitRootLogin yes",
            "PubkeyAuthentication yes",
            f"PasswordAuthentication {'yes' if self.password_auth else 'no'}",
            "KbdInteractiveAuthentication no",
            "PermitEmptyPasswords no",
            "UseDNS no",
            "MaxStartups 50",
            "MaxSessions 50",
            "LogLevel ERROR",
            f"Subsystem sftp {_SFTP_SERVER}",
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    # ----- lifecycle -----
    def start(self) -> "SshServer":
        """Start sshd on :attr:`port` (the same port again after :meth:`kill`) and wait until it listens.

        sshd dies with the thread that started it: start it from a thread that outlives it.
        """
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation folder
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config_path)], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on {self.host}:{self.port} within 10 s")

    def kill(self) -> None:
        """SIGKILL sshd and every connection it serves (their sessions drop at once)."""
        if self.proc is None:
            return
        # Freeze the whole tree first, so that nothing forks or is re-parented to init (and so
        # escapes, holding a connection open) between listing the processes and killing them.
        frozen: set[int] = set()
        while True:
            todo = {self.proc.pid, *_descendants(self.proc.pid)} - frozen
            if not todo:
                break
            for pid in todo:
                _signal(pid, signal.SIGSTOP)
            frozen |= todo
        for pid in frozen:
            _signal(pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Kill and start again on the same port with the same keys."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Kill the server and remove its login account."""
        self.kill()
        if self.account is not None:
            self.account.remove()
            self.account = None

    # ----- what tests need -----
    @property
    def name(self) -> str:
        return f"{self.machine()['user']}@{self.host}:{self.port}"

    def known_hosts_line(self) -> str:
        """The server's host key as a known_hosts line (``[127.0.0.1]:port ssh-ed25519 ...``)."""
        kind, blob = (self.workdir / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        return f"[{self.host}]:{self.port} {kind} {blob}\n"

    def trust(self, path: Path | None = None) -> None:
        """Record the host key in NNI's known_hosts (or ``path``)."""
        path = Path(path) if path else known_hosts_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(self.known_hosts_line())

    def machine(self, **overrides) -> dict:
        """The canonical ``machineList`` entry for this server (its account, with the key or the password)."""
        machine = {
            "host": self.host, "port": self.port, "user": self.account.name if self.account else "", "password": None,
            "sshKeyFile": str(self.user_key), "sshPassphrase": None,
            "useActiveGpu": False, "maxTrialNumberPerGpu": 1, "gpuIndices": None,
            "pythonPath": str(self.bin_dir),
        }
        if self.password_auth and self.account is not None:
            machine.update(password=self.account.password, sshKeyFile=None)
        machine.update(overrides)
        return machine

    def __enter__(self) -> "SshServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
