"""A warm interpreter that forks trials: the heavy imports once per experiment, not once per trial.

A multi-trial NAS trial (``python3 -m nni.retiarii.trial_entry <engine>``) spends seconds
importing torch (and the ``torch._dynamo`` every torch optimizer imports) before it trains for
about as long. For such commands the local training service starts one *zygote* per experiment:
``nni.training_services.local.zygote.main --socket S --preload torch,...`` imports the
modules once, then forks a child per trial that runs the command's module as ``__main__``.

What a trial sees is what it saw before, except that the trial's process is
:mod:`.zygote_client`, a small process that hands the zygote its stdin / stdout / stderr,
working directory and environment, forwards the signals it gets (cancel, timeout, the lifeline's
SIGTERM) to the child's process group, and exits with the child's status (the same signal when
it was killed), so the exit code, ``.nni/state``, stdout / stderr files, ``CUDA_VISIBLE_DEVICES``
and the other variables are the trial's own. When the client is killed (the cancel's SIGKILL
after the grace) the zygote kills the child; when the manager dies, the zygote's own lifeline
breaks and the children still running after the grace are killed. The child's ``random``,
numpy global and torch default generators are re-seeded from the OS, as a new process's are
(a trial that calls ``torch.manual_seed`` computes exactly what it computed before).
Known differences: the child shares the zygote's string-hash seed (``PYTHONHASHSEED``), and the
preloaded modules are in ``sys.modules`` even when the trial would not import them.

Only commands known to be safe are sent: ``<python> -m <module> ...`` where ``<python>`` is the
manager's interpreter and ``<module>`` is in :data:`ZYGOTE_MODULES`. ``NNI_LOCAL_ZYGOTE=0``
turns it off. Forking is safe because the zygote only imports: no torch operator has run, so
no intra-op thread pool exists (numpy's OpenBLAS pool re-initialises itself after a fork).
If the zygote cannot start or fails to import, the client runs the command itself.
"""
from __future__ import annotations

import os
import shlex
import sys

__all__ = ["ZYGOTE_MODULES", "ZYGOTE_ENV", "zygote_argv", "client_command", "serve"]

ZYGOTE_ENV = "NNI_LOCAL_ZYGOTE"

#: module run by ``python -m`` -> what the zygote imports for it (in this order; missing ones are skipped)
ZYGOTE_MODULES = {
    "nni.retiarii.trial_entry": (
        "torch", "torch.optim", "torch._dynamo", "torch.nn.functional",
        "nni.trial", "nni.retiarii.serializer", "nni.retiarii.fixed", "nni.retiarii.nn.pytorch",
        "nni.retiarii.evaluator", "nni.retiarii.trial_entry",
    ),
}

CLIENT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zygote_client.py")


