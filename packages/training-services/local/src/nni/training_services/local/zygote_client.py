"""The trial-side half of the warm-interpreter launcher (see :mod:`.zygote`). Standard library only.

The local training service runs ``python -I -S zygote_client.py SOCKET ARGV...`` in place of
``ARGV`` (the trial command). The client hands its stdin / stdout / stderr, its working directory and its
environment (the trial's) to the zygote, which forks a child that runs ``ARGV``. The client
then stands in for that child: signals it receives are forwarded to the child's process
group, and it exits with the child's exit status (killed by a signal: the same signal). When
the client dies (``SIGKILL`` after the cancel grace), the zygote kills the child.

When no zygote answers, the client runs ``ARGV`` itself (``execvp``), as if it were not there.
Run as a script file, not ``-m``: importing the ``nni`` packages would cost every trial more
than this whole client.
"""
import array
import os
import signal
import socket
import sys

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def encode_request(argv, cwd, env) -> bytes:
    """``argc, argv..., cwd, KEY=VALUE...``, NUL separated (no JSON: ``import json`` costs ~20 ms)."""
    parts = [str(len(argv)).encode()] + [os.fsencode(a) for a in argv] + [os.fsencode(cwd)]
    parts += [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
    body = b"\0".join(parts)
    return b"%08d" % len(body) + body


def _fallback(argv):
    try:
        os.execvp(argv[0], argv)
    except OSError as err:
        sys.stderr.write(f"{argv[0]}: {err.strerror}\n")
        os._exit(127 if isinstance(err, FileNotFoundError) else 126)


def main(args) -> None:
    if len(args) < 2:
        sys.stderr.write("usage: zygote_client.py SOCKET ARGV...\n")
        os._exit(2)
    path, argv = args[0], args[1:]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        fds = bytes(array.array("i", [0, 1, 2]))
        sock.sendmsg([encode_request(argv, os.getcwd(), os.environ)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    except OSError:
        sock.close()
        _fallback(argv)
    pid = None
    buf = b""
    pending = []  # signals that came before the child's pid

    def forward(signum, _frame):
        if pid is None:
            pending.append(signum)
            return
        try:
            os.killpg(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    while True:
        try:
            data = sock.recv(256)
        except InterruptedError:
            continue
        if not data:
            break
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line[:1] == b"P":
                pid = int(line[1:])
                for signum in pending:
                    forward(signum, None)
                pending.clear()
            elif line[:1] == b"X":
                status = int(line[1:])
                if os.WIFSIGNALED(status):
                    sig = os.WTERMSIG(status)
                    signal.signal(sig, signal.SIG_DFL)
                    sys.stdout.flush()
                    os.kill(os.getpid(), sig)
                os._exit(os.waitstatus_to_exitcode(status) if not os.WIFSIGNALED(status) else 128 + os.WTERMSIG(status))
            elif line[:1] == b"F":  # the zygote could not fork: run the command here
                sock.close()
                _fallback(argv)
    if pid is None:  # the zygote went away before starting the child (e.g. it failed to preload)
        sock.close()
        _fallback(argv)
    sys.stderr.write("nni: the trial launcher (zygote) exited before the trial; its exit code is unknown\n")
    os._exit(255)


if __name__ == "__main__":
    main(sys.argv[1:])
