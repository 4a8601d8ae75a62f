"""One method per route of :data:`nni.runtime.rest_api.ROUTES` (same names).

A handler receives the parsed request (path parameters, query, JSON body already validated
against the route's schema) and returns the JSON-able answer. :class:`ApiError` becomes an
HTTP error with ``{"error": message}``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional

from aiohttp import web

from nni.runtime.experiment_profile import CLUSTER_METADATA_FILE, experiment_profile, read_cluster_metadata

from ..scheduler import EngineError, TrialScheduler
from ..store import ExperimentStore, ExperimentsRegistry
from .errors import ApiError
from .response_cache import ResponseCache
from .ui_routes import UiRouteHandlers

__all__ = ["ApiError", "RestHandlers", "TRIAL_LIST_FORMATS"]

#: Values of ``GET /trial-jobs?format=``: NNI's records (the default), or the web UI's columns
#: and details (see :meth:`RestHandlers.list_trial_jobs`).
TRIAL_LIST_FORMATS = ("nni", "columns", "details")
#: The largest ``offset`` / ``limit`` accepted (beyond any experiment's trial count).
_MAX_QUERY_INT = 10**9


def _query_int(query: dict, name: str, default: Optional[int], minimum: int) -> Optional[int]:
    """Integer query parameter ``name`` (``default`` when absent); a one-line 400 otherwise."""
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"query.{name}: expected a whole number >= {minimum}, got {text[:40]!r}") from None
    if not minimum <= value <= _MAX_QUERY_INT:
        raise ApiError(400, f"query.{name}: must be between {minimum} and {_MAX_QUERY_INT}, got {value}")
    return value



class RestHandlers(UiRouteHandlers):
    """Answers the routes for one experiment.

    Args:
        store: the experiment's store (read-only in view mode).
        engine: the running scheduler, or ``None`` in view mode.
        registry: the machine-wide registry.
        request_stop: called by ``DELETE /experiment``; makes the manager stop and exit.
        view: serve read-only (status VIEWED).
    """

    def __init__(
        self,
        store: ExperimentStore,
        engine: Optional[TrialScheduler],
        registry: ExperimentsRegistry,
        request_stop: Callable[[], Awaitable[None] | None],
        experiment_id: str,
    ) -> None:
        self.store = store
        self.engine = engine
        self.registry = registry
        self.request_stop = request_stop
        self.experiment_id = experiment_id
        self.response_cache = ResponseCache(store)

    # ----- helpers -----

    def _engine(self) -> TrialScheduler:
        if self.engine is None:
            raise ApiError(400, "the experiment is opened in view mode (read-only); resume it to change it")
        return self.engine

    def _config(self) -> dict:
        return self.engine.config if self.engine is not None else self.store.config()

    # ----- routes -----

    async def get_version(self, **_: Any) -> str:
        import nni

        return nni.__version__

    async def get_status(self, **_: Any) -> dict:
        st = self.store.status()
        if self.engine is None:
            st["status"] = "VIEWED"
        else:
            st["status"] = self.engine.status
            if self.engine.warnings:  # transient, not stored: e.g. a dispatcher that stopped answering
                st["warnings"] = list(self.engine.warnings)
        return st

    async def get_experiment_profile(self, **_: Any) -> dict:
        exec_duration = int(self.engine.exec_duration()) if self.engine is not None else None
        return experiment_profile(self.store.experiment_row(), self._config(), self._cluster_metadata(), exec_duration)

    async def update_experiment_profile(self, body: dict, query: dict, **_: Any) -> dict:
        engine = self._engine()
        kind = query.get("update_type")
        if not kind:
            raise ApiError(400, "update_type: query parameter is required (TRIAL_CONCURRENCY, MAX_EXEC_DURATION, SEARCH_SPACE, MAX_TRIAL_NUM)")
        params = body.get("params") or {}
        key = {"TRIAL_CONCURRENCY": "trialConcurrency", "MAX_EXEC_DURATION": "maxExecDuration", "MAX_TRIAL_NUM": "maxTrialNum", "SEARCH_SPACE": "searchSpace"}[kind]
        if key not in params:
            raise ApiError(400, f"body.params.{key}: required for update_type {kind}")
        value = params[key]
        try:
            if kind == "TRIAL_CONCURRENCY":
                engine.update_trial_concurrency(value)
            elif kind == "MAX_TRIAL_NUM":
                engine.update_max_trial_number(value)
            elif kind == "MAX_EXEC_DURATION":
                if isinstance(value, str):
                    from nni.experiment.config.base import parse_duration

                    try:
                        value = parse_duration(value)
                    except ValueError as err:
                        raise ApiError(400, f"body.params.maxExecDuration: {err}") from None
                engine.update_max_duration(value)
            else:
                if isinstance(value, str):
                    try:
                        value = json.loads(value)
                    except ValueError:
                        raise ApiError(400, "body.params.searchSpace: not valid JSON") from None
                engine.update_search_space(value)
        except EngineError as err:
            raise ApiError(400, str(err)) from None
        return {}  # as NNI v2.5 answers; GET /experiment has the new profile

    def _cluster_metadata_path(self) -> Path:
        return self.store.path.parent / CLUSTER_METADATA_FILE

    def _cluster_metadata(self) -> dict:
        return read_cluster_metadata(self.store.path.parent)

    async def set_cluster_metadata(self, body: dict, **_: Any) -> dict:
        self._engine()  # refused in view mode
        metadata = self._cluster_metadata()
        metadata.update(body)
        path = self._cluster_metadata_path()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(metadata), encoding="utf-8")
        os.replace(tmp, path)  # atomic: a reader never sees half a file
        return {}

    async def stop_experiment(self, **_: Any) -> dict:
        result = self.request_stop()
        if hasattr(result, "__await__"):
            await result
        return {}

    async def import_data(self, body: list, **_: Any) -> dict:
        try:
            self._engine().import_data(body)
        except EngineError as err:
            raise ApiError(400, str(err)) from None
        # v2.5 answers an empty body; the count lets nnictl report what was stored.
        return {"stored": len(body)}

    async def get_imported_data(self, **_: Any) -> list:
        return self.store.imported_data()

    async def get_job_statistics(self, **_: Any) -> list:
        return self.store.job_statistics()

    async def list_trial_jobs(self, query: dict, **_: Any) -> Any:
        """NNI's list of ``TrialJobInfo``; additions for big experiments, all opt-in:

        * ``offset`` / ``limit``: one page of that list (by sequence id), same records;
        * ``format=columns``: every trial in the web UI's compact column-wise form
          (:meth:`~nni.server.store.ExperimentStore.trial_table_json`);
        * ``format=details`` (with ``offset``): the trials' parameters and directories, from
          position ``offset`` on (:meth:`~nni.server.store.ExperimentStore.trial_details_json`).
        """
        status = query.get("status")
        fmt = query.get("format", "nni")
        if fmt not in TRIAL_LIST_FORMATS:
            raise ApiError(400, f"query.format: must be one of {', '.join(TRIAL_LIST_FORMATS)}, got {fmt[:40]!r}")
        offset = _query_int(query, "offset", 0, 0)
        limit = _query_int(query, "limit", None, 1)
        if fmt == "columns":
            if status or "offset" in query or "limit" in query:
                raise ApiError(400, "query.format: 'columns' lists every trial; it takes no status, offset or limit")
            return self.response_cache.json("trial-table", self.store.trial_table_json)
        if fmt == "details":
            if status or "limit" in query:
                raise ApiError(400, "query.format: 'details' takes an offset only (no status, no limit)")
            return self.response_cache.json(("trial-details", offset), lambda: self.store.trial_details_json(offset))
        if offset or limit is not None:  # a page is cheap to build: not cached (bounded memory)
            return web.Response(text=self.store.trial_jobs_json(status, offset, limit), content_type="application/json")
        return self.response_cache.json(("trial-jobs", status), lambda: self.store.trial_jobs_json(status))

    async def get_trial_job(self, id: str, **_: Any) -> dict:
        info = self.store.trial_job(id)
        if info is None:
            raise ApiError(404, f"trial {id!r} not found")
        return info

    async def add_customized_trial(self, body: dict, **_: Any) -> dict:
        engine = self._engine()
        params = body["hyperParameters"]
        if isinstance(params, str):
            try:
                params = json.loads(params)
            except ValueError:
                raise ApiError(400, "body.hyperParameters: not valid JSON") from None
            if isinstance(params, dict) and "parameters" in params and "parameter_source" in params:
                params = params["parameters"]
        if not isinstance(params, dict):
            raise ApiError(400, "body.hyperParameters: expected an object of parameters")
        try:
            seq = engine.add_customized_trial(params)
        except EngineError as err:  # the request is valid; the experiment's state refuses it
            raise ApiError(409, str(err)) from None
        return {"sequenceId": seq}

    async def cancel_trial_job(self, id: str, **_: Any) -> dict:
        engine = self._engine()
        try:
            await engine.cancel_trial(id)
        except KeyError:
            raise ApiError(404, f"trial {id!r} not found") from None
        return {}

    async def get_metric_data(self, query: dict, **_: Any) -> list:
        return self.store.metric_data(metric_type=query.get("type"))

    async def get_trial_metric_data(self, job_id: str, query: dict, **_: Any) -> list:
        return self.store.metric_data(job_id, query.get("type"))

    async def get_metric_data_range(self, min_seq_id: str, max_seq_id: str, **_: Any) -> list:
        try:
            lo, hi = int(min_seq_id), int(max_seq_id)
        except ValueError:
            raise ApiError(400, "min_seq_id / max_seq_id: expected integers") from None
        return self.store.metric_data_range(lo, hi)

    async def get_metric_data_latest(self, **_: Any) -> Any:
        return self.response_cache.json("metric-data-latest", self.store.metric_data_latest_json)

    async def export_data(self, **_: Any) -> list:
        return self.store.export_data()

    async def get_experiment_metadata(self, **_: Any) -> dict:
        row = self.registry.get(self.experiment_id)
        if row is None:
            raise ApiError(404, f"experiment {self.experiment_id!r} is not in the registry")
        return ExperimentsRegistry.to_metadata(row)

    async def get_experiments_info(self, **_: Any) -> list:
        return [ExperimentsRegistry.to_metadata(r) for r in self.registry.list()]
