"""``nni.experiment.Experiment``: launch, watch and control an experiment from Python.

Example:
    >>> from nni.experiment import Experiment           # doctest: +SKIP
    >>> experiment = Experiment('local')
    >>> experiment.config.trial_command = 'python3 main.py'
    >>> experiment.config.trial_concurrency = 2
    >>> experiment.config.search_space = {'C': {'_type': 'uniform', '_value': [0.1, 1]}}
    >>> experiment.config.tuner.name = 'TPE'
    >>> experiment.run(8080)                             # blocks; True when it ends DONE

The experiment runs in a manager process (``python -m nni.server``, from the
nni-webui-server distribution); this class talks to it through the REST routes of
:mod:`nni.runtime.rest_api`. Once it is stopped (``run()`` returns with the experiment
stopped, as in NNI v2.5), the reading methods (``get_status``, ``export_data``,
``get_job_metrics``, ``list_trial_jobs`` ...) read the experiment's store instead; only they
import the server's store module, lazily.
"""
from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Optional, Union

from ..runtime.ids import random_id
from ..runtime import access
from ..runtime.rest_api import RestClient, RestError
from ..runtime.states import HALTED_STATES
from .config import ExperimentConfig
from .data import TrialJob, TrialMetricData, TrialResult

__all__ = ["Experiment", "RunningExperimentError"]

_logger = logging.getLogger("nni.experiment")

INSTALL_HINT = "the experiment manager is not installed: pip install nni-webui-server (or pip install nni)"
STARTUP_TIMEOUT = 60.0


class RunningExperimentError(RuntimeError):
    """The manager could not be started or reached (one-line message)."""


def _print(message: str) -> None:
    print(f"[{datetime.now().strftime('%Y-%m-%d %H:%M:%S')}] {message}", flush=True)


def _new_id() -> str:
    return random_id(8)


def _require_server() -> None:
    if importlib.util.find_spec("nni.server") is None or importlib.util.find_spec("nni.server.manager") is None:
        raise RunningExperimentError(INSTALL_HINT)


def _client_host(host: str) -> str:
    """Where a client on this machine reaches a manager bound to ``host``."""
    return access.DEFAULT_HOST if host in ("0.0.0.0", "", "::") else host


