"""Access to a manager: its access token, where that token is kept, and private files.

Every manager requires an access token (as Jupyter does): ``nnictl`` and
``Experiment.start()`` create one, hand it to the manager through ``$NNI_ACCESS_TOKEN``
(never on a command line, which other local users can read) and the manager keeps it in
``<experiment dir>/access_token`` (mode 0600, in a 0700 folder). Clients on this machine
(:class:`~nni.runtime.rest_api.RestClient`, ``nnictl``, ``Experiment.connect``, trials that
report over HTTP) find it there by themselves: the experiments registry gives the folder of
the experiment served on a port.

Only loopback binds may go without a token (``--no-token`` / ``$NNI_NO_TOKEN=1`` /
``Experiment.start(token=False)``), for old scripts.

Standard library only: imported by ``RestClient`` and by trials.
"""
from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path
from typing import Optional

#: Name of the token file inside an experiment's folder.
TOKEN_FILE = "access_token"
#: The experiments registry (``<experiments root>/.experiments.sqlite``), owned by nni.server.
REGISTRY_FILE = ".experiments.sqlite"
#: Environment variable that hands a manager its token (read once, then removed).
TOKEN_ENV = "NNI_ACCESS_TOKEN"
#: Environment variable that turns the token off (loopback binds only).
NO_TOKEN_ENV = "NNI_NO_TOKEN"
#: Bind addresses where the token may be turned off (the machine's own, default address).
NO_TOKEN_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_HOST = "127.0.0.1"


def experiments_root() -> Path:
    """``$NNI_EXPERIMENTS_DIR`` or ``~/nni-experiments``."""
    env = os.environ.get("NNI_EXPERIMENTS_DIR")
    return Path(env).expanduser() if env else Path.home() / "nni-experiments"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def no_token_from_env() -> bool:
    return (os.environ.get(NO_TOKEN_ENV) or "").strip().lower() in ("1", "true", "yes", "on")


def check_no_token(host: str, option: str = "--no-token") -> None:
    """Raise a one-line ``ValueError`` unless ``host`` may be served without a token."""
    if (host or DEFAULT_HOST).strip().lower() not in NO_TOKEN_HOSTS:
        raise ValueError(f"{option}: a token is mandatory when binding {host}; "
                         f"turning it off is allowed only for {', '.join(NO_TOKEN_HOSTS)}")


# ----- private files (owner only, whatever the umask) -----


def private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and missing parents) and make it 0700; returns it.

    The mode is set with ``chmod`` after ``mkdir`` because ``mkdir``'s mode is filtered by
    the umask. A folder owned by someone else is left as it is.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    try:
        if path.stat().st_uid == os.getuid():
            os.chmod(path, 0o700)
    except OSError:
        pass
    return path


def private_file(path: str | os.PathLike) -> Path:
    """Create ``path`` empty if missing and make it 0600 (before anything is written to it)."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


# ----- the token file -----


def token_path(experiment_dir: str | os.PathLike) -> Path:
    return Path(experiment_dir) / TOKEN_FILE


def write_token(experiment_dir: str | os.PathLike, token: Optional[str]) -> None:
    """Keep ``token`` in the experiment's folder (0600); ``None`` removes the file."""
    path = token_path(experiment_dir)
    if token is None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, token.encode("ascii"))
    finally:
        os.close(fd)


def read_token(experiment_dir: str | os.PathLike) -> Optional[str]:
    """The token kept in the experiment's folder, or ``None``."""
    try:
        text = token_path(experiment_dir).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def token_near(folder: Optional[str]) -> Optional[str]:
    """The token of the experiment that ``folder`` (a trial folder) belongs to, if any.

    A trial folder is ``<experiment dir>/trials/<id>``: the folder and its two parents are tried.
    """
    if not folder:
        return None
    path = Path(folder)
    for candidate in (path, *list(path.parents)[:2]):
        token = read_token(candidate)
        if token:
            return token
    return None


def _alive(pid: object) -> bool:
    try:
        os.kill(int(pid), 0)  # type: ignore[arg-type]
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True
    return True


def find_token(port: int, root: Optional[str | os.PathLike] = None) -> Optional[str]:
    """The token of the running manager on ``port`` of this machine, from the registry.

    Rows of the experiments registry with that port and a live pid, newest first; the first
    whose folder holds a token file gives it. ``None`` when there is none (a manager of
    another user, or one started with ``--no-token``).
    """
    path = Path(root) if root is not None else experiments_root()
    path = path / REGISTRY_FILE
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute("SELECT workdir, pid FROM experiments WHERE port = ? ORDER BY start_time DESC",
                                (int(port),)).fetchall()
        finally:
            conn.close()
    except (sqlite3.Error, ValueError, TypeError):
        return None
    for workdir, pid in rows:
        if workdir and pid and _alive(pid):
            token = read_token(workdir)
            if token:
                return token
    return None


# ----- addresses -----


def is_loopback(host: str) -> bool:
    host = (host or "").strip().strip("[]").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def local_addresses() -> list[str]:
    """IPv4 addresses of this machine's interfaces, from local tables only (no traffic).

    Linux's ``/proc/net/fib_trie`` lists every local address (``/32 host LOCAL``); elsewhere
    the host name's addresses are asked of the resolver.
    """
    found: list[str] = []
    try:
        with open("/proc/net/fib_trie", encoding="ascii", errors="replace") as f:
            last = None
            for line in f:
                stripped = line.strip()
                if stripped.startswith("|--"):
                    last = stripped[3:].strip()
                elif "/32 host LOCAL" in stripped and last and last not in found:
                    found.append(last)
    except OSError:
        pass
    if not found:
        import socket

        try:
            infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET, socket.SOCK_STREAM)
            found = list(dict.fromkeys(str(i[4][0]) for i in infos))
        except OSError:
            pass
    if "127.0.0.1" not in found:
        found.insert(0, "127.0.0.1")
    # Loopback first, then the others in their table order.
    return sorted(found, key=lambda a: not a.startswith("127.0.0.1"))


def url_hosts(host: str) -> list[str]:
    """The addresses to print in URLs for a manager bound to ``host`` (never ``0.0.0.0``)."""
    host = (host or DEFAULT_HOST).strip()
    if host in ("0.0.0.0", "", "::", "[::]"):
        return local_addresses()
    return [f"[{host}]" if ":" in host and not host.startswith("[") else host]


def web_urls(port: int, host: str = DEFAULT_HOST, prefix: str = "", token: Optional[str] = None) -> list[str]:
    """The web UI URLs of a manager, each carrying ``?token=`` when it has one."""
    prefix = "/" + prefix.strip("/") if prefix and prefix.strip("/") else ""
    query = f"/?token={token}" if token else ""
    return [f"http://{h}:{port}{prefix}{query}" for h in url_hosts(host)]
