"""Leave a finished process without the interpreter's module teardown.

Tearing down a large module graph (aiohttp, peewee and asyncio in the manager; numpy in the
dispatcher; torch in a trial) costs 50-300 ms of CPU after the work is done; the manager's is
paid inside ``Experiment.stop()`` / ``nnictl stop``. :func:`exit_now` does what matters of a
normal exit (atexit handlers, which include ``logging.shutdown``, then flushing stdout /
stderr) and ends with ``os._exit``. When a non-daemon thread is still alive it falls back to
``sys.exit`` so that the thread is joined as usual.
"""
from __future__ import annotations

import os
import sys

__all__ = ["exit_now"]


def exit_now(code: int = 0, join_threads: bool = False) -> None:
    """Exit with ``code`` now (see the module doc); never returns.

    ``join_threads``: wait for live non-daemon threads here, then still skip the teardown
    (a forked child whose parent preloaded the modules), instead of falling back to ``sys.exit``."""
    import atexit
    import threading

    main = threading.main_thread()
    others = [t for t in threading.enumerate() if t is not main and t.is_alive() and not t.daemon]
    if others and not join_threads:
        sys.exit(code)
    for t in others:
        t.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code if isinstance(code, int) else 1)
