"""Which experiment a command means, and how to read it.

The experiments of this machine are the rows of the manager's registry
(:class:`nni.server.store.ExperimentsRegistry`); nnictl keeps no list of its own. An
experiment is *alive* while its manager process runs (the row's ``pid`` exists): then it is
reached through the REST client of :mod:`nni.runtime.rest_api`; a stopped experiment is
read from its store (``<dir>/db/nni.sqlite``) without starting anything.
"""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from nni.runtime.states import LIVE_STATES, ExperimentStatus

from .errors import NnictlError

def pid_alive(pid: Any) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return _not_zombie(int(pid))


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def manager_option(pid: Any, option: str, default: str = "") -> str:
    """The value of ``option`` (``--url-prefix``, ``--host``) the manager ``pid`` was started with.

    The registry has no column for them, so they are read from the process's command line.
    """
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as f:
            argv = f.read().decode("utf-8", "replace").split("\0")
    except (OSError, ValueError, TypeError):
        return default
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return default


def manager_url_prefix(pid: Any) -> str:
    """The ``--url-prefix`` the manager ``pid`` was started with ('' if none or unknown)."""
    return manager_option(pid, "--url-prefix")


@dataclass
class ExperimentRef:
    """One registry row as nnictl uses it."""

    id: str
    name: Optional[str]
    status: Optional[str]
    port: Optional[int]
    pid: Optional[int]
    platform: Optional[str]
    start_time: Optional[int]
    end_time: Optional[int]
    workdir: Optional[str]
    alive: bool

    @classmethod
    def from_row(cls, row: dict) -> "ExperimentRef":
        from nni.server.store import ExperimentsRegistry

        alive = pid_alive(row.get("pid"))
        status = ExperimentsRegistry.effective_status(row)
        if not alive and (status in LIVE_STATES or status == ExperimentStatus.VIEWED):
            status = ExperimentStatus.STOPPED.value  # the manager is gone (killed, crashed, or the row is stale)
        return cls(
            id=row["id"], name=row.get("name"), status=status, port=row.get("port"), pid=row.get("pid"),
            platform=row.get("platform"), start_time=row.get("start_time"), end_time=row.get("end_time"),
            workdir=row.get("workdir"), alive=alive,
        )

    # ----- access -----

    @property
    def directory(self) -> Path:
        if self.workdir:
            return Path(self.workdir)
        from nni.server.store import experiments_root

        return experiments_root() / self.id

    @property
    def url_prefix(self) -> str:
        return manager_url_prefix(self.pid) if self.alive else ""

    @property
    def host(self) -> str:
        """The address the manager is bound to (``--host``)."""
        return manager_option(self.pid, "--host", "127.0.0.1") if self.alive else "127.0.0.1"

    @property
    def token(self) -> Optional[str]:
        """The manager's access token, from the experiment's folder (``None``: started with --no-token)."""
        from nni.runtime.access import read_token

        return read_token(self.directory) if self.alive else None

    def client(self, timeout: float = 20):
        from nni.runtime.rest_api import RestClient

        from .launcher import client_host

        if not self.alive or not self.port:
            raise NnictlError(f"experiment {self.id} is not running (status {self.status}); resume it with 'nnictl resume {self.id}'")
        return RestClient(self.port, host=client_host(self.host), prefix=self.url_prefix, token=self.token or False, timeout=timeout)

    def call(self, name: str, body: Any = None, query: Optional[dict] = None, **path_params: Any) -> Any:
        """Call a REST route of the running manager; failures become one-line :class:`NnictlError`."""
        from nni.runtime.rest_api import RestError

        try:
            return self.client().call(name, body=body, query=query, **path_params)
        except RestError as err:
            raise NnictlError(f"experiment {self.id}: {err}") from None
        except ConnectionError as err:
            raise NnictlError(f"experiment {self.id}: {err}") from None

    def open_store(self):
        """The experiment's store, read-only (works for stopped experiments)."""
        from nni.server.store import ExperimentStore, store_path

        path = store_path(self.directory)
        if not path.exists():
            raise NnictlError(f"experiment {self.id}: no store at {path} (the folder was moved or deleted)")
        return ExperimentStore(path, readonly=True)

    def read(self, what: str, **kw: Any) -> Any:
        """Read-only data, from the manager when it runs, else from the store.

        ``what``: ``trial_jobs``, ``metric_data`` (``metric_type=``), ``export_data``, ``status``,
        ``profile``, ``config``, ``job_statistics``.
        """
        if self.alive:
            route = {
                "trial_jobs": "list_trial_jobs", "metric_data": "get_metric_data", "export_data": "export_data",
                "status": "get_status", "profile": "get_experiment_profile", "job_statistics": "get_job_statistics",
            }
            if what == "config":
                return (self.call("get_experiment_profile").get("params") or {}).get("config") or {}
            query = {"type": kw["metric_type"]} if kw.get("metric_type") else None
            return self.call(route[what], query=query)
        store = self.open_store()
        try:
            if what == "trial_jobs":
                return store.trial_jobs()
            if what == "metric_data":
                return store.metric_data(metric_type=kw.get("metric_type"))
            if what == "export_data":
                return store.export_data()
            if what == "job_statistics":
                return store.job_statistics()
            if what == "config":
                return store.config()
            if what == "status":
                st = store.status()
                return {"status": self.status or st.get("status"), "errors": st.get("errors", [])}
            if what == "profile":
                from nni.runtime.experiment_profile import experiment_profile, read_cluster_metadata

                return experiment_profile(store.experiment_row(), store.config(), read_cluster_metadata(store.path.parent))
            raise KeyError(what)
        finally:
            store.close()