def zygote_argv(command: str, python_dir: str | None = None) -> list[str] | None:
    """``command`` as an argv the zygote can run, or ``None`` (run it as before).

    Eligible: ``<python> -m <module> [args]`` with ``<module>`` in :data:`ZYGOTE_MODULES` and
    ``<python>`` this interpreter (a bare name is looked up in ``python_dir``, the folder
    ``run.sh`` puts first on ``PATH``), nothing else on the line; not when ``NNI_LOCAL_ZYGOTE``
    is ``0`` / ``false``.
    """
    if os.environ.get(ZYGOTE_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if len(argv) < 3 or argv[1] != "-m" or argv[2] not in ZYGOTE_MODULES:
        return None
    if any(ch in command for ch in ";&|<>`$(){}\n"):  # anything a shell would do more than run argv
        return None
    exe = argv[0]
    path = exe if "/" in exe else os.path.join(python_dir or os.path.dirname(sys.executable), exe)
    if not os.path.exists(path) or os.path.realpath(path) != os.path.realpath(sys.executable):
        return None
    return argv


def client_command(socket_path: str, argv: list[str]) -> str:
    """The shell command ``run.sh`` evaluates in place of ``argv``."""
    q = shlex.quote
    return " ".join([q(sys.executable), "-I", "-S", q(CLIENT_PATH), q(socket_path)] + [q(a) for a in argv])


# ----- the zygote process -----


def _decode_request(body: bytes) -> tuple[list[str], str, dict]:
    parts = body.split(b"\0")
    argc = int(parts[0])
    argv = [os.fsdecode(p) for p in parts[1 : 1 + argc]]
    cwd = os.fsdecode(parts[1 + argc])
    env = {}
    for item in parts[2 + argc :]:
        key, _, value = item.partition(b"=")
        env[os.fsdecode(key)] = os.fsdecode(value)
    return argv, cwd, env


def _reseed() -> None:
    """What a new process draws from the OS: the seeds of ``random``, numpy's global generator
    and torch's default generators (torch seeds them from the OS at start-up; ``torch.seed()``
    only queues the CUDA part, so CUDA stays uninitialised)."""
    random = sys.modules.get("random")
    if random is not None:
        random.seed()
    for name in ("numpy.random", "torch"):
        module = sys.modules.get(name)
        if module is not None:
            try:
                module.seed()
            except Exception:  # noqa: BLE001 - an unusual version: leave its generator as it is
                pass


def _finish(code: int) -> None:
    """Exit as the interpreter would after ``__main__`` (threads joined, atexit run, streams
    flushed), without the module teardown of the zygote's preloaded modules."""
    from nni.runtime.process_exit import exit_now

    exit_now(code, join_threads=True)


def _run_child(argv: list[str], cwd: str, env: dict, fds: list[int], close_fds: list[int]) -> None:
    """In the forked child: become the trial process (never returns)."""
    import signal

    code = 1
    try:
        os.setsid()  # its own process group: the client signals the group, like killpg on a trial
        signal.set_wakeup_fd(-1)
        for fd in close_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        _reseed()
        module = argv[2]
        sys.argv = [argv[2]] + argv[3:]
        sys.path[0] = cwd  # as `python -m` does
        sys.modules.pop(module, None)  # run as __main__ afresh (a preloaded copy would warn)
        import runpy

        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code & 0xFF
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # die of SIGINT, as python does
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:  # noqa: BLE001 - the trial's own error: traceback and exit 1, as python does
            import traceback

            traceback.print_exc()
            code = 1
        _finish(code)
    finally:
        os._exit(code)


def serve(socket_path: str, preload: list[str], allowed: list[str], lifeline_fd: int | None = None, grace: float = 3.0,
          listen_fd: int | None = None) -> int:
    """The zygote's main loop: preload, then
    fork a child for every client asking to run ``<python> -m <module in allowed> ...``."""
    import array
    import importlib
    import selectors
    import signal
    import socket
    import time

    if listen_fd is not None:  # bound by the training service before it started us
        listener = socket.socket(fileno=listen_fd)
    else:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(socket_path)  # at once, so that early clients queue while we import
        listener.listen(128)
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError as err:
            print(f"zygote: cannot preload {name}: {err}", file=sys.stderr, flush=True)
    torch = sys.modules.get("torch")
    if torch is not None and getattr(getattr(torch, "cuda", None), "is_initialized", lambda: False)():
        # a CUDA context does not survive a fork: serve nobody, the clients run their trials cold
        print("zygote: CUDA was initialized while preloading; not forking trials", file=sys.stderr, flush=True)
        return 0
    import gc

    gc.collect()
    gc.freeze()  # the preloaded objects are never scanned again: a child's GC does not copy their pages
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1
    print(f"zygote: ready, pid {os.getpid()}, {len(preload)} modules preloaded, {threads} OS thread(s)", file=sys.stderr, flush=True)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    if lifeline_fd is not None:
        sel.register(lifeline_fd, selectors.EVENT_READ, "lifeline")
    pending: dict[socket.socket, list] = {}  # connection -> [bytes so far, fds]
    child_of: dict[socket.socket, int] = {}  # connection -> child pid
    conn_of: dict[int, socket.socket] = {}  # child pid -> connection (None once the client left)
    uid = os.getuid()
    deadline = None  # set when the manager is gone

    def own_fds() -> list[int]:
        fds = [listener.fileno(), wake_r, wake_w]
        if lifeline_fd is not None:
            fds.append(lifeline_fd)
        try:
            fds.append(sel.fileno())
        except (AttributeError, ValueError):
            pass
        fds += [c.fileno() for c in list(pending) + list(child_of)]
        for _, received in pending.values():  # other clients' stdio, not this trial's
            fds += received
        return [fd for fd in fds if fd >= 0]

    def drop(conn: socket.socket) -> None:
        pending.pop(conn, None)
        child_of.pop(conn, None)
        try:
            sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()

    def start(conn: socket.socket, body: bytes, fds: list[int]) -> None:
        argv, cwd, env = _decode_request(body)
        if len(argv) < 3 or argv[1] != "-m" or argv[2] not in allowed or len(fds) < 3:
            for fd in fds:
                os.close(fd)
            conn.sendall(b"F\n")
            drop(conn)
            return
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as err:
            print(f"zygote: fork failed: {err}", file=sys.stderr, flush=True)
            pid = -1
        if pid == 0:
            _run_child(argv, cwd, env, fds, own_fds() + [conn.fileno()])
        for fd in fds:
            os.close(fd)
        if pid < 0:
            conn.sendall(b"F\n")
            drop(conn)
            return
        child_of[conn] = pid
        conn_of[pid] = conn
        try:
            conn.sendall(b"P%d\n" % pid)
        except OSError:
            pass

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = conn_of.pop(pid, None)
            if conn is not None and child_of.get(conn) == pid:
                try:
                    conn.sendall(b"X%d\n" % status)
                except OSError:
                    pass
                drop(conn)

    while True:
        if deadline is not None:
            if not conn_of:
                return 0
            if time.monotonic() >= deadline:
                for pid in list(conn_of):
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                deadline = time.monotonic() + 3600  # reap what is left, then exit
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        for key, _ in sel.select(timeout):
            what = key.data
            if what == "accept":
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
                if int.from_bytes(creds[4:8], sys.byteorder) != uid:  # only this user's trials
                    conn.close()
                    continue
                pending[conn] = [b"", []]
                sel.register(conn, selectors.EVENT_READ, "conn")
            elif what == "wake":
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                reap()
            elif what == "lifeline":
                if not os.read(lifeline_fd, 512):  # the manager is gone: no new trials
                    sel.unregister(lifeline_fd)
                    sel.unregister(listener)
                    listener.close()
                    deadline = time.monotonic() + grace
            else:
                conn = key.fileobj
                if conn in pending:
                    state = pending[conn]
                    try:
                        data, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
                    except OSError:
                        data, anc = b"", []
                    for level, kind, cdata in anc:
                        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                            got = array.array("i")
                            got.frombytes(cdata[: len(cdata) - len(cdata) % got.itemsize])
                            state[1].extend(got)
                    if not data:
                        for fd in state[1]:
                            os.close(fd)
                        drop(conn)
                        continue
                    state[0] += data
                    if len(state[0]) >= 8 and len(state[0]) - 8 >= int(state[0][:8]):
                        body, fds = state[0][8 : 8 + int(state[0][:8])], state[1]
                        del pending[conn]
                        start(conn, body, fds)
                else:
                    try:
                        data = conn.recv(64)
                    except OSError:
                        data = b""
                    if not data:  # the client is gone (killed): so goes its trial
                        pid = child_of.get(conn)
                        if pid is not None:
                            try:
                                os.killpg(pid, signal.SIGKILL)
                            except (ProcessLookupError, PermissionError):
                                pass
                        drop(conn)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="nni.training_services.local.zygote")
    p.add_argument("--socket", required=True)
    p.add_argument("--preload", default="", help="comma-separated modules to import before serving")
    p.add_argument("--modules", required=True, help="comma-separated modules a client may run (`python -m MODULE`)")
    p.add_argument("--lifeline", type=int, default=None, help="fd whose EOF means the manager is gone")
    p.add_argument("--listen-fd", type=int, default=None, help="an inherited listening socket bound to --socket")
    args = p.parse_args(argv)
    return serve(args.socket, [m for m in args.preload.split(",") if m], args.modules.split(","), args.lifeline,
                 listen_fd=args.listen_fd)


if __name__ == "__main__":
    sys.exit(main())
