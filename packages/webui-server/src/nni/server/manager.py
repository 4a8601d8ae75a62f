"""The manager process of one experiment: store + training service + scheduler + REST API.

``python -m nni.server --config <canonical json> --port P [--id ID]`` starts a new experiment,
``--resume ID`` continues a stopped (or crashed) one, ``--view ID`` serves one read-only.
The process lives until ``DELETE /api/v1/nni/experiment`` or SIGTERM / SIGINT.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from nni.runtime.ids import random_id
from nni.runtime.access import private_dir
from nni.runtime.experiment_profile import restore_secrets

from .scheduler import TrialScheduler, make_context
from .store import ExperimentStore, ExperimentsRegistry, store_path

_logger = logging.getLogger("nni.server")

LOG_LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}


class ManagerError(ValueError):
    """A one-line reason the manager cannot start (printed without a traceback)."""


def new_experiment_id() -> str:
    return random_id(8)


@dataclass
class ManagerOptions:
    port: int = 8080
    host: str = "127.0.0.1"
    config_path: Optional[str] = None
    experiment_id: Optional[str] = None
    resume: Optional[str] = None
    view: Optional[str] = None
    experiment_dir: Optional[str] = None
    foreground: bool = False
    url_prefix: str = ""
    debug: bool = False
    access_token: Optional[str] = None  # checked on every route (nni.server.security); None: generated
    no_token: bool = False  # --no-token: loopback binds only
    early_dispatcher: Any = None  # EarlyDispatcher started by __main__ before the heavy imports


def setup_logging(log_dir: Path, level_name: Optional[str], foreground: bool) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    level = LOG_LEVELS.get((level_name or "info").lower(), logging.INFO)
    logging.addLevelName(5, "TRACE")
    fmt = logging.Formatter("[%(asctime)s] %(levelname)s (%(name)s) %(message)s", "%Y-%m-%d %H:%M:%S")
    handler: logging.Handler = logging.FileHandler(log_dir / "nnimanager.log", encoding="utf-8")
    handler.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Errors (an algorithm's traceback included) also go to stderr, which nnictl keeps in
    # log/nnictl_stderr.log: the file `nnictl log stderr` shows and the docs point users to.
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    if not foreground:
        console.setLevel(logging.ERROR)
    root.addHandler(console)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(max(level, logging.WARNING))


def _check_port(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ManagerError(f"port {port} is not available on {host} ({err.strerror}); choose another port") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _load_training_service(config: dict, experiment_id: str, experiment_dir: str):
    """The experiment's training service: its platform's, or a hybrid one for a list of them."""
    from nni.runtime import registry
    from nni.runtime.hybrid_training_service import build_training_service

    ts_config = config.get("trainingService")
    entries = ts_config if isinstance(ts_config, list) else [ts_config or {}]
    if not entries:
        raise ManagerError("trainingService: must not be an empty list; give a platform (e.g. {platform: local})")
    hybrid = len(entries) > 1

    def load(platform):
        index = next(i for i, e in enumerate(entries) if e.get("platform") == platform)
        at = f"trainingService[{index}].platform" if hybrid else "trainingService.platform"
        try:
            return registry.load_class("training_service", platform)
        except KeyError as err:
            hint = f"; install nni-ts-{platform}" if platform else ""
            raise ManagerError(f"{at}: {err}{hint}") from None

    return build_training_service(entries, make_context(experiment_id, experiment_dir, config), load)


class Manager:
    """Owns the event loop's parts and their shutdown order."""

    def __init__(self, options: ManagerOptions) -> None:
        self.options = options
        self.registry = ExperimentsRegistry()
        self.store: Optional[ExperimentStore] = None
        self.scheduler: Optional[TrialScheduler] = None
        self.runner = None  # aiohttp AppRunner
        self.experiment_id = ""
        self._done = asyncio.Event()
        self._stopping = False

    # ----- preparing (no side effect before the checks pass) -----

    def _experiment_dir_for(self, experiment_id: str) -> Path:
        if self.options.experiment_dir:
            return Path(self.options.experiment_dir)
        row = self.registry.get(experiment_id)
        if row and row.get("workdir"):
            return Path(row["workdir"])
        candidate = self.registry.root / experiment_id
        if store_path(candidate).exists():
            return candidate
        raise ManagerError(f"experiment {experiment_id!r} not found (not in {self.registry.path}); give its folder with --experiment-dir")

    async def run(self) -> int:
        o = self.options
        if o.view:
            return await self._run_view(o.view)
        if o.resume:
            self.experiment_id = o.resume
            exp_dir = self._experiment_dir_for(o.resume)
            if not store_path(exp_dir).exists():
                raise ManagerError(f"experiment {o.resume!r}: no store at {store_path(exp_dir)}")
            self.store = ExperimentStore(store_path(exp_dir))
            config = self.store.config()
        else:
            if not o.config_path:
                raise ManagerError("--config: required to create an experiment (or give --resume / --view)")
            try:
                config = json.loads(Path(o.config_path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise ManagerError(f"--config: cannot read {o.config_path}: {err}") from None
            for key in ("trialCommand", "trialConcurrency", "trainingService"):
                if config.get(key) is None:
                    raise ManagerError(f"{key}: required field is missing in the canonical config {o.config_path}")
            self.experiment_id = o.experiment_id or new_experiment_id()
            root = Path(os.path.expanduser(config.get("experimentWorkingDirectory") or str(self.registry.root)))
            if o.early_dispatcher is not None and o.experiment_id is None:
                raise ManagerError("internal: an early dispatcher needs --id")
            exp_dir = root / self.experiment_id
            if store_path(exp_dir).exists():
                raise ManagerError(f"experiment {self.experiment_id!r} already exists in {exp_dir}; resume it instead")
        config = restore_secrets(config, exp_dir)  # SSH secrets are kept out of the store and the config file
        if o.debug:  # --debug (nnictl create/resume --debug) wins over the config's logLevel
            config = dict(config, debug=True, logLevel="debug")
        log_level = config.get("logLevel") or ("debug" if config.get("debug") else "info")
        private_dir(exp_dir)  # owner only (0700): the store, the token and the trials' files are in it
        setup_logging(exp_dir / "log", log_level, o.foreground)
        _logger.info("Experiment %s, dir %s, pid %s", self.experiment_id, exp_dir, os.getpid())
        if config.get("useAnnotation") and not o.resume:
            config = _expand_annotations(config, exp_dir)
        ts = _load_training_service(config, self.experiment_id, str(exp_dir))
        ts.check_request(config.get("trialGpuNumber"))  # fails before any port or process
        sock = _check_port(o.host, o.port)
        if self.store is None:
            self.store = ExperimentStore(store_path(exp_dir))
        self.registry.upsert(
            self.experiment_id,
            name=config.get("experimentName"),
            port=o.port,
            pid=os.getpid(),
            status="INITIALIZED",
            start_time=self.store.experiment_row().start_time if o.resume else _now_ms(),
            end_time=None,
            platform=_platform_names(config) or (ts.platform or ""),
            workdir=str(exp_dir),
        )
        self.scheduler = TrialScheduler(
            self.experiment_id, str(exp_dir), config, self.store, ts, self.registry, resume=bool(o.resume),
            early_dispatcher=None if o.debug else o.early_dispatcher,
        )
        # Trials first, REST second: importing aiohttp takes a few hundred ms, done in a thread
        # while the loop starts the dispatcher and the first trials. The port is already bound.
        web_import = asyncio.get_running_loop().run_in_executor(None, _import_web)
        self._install_signals()  # from here on SIGTERM stops trials instead of orphaning them
        try:
            await self.scheduler.start()
        except Exception as err:
            _logger.exception("Cannot start the experiment")
            if not self.store.has_experiment():
                self.store.create_experiment(self.experiment_id, config, str(exp_dir), _now_ms(), "ERROR")
            self.scheduler.set_status("ERROR", error=str(err))
        await web_import
        from .api import RestHandlers

        handlers = RestHandlers(self.store, self.scheduler, self.registry, self.request_stop, self.experiment_id)
        await self._serve(handlers, sock)
        await self._done.wait()
        await self._shutdown()
        return 0

    async def _run_view(self, experiment_id: str) -> int:
        self.experiment_id = experiment_id
        exp_dir = self._experiment_dir_for(experiment_id)
        self.store = ExperimentStore(store_path(exp_dir), readonly=True)
        setup_logging(exp_dir / "log", "debug" if self.options.debug else "info", self.options.foreground)
        _report_stored_problems(self.store)
        sock = _check_port(self.options.host, self.options.port)
        from .api import RestHandlers

        handlers = RestHandlers(self.store, None, self.registry, self.request_stop, experiment_id)
        await self._serve(handlers, sock)
        _logger.info("Viewing experiment %s on port %s", experiment_id, self.options.port)
        # Registered while viewed (port, pid, VIEWED) so nnictl stop / experiment list find it;
        # the previous status comes back when the viewer exits.
        previous = self._register_view(experiment_id, exp_dir)
        self._install_signals()
        try:
            await self._done.wait()
        finally:
            try:
                self.registry.upsert(experiment_id, pid=None, status=previous or "STOPPED")
            except Exception as err:  # the registry is a convenience
                _logger.warning("Cannot update the experiments registry: %s", err)
        if self.runner is not None:
            await self.runner.cleanup()
        self.store.close()
        return 0

    def _register_view(self, experiment_id: str, exp_dir: Path) -> Optional[str]:
        try:
            row = self.registry.get(experiment_id) or {}
            fields: dict[str, Any] = {"port": self.options.port, "pid": os.getpid(), "status": "VIEWED", "workdir": str(exp_dir)}
            if not row:
                exp = self.store.experiment_row()
                config = self.store.config()
                fields.update(name=config.get("experimentName"), start_time=exp.start_time, end_time=exp.end_time,
                              platform=_platform_names(config))
            self.registry.upsert(experiment_id, **fields)
            return row.get("status") if row.get("status") != "VIEWED" else "STOPPED"
        except Exception as err:
            _logger.warning("Cannot update the experiments registry: %s", err)
            return None

    async def _serve(self, handlers, sock: socket.socket) -> None:
        from aiohttp import web

        from .api import build_app

        app = build_app(handlers, self.options.url_prefix)
        self._extend_app(app)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.SockSite(self.runner, sock)
        await site.start()
        _logger.info("REST server listening on http://%s:%s", self.options.host, self.options.port)

    def _extend_app(self, app) -> None:
        """Hook for the web UI: ``nni.server.webui.setup(app, manager)`` when it exists."""
        try:
            from . import webui  # noqa: F401
            setup = getattr(webui, "setup", None)
        except ImportError:
            setup = None
        if setup is None:  # never serve without the token / Host checks
            raise ManagerError("nni.server.webui cannot be loaded: it holds the access-token check every manager needs")
        try:
            setup(app, self)
        except ValueError as err:
            raise ManagerError(str(err)) from None

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self.request_stop()))
            except (NotImplementedError, RuntimeError):
                pass

    async def request_stop(self) -> None:
        """Stop after answering the current request."""
        if self._stopping:
            return
        self._stopping = True
        asyncio.get_running_loop().call_later(0.01, self._done.set)

    async def _shutdown(self) -> None:
        if self.scheduler is not None:
            try:
                await self.scheduler.stop()
            except Exception:
                _logger.exception("Error while stopping the experiment")
        if self.runner is not None:
            await self.runner.cleanup()
        self.registry.upsert(self.experiment_id, pid=None)
        if self.store is not None:
            self.store.close()
        _logger.info("Manager exits")


