"""Is a port free, and if not, which process listens on it.

The listener is found from ``/proc/net/tcp{,6}`` (the socket inode of the LISTEN entry) and
``/proc/<pid>/fd`` (which process holds that inode); where ``/proc`` cannot tell (another
user's process, not Linux), ``ss -ltnp`` is asked when it exists.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from typing import Optional

_LISTEN = "0A"


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether the manager could bind ``host:port`` (same options as the manager's own check)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        return False
    finally:
        sock.close()
    return True


def listening_inodes(port: int, proc_net: str = "/proc/net") -> set[str]:
    inodes: set[str] = set()
    for name in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc_net, name), encoding="ascii") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            local_port = int(fields[1].rpartition(":")[2], 16)
            if local_port == port:
                inodes.add(fields[9])
    return inodes


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return " ".join(a for a in f.read().decode("utf-8", "replace").split("\0") if a)
    except OSError:
        return ""


def pids_of_inodes(inodes: set[str], proc: str = "/proc") -> list[int]:
    targets = {f"socket:[{i}]" for i in inodes}
    found: list[int] = []
    if not targets:
        return found
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        fd_dir = os.path.join(proc, entry, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(os.path.join(fd_dir, fd)) in targets:
                    found.append(int(entry))
                    break
            except OSError:
                continue
    return sorted(found)


def _from_ss(port: int) -> Optional[str]:
    ss = shutil.which("ss")
    if not ss:
        return None
    try:
        out = subprocess.run([ss, "-H", "-ltnp", f"sport = :{port}"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if "users:((" in line:
            # users:(("python3",pid=1234,fd=5))
            users = line.split("users:((", 1)[1]
            name = users.split(",", 1)[0].strip('"')
            pid = users.split("pid=", 1)[1].split(",", 1)[0] if "pid=" in users else "?"
            return f"pid {pid} ({name})"
    return None


def describe_port_owner(port: int) -> str:
    """``'pid 1234 (python -m http.server 8080)'``, or ``'another process'`` if it cannot be told."""
    pids = pids_of_inodes(listening_inodes(port))
    if pids:
        parts = []
        for pid in pids[:3]:
            cmd = _cmdline(pid)
            if len(cmd) > 80:
                cmd = cmd[:77] + "..."
            parts.append(f"pid {pid} ({cmd})" if cmd else f"pid {pid}")
        return ", ".join(parts)
    return _from_ss(port) or "another process"


def free_port_near(port: int, tries: int = 50) -> Optional[int]:
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        if port_is_free(candidate):
            return candidate
    return None