def _last_line(path: Optional[str]) -> str:
    if not path:
        return ""
    try:
        lines = [l for l in Path(path).read_text(encoding="utf-8", errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    errors = [l for l in lines if l.startswith("Error:")]
    return (errors[-1] if errors else lines[-1] if lines else "").strip()


class Experiment:
    """One experiment, launched here or connected to.

    Args:
        config_or_platform: an :class:`~nni.experiment.config.ExperimentConfig`, or a
            training-service platform name (``'local'``) / list of names, which creates
            ``self.config`` with empty ``tuner`` / ``assessor`` / ``advisor`` to fill in.
    """

    def __init__(
        self,
        config_or_platform: Union[ExperimentConfig, str, list, None] = None,
        *,
        config: Optional[ExperimentConfig] = None,
        training_service: Union[str, list, None] = None,
    ) -> None:
        if config_or_platform is None:
            config_or_platform = config if config is not None else training_service
        if isinstance(config_or_platform, ExperimentConfig):
            self.config: Optional[ExperimentConfig] = config_or_platform
        elif config_or_platform is None:
            self.config = None
        else:
            self.config = ExperimentConfig(config_or_platform)
        self.id: Optional[str] = None
        self.port: Optional[int] = None
        self.host: str = access.DEFAULT_HOST
        self.url_prefix: str = ""
        self._token: Union[str, bool, None] = None  # None: found by RestClient; False: none
        self._exp_dir: Optional[Path] = None  # known after start(); else from the registry
        self._process: Optional[subprocess.Popen] = None
        self._atexit_registered = False

    # ----- launching -----

    @property
    def _client(self) -> RestClient:
        if self.port is None:
            raise RunningExperimentError("the experiment is not started or connected; call start(), run() or Experiment.connect()")
        return RestClient(self.port, host=_client_host(self.host), prefix=self.url_prefix, token=self._token)

    @property
    def url(self) -> Optional[str]:
        """The web UI URL (carrying the access token) while the experiment is served."""
        if self.port is None:
            return None
        token = self._client.token
        return access.web_urls(self.port, self.host, self.url_prefix, token)[0]

    def _prepare_access(self, host: str, token: Union[bool, str]) -> dict:
        """Check ``host`` / ``token`` and return the manager's environment (the token travels in it,
        never on its command line)."""
        host = (host or access.DEFAULT_HOST).strip()
        env = dict(os.environ)
        env.pop(access.TOKEN_ENV, None)
        if token is False or (token is True and access.no_token_from_env()):
            access.check_no_token(host, "token=False" if token is False else access.NO_TOKEN_ENV)
            self._token = False
            env[access.NO_TOKEN_ENV] = "1"
        else:
            env.pop(access.NO_TOKEN_ENV, None)
            self._token = token if isinstance(token, str) and token else access.new_token()
            env[access.TOKEN_ENV] = self._token
        self.host = host
        return env

    def _web_urls(self, port: int) -> str:
        return "   ".join(access.web_urls(port, self.host, self.url_prefix, self._token or None))

    def start(self, port: int = 8080, debug: bool = False, *, host: str = "127.0.0.1", token: Union[bool, str] = True) -> None:
        """Launch the experiment in the background and return once its REST API answers.

        Call :meth:`stop` when done (it is also called when the Python process exits).

        Args:
            port: port of the REST API and web UI.
            debug: debug logging.
            host: address to bind (``0.0.0.0``: every interface); an access token is always
                required off loopback.
            token: ``True`` (default): a new access token, printed in the web UI URL; a string:
                that token; ``False``: none (loopback only, for old scripts).
        """
        _require_server()
        env = self._prepare_access(host, token)
        if self.config is None:
            raise RunningExperimentError("no config: create the experiment with Experiment('local') or Experiment(config)")
        canon = self.config.to_canonical_dict()
        if debug:
            canon["debug"] = True
        self.id = _new_id()
        exp_dir = Path(os.path.expanduser(str(canon["experimentWorkingDirectory"]))) / self.id
        self._exp_dir = exp_dir
        access.private_dir(exp_dir)  # owner only: the store and the token file go here
        log_dir = exp_dir / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        config_path = exp_dir / "experiment_config.json"
        from nni.runtime.experiment_profile import write_config_file

        write_config_file(canon, config_path)  # SSH secrets masked; they go to an owner-only file beside it
        _print(f"Creating experiment, Experiment ID: {self.id}")
        _print("Starting web server...")
        args = ["--config", str(config_path), "--port", str(port), "--id", self.id, "--host", self.host]
        if debug:
            args.append("--debug")
        self._launch(args, port, str(log_dir / "nnictl_stderr.log"), env)
        _print("Setting up...")
        _print(f"Web UI URLs: {self._web_urls(port)}")

    def _launch(self, args: list[str], port: int, log_path: Optional[str] = None, env: Optional[dict] = None) -> None:
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="nni-manager-", suffix=".log")
            os.close(fd)
        with open(log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "nni.server", *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,  # a Ctrl-C in a notebook must not kill the manager
            )
        self.port = port
        deadline = time.monotonic() + STARTUP_TIMEOUT
        client = RestClient(port, host=_client_host(self.host), token=self._token, timeout=2)
        while True:
            rc = self._process.poll()
            if rc is not None:
                reason = _last_line(log_path) or f"the manager exited with code {rc}"
                self.port = None
                raise RunningExperimentError(reason.removeprefix("Error: "))
            try:
                status = client.call("get_status")
                if status:
                    break
            except (ConnectionError, RestError):
                pass
            if time.monotonic() > deadline:
                self._process.kill()
                self.port = None
                raise RunningExperimentError(f"the manager did not answer on port {port} within {STARTUP_TIMEOUT:.0f}s; see {log_path}")
            time.sleep(0.02)
        if not self._atexit_registered:
            atexit.register(self._stop_at_exit)
            self._atexit_registered = True

    def _stop_at_exit(self) -> None:
        if self._process is not None and self._process.poll() is None:
            try:
                self.stop()
            except Exception:  # noqa: BLE001 - interpreter shutdown: best effort
                self._process.terminate()

    def stop(self) -> None:
        """Stop the experiment (its running trials are cancelled) and wait for the manager to exit."""
        _print("Stopping experiment, please wait...")
        if self.port is not None:
            try:
                self._client.call("stop_experiment")
            except (ConnectionError, RestError):
                pass
        if self._process is not None:
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        elif self.port is not None:  # connected: wait until the port stops answering
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    RestClient(self.port, host=_client_host(self.host), timeout=1, prefix=self.url_prefix, token=self._token).call("get_status")
                except (ConnectionError, RestError):
                    break
                time.sleep(0.1)
        self.port = None
        _print("Experiment stopped")

    def run(self, port: int = 8080, wait_completion: bool = True, debug: bool = False, *, host: str = "127.0.0.1",
            token: Union[bool, str] = True) -> Optional[bool]:
        """Start, wait until the experiment is DONE (or fails), stop it (``host`` / ``token``: see :meth:`start`).

        Returns:
            ``True`` when it ended DONE, ``False`` on ERROR or when stopped from outside;
            ``None`` with ``wait_completion=False`` (then it keeps running, like :meth:`start`).
        """
        self.start(port, debug, host=host, token=token)
        if not wait_completion:
            return None
        return self._wait_and_stop()

    def _wait_and_stop(self) -> bool:
        try:
            while True:
                try:
                    status = self.get_status()
                except (ConnectionError, RestError):
                    return False
                if status == "DONE":
                    return True
                if status in HALTED_STATES:
                    if status == "ERROR":
                        errors = self._client.call("get_status").get("errors") or []
                        if errors:
                            _print(f"Experiment failed: {errors[-1]}")
                    return False
                time.sleep(0.05)
        finally:
            self.stop()

    @classmethod
    def connect(cls, port: int, url_prefix: str = "", *, host: str = "127.0.0.1", token: Optional[str] = None) -> "Experiment":
        """Attach to a running experiment (started by nnictl or another process).

        The access token of a manager of this machine is found by itself (in the experiment's
        folder); give ``token`` for another machine's (``host``).
        """
        exp = cls(None)
        exp.port = port
        exp.host = host
        exp.url_prefix = url_prefix
        exp._token = token
        try:
            profile = exp.get_experiment_profile()
            status = exp.get_status()
        except ConnectionError as err:
            exp.port = None
            raise RunningExperimentError(str(err)) from None
        except RestError as err:
            exp.port = None
            if err.status == 401:
                raise RunningExperimentError(f"the manager on port {port} needs its access token: it is not in the "
                                             f"experiments registry of this user; pass token=...") from None
            raise RunningExperimentError(f"port {port}: {err}") from None
        exp.id = profile["id"]
        canon = (profile.get("params") or {}).get("config")
        if canon:
            try:
                exp.config = ExperimentConfig.from_dict(canon)
            except ValueError:
                exp.config = None
        _print(f"Connect to port {port} success, experiment id is {exp.id}, status is {status}.")
        return exp

    @classmethod
    def resume(cls, experiment_id: str, port: int = 8080, wait_completion: bool = True, debug: bool = False, *,
               host: str = "127.0.0.1", token: Union[bool, str] = True) -> Optional["Experiment"]:
        """Resume a stopped experiment (like ``nnictl resume``; ``host`` / ``token``: see :meth:`start`).

        With ``wait_completion`` it blocks until DONE and stops it (returns ``None``);
        otherwise it returns the running :class:`Experiment`.
        """
        _require_server()
        exp = cls(None)
        exp.id = experiment_id
        env = exp._prepare_access(host, token)
        args = ["--resume", experiment_id, "--port", str(port), "--host", exp.host] + (["--debug"] if debug else [])
        exp._launch(args, port, env=env)
        _print(f"Resumed experiment {experiment_id}; Web UI URLs: {exp._web_urls(port)}")
        if wait_completion:
            exp._wait_and_stop()
            return None
        return exp

    @classmethod
    def view(cls, experiment_id: str, port: int = 8080, non_blocking: bool = False, *, host: str = "127.0.0.1",
             token: Union[bool, str] = True) -> Optional["Experiment"]:
        """Serve a stopped experiment read-only (like ``nnictl view``; ``host`` / ``token``: see :meth:`start`).

        Blocks until Ctrl-C unless ``non_blocking``; then returns the :class:`Experiment`.
        """
        _require_server()
        exp = cls(None)
        exp.id = experiment_id
        env = exp._prepare_access(host, token)
        exp._launch(["--view", experiment_id, "--port", str(port), "--host", exp.host], port, env=env)
        _print(f"Viewing experiment {experiment_id}; Web UI URLs: {exp._web_urls(port)}")
        if non_blocking:
            return exp
        try:
            while exp._process is not None and exp._process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        exp.stop()
        return None

    # ----- reading -----

    def _read(self, name: str, query: Optional[dict] = None, **path_params: Any) -> Any:
        """Route ``name`` of the running manager, or, once the experiment is stopped, the same
        answer read from its store."""
        if self.port is not None or self.id is None:
            return self._client.call(name, query=query, **path_params)
        return self._read_store(name, query or {}, path_params)

    def _experiment_dir(self, registry: Any) -> Path:
        if self._exp_dir is not None:
            return self._exp_dir
        row = registry.get(self.id) or {}
        if row.get("workdir"):
            return Path(row["workdir"])
        return Path(registry.root) / str(self.id)

    def _read_store(self, name: str, query: dict, path_params: dict) -> Any:
        try:
            from nni.server.store import ExperimentsRegistry, ExperimentStore, store_path
        except ImportError:
            raise RunningExperimentError(f"reading a stopped experiment needs its store: {INSTALL_HINT}") from None
        registry = ExperimentsRegistry()
        if name == "get_experiments_info":
            return [ExperimentsRegistry.to_metadata(r) for r in registry.list()]
        if name == "get_experiment_metadata":
            row = registry.get(self.id)
            if row is None:
                raise KeyError(f"experiment {self.id!r} not found in the registry")
            return ExperimentsRegistry.to_metadata(row)
        path = store_path(self._experiment_dir(registry))
        if not path.exists():
            raise RunningExperimentError(f"experiment {self.id} is stopped and its store {path} is missing")
        store = ExperimentStore(path, readonly=True)
        try:
            if name == "get_status":
                return store.status()
            if name == "export_data":
                return store.export_data()
            if name == "get_metric_data":
                return store.metric_data(metric_type=query.get("type"))
            if name == "get_trial_metric_data":
                return store.metric_data(path_params["job_id"], query.get("type"))
            if name == "get_job_statistics":
                return store.job_statistics()
            if name == "list_trial_jobs":
                return store.trial_jobs(query.get("status"))
            if name == "get_trial_job":
                trial = store.trial_job(path_params["id"])
                if trial is None:
                    raise KeyError(f"trial {path_params['id']!r} not found in experiment {self.id}")
                return trial
            if name == "get_experiment_profile":
                from nni.runtime.experiment_profile import experiment_profile, read_cluster_metadata

                return experiment_profile(store.experiment_row(), store.config(), read_cluster_metadata(path.parent))
        finally:
            store.close()
        raise RunningExperimentError(f"{name}: the experiment is stopped; start or resume it first")

    def get_status(self) -> str:
        """``'RUNNING'``, ``'DONE'`` ...; after ``stop()`` (or ``run()``), the recorded one (``'STOPPED'``)."""
        return self._read("get_status")["status"]

    def get_experiment_profile(self) -> dict:
        return self._read("get_experiment_profile")

    def get_experiment_metadata(self, exp_id: Optional[str] = None) -> dict:
        """The registry entry of ``exp_id`` (default: this experiment)."""
        if exp_id is None or exp_id == self.id:
            return self._read("get_experiment_metadata")
        for entry in self.get_all_experiments_metadata():
            if entry.get("id") == exp_id:
                return entry
        raise KeyError(f"experiment {exp_id!r} not found")

    def get_all_experiments_metadata(self) -> list[dict]:
        return self._read("get_experiments_info")

    def export_data(self) -> list[TrialResult]:
        """The final result of every trial (also after the experiment stopped)."""
        return [TrialResult.from_json(d) for d in self._read("export_data")]

    def get_job_metrics(self, trial_job_id: Optional[str] = None) -> dict[str, list[TrialMetricData]]:
        """Every metric record, by trial id (also after the experiment stopped)."""
        if trial_job_id is None:
            records = self._read("get_metric_data")
        else:
            records = self._read("get_trial_metric_data", job_id=trial_job_id)
        out: dict[str, list[TrialMetricData]] = {}
        for r in records:
            out.setdefault(r["trialJobId"], []).append(TrialMetricData.from_json(r))
        return out

    def get_job_statistics(self) -> list[dict]:
        return self._read("get_job_statistics")

    def list_trial_jobs(self) -> list[TrialJob]:
        """Every trial (also after the experiment stopped)."""
        return [TrialJob.from_json(d) for d in self._read("list_trial_jobs")]

    def get_trial_job(self, trial_job_id: str) -> TrialJob:
        return TrialJob.from_json(self._read("get_trial_job", id=trial_job_id))

    # ----- updating -----

    def _update(self, update_type: str, key: str, value: Any) -> None:
        # Only the changed field: the manager reads params[key] alone, and the whole profile
        # holds the search space twice (a 50 MB space would push the request over the limit).
        self._client.call("update_experiment_profile", body={"params": {key: value}}, query={"update_type": update_type})
        _logger.info("Successfully update %s.", key)

    def update_trial_concurrency(self, value: int) -> None:
        self._update("TRIAL_CONCURRENCY", "trialConcurrency", value)

    def update_max_trial_number(self, value: int) -> None:
        self._update("MAX_TRIAL_NUM", "maxTrialNum", value)

    def update_max_experiment_duration(self, value: Union[str, int, float]) -> None:
        """``value``: ``'1h'``, ``'30m'``... or seconds."""
        self._update("MAX_EXEC_DURATION", "maxExecDuration", value)

    def update_search_space(self, value: dict) -> None:
        self._update("SEARCH_SPACE", "searchSpace", value)

    def import_data(self, data: list[dict]) -> None:
        """Give ``[{'parameter': {...}, 'value': ...}]`` results to the tuner."""
        self._client.call("import_data", body=data)