def _platform_names(config: dict) -> str:
    """``local``, or ``remote,local`` for a hybrid experiment (the registry's platform, written
    as the profile's ``trainingServicePlatform``)."""
    ts = config.get("trainingService")
    entries = ts if isinstance(ts, list) else [ts or {}]
    return ",".join(str(e.get("platform") or "") for e in entries if isinstance(e, dict))


def _report_stored_problems(store: ExperimentStore) -> None:
    """Log what would stop a resume (bad stored search space, algorithm not installed); the
    view serves the experiment anyway."""
    from nni.experiment.config.search_space import check_search_space, search_space_owner

    try:
        config = store.config()
        space = config.get("searchSpace")
        if space is not None:
            check_search_space(config, space, "searchSpace")
    except ValueError as err:
        _logger.warning("The stored config has a problem a resume will report: stored %s", err)
        return
    kind, spec = search_space_owner(config)
    name = (spec or {}).get("name")
    if name:
        from nni.runtime import registry

        try:
            registry.get_entry(kind, name)
        except registry.UnknownNameError as err:
            _logger.warning("The stored config has a problem a resume will report: %s.name: %s", kind, err)


def _expand_annotations(config: dict, exp_dir: Path) -> dict:
    """useAnnotation: trials run from a converted copy of the code; its annotations give the space."""
    from nni.tools.annotation import expand_annotations, generate_search_space

    code_dir = config.get("trialCodeDirectory") or "."
    try:
        space = generate_search_space(code_dir)
        converted = expand_annotations(code_dir, exp_dir / "annotation")
    except ValueError as err:
        raise ManagerError(f"trialCodeDirectory: {err}") from None
    _logger.info("useAnnotation: converted %s into %s", code_dir, converted)
    return dict(config, searchSpace=space, trialCodeDirectory=str(converted))


def _import_web() -> None:
    import aiohttp.web  # noqa: F401

    from . import api  # noqa: F401


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def main_async(options: ManagerOptions) -> int:
    manager = Manager(options)
    try:
        return asyncio.run(manager.run())
    finally:
        early = options.early_dispatcher
        if early is not None and (manager.scheduler is None or manager.scheduler.dispatcher is None or options.debug):
            early.kill()  # never adopted: the manager failed before starting the experiment
