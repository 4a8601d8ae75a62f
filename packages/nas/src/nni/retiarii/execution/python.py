"""Execution engines that train each model as one trial of an NNI experiment (the manager's).

:class:`ManagerExecutionEngine` is the part both engines share: it listens on a private socket
that :class:`nni.retiarii.experiment._advisor.RetiariiAdvisor` (hosted by the manager's
dispatcher) connects to; a submitted model is sent as trial parameters, and the metrics and trial
ends that come back update the :class:`~nni.retiarii.graph.Model` in place. :class:`PurePythonExecutionEngine`
(``execution_engine='py'``, the default) ships the model space's class, its init arguments and the
sampled architecture dict; the trial re-creates the model under ``fixed_arch``
(:mod:`nni.retiarii.trial_entry`).
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from multiprocessing.connection import Connection, Listener
from typing import Any, Callable, Dict, List, Optional, Tuple

from nni.runtime.states import ENDED_STATES, HALTED_STATES, ExperimentStatus

from .. import serializer
from ..graph import Model, ModelStatus
from .base import AbstractExecutionEngine, is_finished

_logger = logging.getLogger('nni.retiarii.execution')

__all__ = ['ManagerExecutionEngine', 'PurePythonExecutionEngine', 'ADVISOR_CLASS']

ADVISOR_CLASS = 'nni.retiarii.experiment._advisor.RetiariiAdvisor'
#: manager statuses after which no model will start any more
_HALTED_STATUSES = ENDED_STATES | HALTED_STATES
_CLOSED_STATUSES = _HALTED_STATUSES | {ExperimentStatus.NO_MORE_TRIAL}


def _json_tree(obj: Any) -> Any:
    """``obj`` in the serializer's JSON form, as a JSON tree (readable in the web UI's parameters)."""
    return json.loads(serializer.dump(obj))


class ManagerExecutionEngine(AbstractExecutionEngine):
    """Trains each submitted model as one trial of the experiment (see the module docstring).

    Args:
        trial_concurrency: the experiment's ``trial_concurrency`` (for ``query_available_resource``).
        max_trial_number: the experiment's ``max_trial_number`` (``None``: no limit).
    """

    engine_name = 'py'

    def __init__(self, trial_concurrency: int, max_trial_number: Optional[int] = None):
        self.trial_concurrency = trial_concurrency
        self.max_trial_number = max_trial_number
        self._dir = tempfile.mkdtemp(prefix='nni-retiarii-')
        os.chmod(self._dir, 0o700)
        self._authkey = secrets.token_bytes(32)
        self._listener = Listener(os.path.join(self._dir, 'engine.sock'), family='AF_UNIX', authkey=self._authkey)
        self._conn: Optional[Connection] = None
        self._connected = threading.Event()
        self._lock = threading.RLock()
        self._models: List[Model] = []
        self._by_id: Dict[int, Model] = {}
        self._pending: List[Tuple[int, Any]] = []  # submitted before the advisor connected
        self.trial_job_ids: Dict[int, str] = {}  # model_id -> trial job id
        self._manager_status: Optional[str] = None
        self._closed = False
        self._status_source: Optional[Callable[[], str]] = None
        self._dumped: Dict[int, Tuple[Any, Any]] = {}
        threading.Thread(target=self._accept, name='retiarii-accept', daemon=True).start()

    # ----- what RetiariiExperiment sets up -----

    def advisor_config(self) -> dict:
        """The ``advisor`` section of the experiment config that connects the manager to this engine."""
        return {'className': ADVISOR_CLASS,
                'classArgs': {'address': self._listener.address, 'authkey': self._authkey.hex()}}

    def preprocess(self, base_model: Any, applied_mutators: Optional[list]) -> Tuple[Model, list]:
        """The frozen base :class:`Model` and the mutators a strategy runs on (engine specific)."""
        from ..space import mutators_for, python_model
        if applied_mutators:
            raise ValueError('applied_mutators: the pure-python engine (execution_engine=\'py\') supports inline mutations only; '
                             'use execution_engine=\'base\' for Mutator subclasses')
        model = python_model(base_model)
        return model, mutators_for(base_model)

    def trial_parameters(self, model: Model) -> dict:
        """What the trial of ``model`` receives through ``nni.get_next_parameter()``."""
        return {
            'engine': self.engine_name,
            'sample': dict(model.sample),
            'model_space': _json_tree(model.python_class),
            'init_args': _json_tree([list(model.python_init_args), dict(model.python_init_params)]),
            'evaluator': self._evaluator_tree(model.evaluator),
        }

    def _evaluator_tree(self, evaluator: Any) -> Any:
        # dumped once per evaluator object: pickling a dataset by value per trial would be slow
        cached = self._dumped.get(id(evaluator))
        if cached is None or cached[0] is not evaluator:
            cached = (evaluator, _json_tree(evaluator))
            self._dumped[id(evaluator)] = cached
        return cached[1]

    def set_status_source(self, source: Callable[[], str]) -> None:
        """A function returning the manager's experiment status (``RUNNING``, ``DONE`` ...)."""
        self._status_source = source

    def finish(self) -> None:
        """The strategy finished: no more models (the manager ends the experiment once trials end)."""
        self._send(('done',))

    # ----- AbstractExecutionEngine -----

    def submit_models(self, *models: Model) -> None:
        for model in models:
            if model.status != ModelStatus.Frozen:
                raise ValueError(f'submit_models: model {model.model_id} is {model.status.value}; only frozen (sampled) models can be submitted')
            if self.budget_exhausted():
                _logger.warning('budget exhausted: model %s is not submitted', model.model_id)
                model.status = ModelStatus.Failed
                continue
            params = self.trial_parameters(model)
            with self._lock:
                model.status = ModelStatus.Training
                self._models.append(model)
                self._by_id[model.model_id] = model
            self._send(('submit', model.model_id, params))

    def list_models(self) -> List[Model]:
        with self._lock:
            return list(self._models)

    def running_models(self) -> List[Model]:
        with self._lock:
            return [m for m in self._models if not is_finished(m)]

    def query_available_resource(self) -> int:
        if self.budget_exhausted():
            return 0
        return max(0, self.trial_concurrency - len(self.running_models()))

    def budget_exhausted(self) -> bool:
        if self._closed:
            return True
        if self.max_trial_number is not None and len(self._models) >= self.max_trial_number:
            return True
        return self._refresh_status() in _CLOSED_STATUSES

    def wait_models(self, *models: Model) -> None:
        while not all(is_finished(m) for m in models):
            if self._closed or self._refresh_status() in _HALTED_STATUSES:
                return
            time.sleep(0.2)

    def shutdown(self) -> None:
        """Close the socket; models still training will get no result."""
        self._closed = True
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        try:
            self._listener.close()
        except OSError:
            pass
        shutil.rmtree(self._dir, ignore_errors=True)

    # ----- the advisor connection -----

    def _refresh_status(self) -> Optional[str]:
        if self._status_source is not None:
            try:
                self._manager_status = self._status_source()
            except Exception:  # noqa: BLE001 - the manager may be stopping; keep the last known status
                pass
        return self._manager_status

    def _accept(self) -> None:
        try:
            conn = self._listener.accept()
        except (OSError, EOFError) as err:  # closed before the advisor came, or a bad key
            if not self._closed:
                _logger.warning('advisor connection failed: %s', err)
            return
        with self._lock:
            self._conn = conn
            pending, self._pending = self._pending, []
            for message in pending:
                conn.send(message)
        self._connected.set()
        self._read(conn)

    def _send(self, message: tuple) -> None:
        with self._lock:
            if self._conn is None:
                self._pending.append(message)
            else:
                self._conn.send(message)

    def _read(self, conn: Connection) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            try:
                self._on_message(message)
            except Exception:  # noqa: BLE001 - one bad message must not stop the results
                _logger.exception('cannot handle advisor message %.200r', message)

    def _on_message(self, message: tuple) -> None:
        kind, pid = message[0], message[1]
        with self._lock:
            model = self._by_id.get(pid) if isinstance(pid, int) else None
        if model is None:
            _logger.warning('result for an unknown model %r ignored', pid)
            return
        if kind == 'metric':
            _, _, trial_id, metric_type, value = message
            self.trial_job_ids.setdefault(pid, trial_id)
            if isinstance(value, dict) and 'default' in value:
                value = value['default']
            if metric_type == 'FINAL':
                model.metric = value
            elif metric_type == 'PERIODICAL':
                model.intermediate_metrics.append(value)
        elif kind == 'end':
            _, _, trial_id, event = message
            self.trial_job_ids.setdefault(pid, trial_id)
            # a trial without a final result taught the strategy nothing: Failed
            model.status = ModelStatus.Trained if event == 'SUCCEEDED' and model.metric is not None else ModelStatus.Failed


class PurePythonExecutionEngine(ManagerExecutionEngine):
    """``execution_engine='py'``: the trial re-instantiates the ``@model_wrapper`` model space under ``fixed_arch``."""

    engine_name = 'py'
