"""The lifeline guardian: trials do not outlive their manager. Standard library only.

One guardian process per :class:`~nni.training_services.local.LocalTrainingService` (started
as ``python -I -S guardian.py`` in its own session, ~15 ms once) holds the read end of a pipe
whose write end only the service holds. When the service's process exits in any way
(``kill -9`` included) the kernel closes the write end and the guardian's read returns EOF. It
then finds every process started for the service's trials -- those whose environment has
``NNI_LOCAL_GUARDIAN=<token>``, the token the service gave this guardian and its trials
(``/proc/<pid>/environ``, same user; several services may share one ``trials`` folder) --,
writes ``<NNI_SYS_DIR>/.nni/manager_died`` (``<epoch ms>``), sends SIGTERM to their process
groups and SIGKILL ``GRACE`` seconds later (looking again, for a trial started in the last
instant).

A clean stop writes ``q`` to the pipe before closing it: the guardian exits and touches nothing.

Trials need no wrapper for this (no shell and no watcher process per trial), and there is no
window in which a trial is started but not yet known to the guardian: it looks the trials up
when the manager is gone. A trial's descendants keep its environment and process group
unless they change them on purpose.
"""
import os
import signal
import sys
import time

MANAGER_DIED_FILE = "manager_died"  # in <trial>/.nni/; nni.server.resume reads it


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


TOKEN_VAR = "NNI_LOCAL_GUARDIAN"  # in every trial's environment: the guardian that watches it


def find_trials(token: str) -> dict:
    """``{process group id: trial folder (NNI_SYS_DIR)}`` of the live processes whose environment
    has ``NNI_LOCAL_GUARDIAN=token`` (this user's processes; others are unreadable)."""
    marker = os.fsencode(f"{TOKEN_VAR}={token}")
    me = os.getpid()
    found = {}
    try:
        names = os.listdir("/proc")
    except OSError:  # no procfs (not Linux): nothing can be found
        return found
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read()
            if marker not in environ:
                continue
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:  # gone, or another user's
            continue
        if fields[0] in (b"Z", b"X"):
            continue
        entries = environ.split(b"\0")
        if marker not in entries:
            continue
        found[int(fields[2])] = next((os.fsdecode(e[12:]) for e in entries if e.startswith(b"NNI_SYS_DIR=")), "")
    return found


def _signal_groups(groups, sig: int) -> None:
    for pgid in groups:
        if pgid <= 1 or pgid == os.getpgrp():
            continue
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_trials(token: str, grace: float) -> int:
    """What the guardian does once the manager is gone; returns the number of trials found."""
    groups = find_trials(token)
    died = str(_now_ms())
    for folder in set(groups.values()):
        if not folder:
            continue
        try:
            with open(os.path.join(folder, ".nni", MANAGER_DIED_FILE), "w") as f:
                f.write(died + "\n")
        except OSError:
            pass
    _signal_groups(groups, signal.SIGTERM)
    if not groups:
        return 0
    time.sleep(grace)
    groups.update(find_trials(token))
    _signal_groups(groups, signal.SIGKILL)
    return len(set(groups.values()))


def main(args) -> int:
    if len(args) != 3:
        sys.stderr.write("usage: guardian.py LIFELINE_FD TOKEN GRACE_SECONDS\n")
        return 2
    fd, token, grace = int(args[0]), args[1], float(args[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C for the manager's terminal is not for us
    while True:
        try:
            data = os.read(fd, 64)
        except InterruptedError:
            continue
        if not data:
            break
        if b"q" in data:
            return 0
    stop_trials(token, grace)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