def registry():
    from nni.server.store import ExperimentsRegistry

    return ExperimentsRegistry()


def all_experiments() -> list[ExperimentRef]:
    return [ExperimentRef.from_row(r) for r in registry().list()]


def _ids(refs: Sequence[ExperimentRef]) -> str:
    return ", ".join(f"{r.id} (port {r.port})" if r.alive else f"{r.id} ({r.status})" for r in refs)


def find(experiment_id: Optional[str], refs: Optional[list[ExperimentRef]] = None, need_alive: bool = False) -> ExperimentRef:
    """The experiment an ``id`` argument means.

    An exact id, else a unique prefix of one id; without an id, the only running experiment.
    """
    refs = all_experiments() if refs is None else refs
    if not experiment_id:
        alive = [r for r in refs if r.alive]
        if len(alive) == 1:
            return alive[0]
        if not alive:
            raise NnictlError("no experiment is running; give an experiment id (see 'nnictl experiment list --all')")
        raise NnictlError(f"{len(alive)} experiments are running: {_ids(alive)}; give the id of one")
    exact = [r for r in refs if r.id == experiment_id]
    matches = exact or [r for r in refs if r.id.startswith(experiment_id)]
    if not matches:
        raise NnictlError(f"experiment {experiment_id!r} not found; see 'nnictl experiment list --all'")
    if len(matches) > 1:
        raise NnictlError(f"{experiment_id!r} matches several experiments: {_ids(matches)}; give more of the id")
    ref = matches[0]
    if need_alive and not ref.alive:
        raise NnictlError(f"experiment {ref.id} is not running (status {ref.status}); resume it with 'nnictl resume {ref.id}'")
    return ref


def select_stop_targets(refs: Sequence[ExperimentRef], experiment_id: Optional[str] = None,
                        port: Optional[int] = None, all_: bool = False) -> list[ExperimentRef]:
    """The experiments ``nnictl stop`` stops, by the reference's rules.

    1. no id: the one running experiment (error if none or several);
    2. an id of a running experiment: that one (error if it is not running);
    3. ``--port``: the experiment running on that port;
    4. ``--all``: every running experiment;
    5. an id ending with ``*``: every running experiment whose id matches the pattern (glob);
    6. an unknown id that is the prefix of one running experiment's id: that one;
    7. a prefix of several ids: an error that lists them.
    """
    alive = [r for r in refs if r.alive]
    if all_:
        if not alive:
            raise NnictlError("no experiment is running")
        return alive
    if port is not None:
        on_port = [r for r in alive if r.port == port]
        if experiment_id:
            on_port = [r for r in on_port if r.id == experiment_id or r.id.startswith(experiment_id.rstrip("*"))]
        if not on_port:
            raise NnictlError(f"no running experiment on port {port}" + (f" with id {experiment_id!r}" if experiment_id else ""))
        return on_port
    if not experiment_id:
        return [find(None, refs)]
    if experiment_id.endswith("*"):
        matched = [r for r in alive if fnmatch.fnmatchcase(r.id, experiment_id)]
        if not matched:
            raise NnictlError(f"no running experiment matches {experiment_id!r}")
        return matched
    exact = [r for r in refs if r.id == experiment_id]
    if exact:
        if not exact[0].alive:
            raise NnictlError(f"experiment {experiment_id} is not running (status {exact[0].status})")
        return exact
    matched = [r for r in alive if r.id.startswith(experiment_id)]
    if len(matched) == 1:
        return matched
    if len(matched) > 1:
        raise NnictlError(f"{experiment_id!r} is the prefix of several running experiments: {_ids(matched)}; give more of the id")
    stopped = [r for r in refs if r.id.startswith(experiment_id)]
    if stopped:
        raise NnictlError(f"experiment {stopped[0].id} is not running (status {stopped[0].status})" if len(stopped) == 1
                          else f"no running experiment matches {experiment_id!r} (stopped: {_ids(stopped)})")
    raise NnictlError(f"experiment {experiment_id!r} not found; see 'nnictl experiment list --all'")
