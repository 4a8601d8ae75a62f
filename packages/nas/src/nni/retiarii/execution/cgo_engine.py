"""The CGO (cross-graph optimization) execution engine (``execution_engine='cgo'``).

The graph-based engine (``'base'``) plus cross-model optimization: submitted models wait in a
:class:`~nni.retiarii.execution.logical_plan.LogicalPlan` until ``max_concurrency_cgo`` of them are waiting or
the oldest has waited ``batch_waiting_time`` seconds; :class:`~nni.retiarii.execution.logical_plan.DedupInputOptimizer`
then groups the models that share an input pipeline (an equal evaluator: same dataloaders and training
recipe), and each group of at most ``max_concurrency_cgo`` models becomes **one** trial that trains them
together on each batch (a merged ``torch.fx`` module, trained by a CGO evaluator:
:mod:`nni.retiarii.evaluator.pytorch.cgo.evaluator`). The trial reports ``model_<i>`` per merged model and the
engine hands each value to its model.

When a merged trial fails (one bad model, e.g. a shape mismatch, fails all) or misses a model's result, each
of its models is re-run alone in its own trial, without cross-model optimization.

The trial runs the graph engine's command (``python3 -m nni.retiarii.trial_entry base``): its ``module`` is the
merged module; ``code`` shows the merged forward, ``models`` each model's id, architecture and generated code.
"""
from __future__ import annotations

import base64
import logging
import threading
import time
from typing import Any, Dict, List, Optional

from ..graph import Model, ModelStatus
from .graph import GraphExecutionEngine, _jsonable, architecture_of
from .logical_plan import DedupInputOptimizer, LogicalPlan, PhysicalTrial, input_key, merge_modules

__all__ = ['CGOExecutionEngine', 'DEFAULT_MAX_CONCURRENCY', 'DEFAULT_BATCH_WAITING_TIME']

_logger = logging.getLogger('nni.retiarii.execution.cgo')

DEFAULT_MAX_CONCURRENCY = 3
DEFAULT_BATCH_WAITING_TIME = 10.0


class CGOExecutionEngine(GraphExecutionEngine):
    """Trains models that share an input pipeline together, ``max_concurrency_cgo`` per trial (see the module doc).

    Args:
        trial_concurrency: the experiment's ``trial_concurrency`` (trials; each may train several models).
        max_trial_number: how many models the strategy may submit (``None``: no limit).
        max_concurrency_cgo: the most models merged into one trial (default 3).
        batch_waiting_time: seconds the first waiting model waits for others before its batch goes (default 10).
    """

    engine_name = 'cgo'
    trial_engine = 'base'  # the trial builds the merged module as the graph engine's trial does

    def __init__(self, trial_concurrency: int, max_trial_number: Optional[int] = None,
                 max_concurrency_cgo: Optional[int] = None, batch_waiting_time: Optional[float] = None):
        super().__init__(trial_concurrency, max_trial_number)
        self.max_concurrency_cgo = DEFAULT_MAX_CONCURRENCY if max_concurrency_cgo is None else max_concurrency_cgo
        self.batch_waiting_time = DEFAULT_BATCH_WAITING_TIME if batch_waiting_time is None else batch_waiting_time
        self._waiting: List[Model] = []
        self._since: Dict[int, float] = {}  # model id -> when it started waiting
        self._trials: Dict[int, PhysicalTrial] = {}  # parameter id -> trial
        self._trial_of: Dict[int, int] = {}  # model id -> parameter id of its current trial
        self.physical_trials: List[List[int]] = []  # model ids of every trial sent, in order (for inspection)
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()  # one flush at a time: finish() must see what the scheduler holds
        threading.Thread(target=self._schedule, name='cgo-scheduler', daemon=True).start()

    @staticmethod
    def check_evaluator(evaluator: Any) -> None:
        """One-line error unless ``evaluator`` can train merged models."""
        from ..evaluator.pytorch.cgo.evaluator import is_multi_model_evaluator
        if not is_multi_model_evaluator(evaluator):
            raise ValueError(f'evaluator: the CGO engine needs an evaluator whose Lightning module inherits MultiModelSupervisedLearningModule '
                             f'(nni.retiarii.evaluator.pytorch.cgo.evaluator.Classification / Regression), got {type(evaluator).__name__}')

    # ----- AbstractExecutionEngine -----

    def submit_models(self, *models: Model) -> None:
        for model in models:
            if model.status != ModelStatus.Frozen:
                raise ValueError(f'submit_models: model {model.model_id} is {model.status.value}; only frozen (sampled) models can be submitted')
            if self.budget_exhausted():
                _logger.warning('budget exhausted: model %s is not submitted', model.model_id)
                model.status = ModelStatus.Failed
                continue
            with self._lock:
                model.status = ModelStatus.Training
                self._models.append(model)
                self._by_id[model.model_id] = model
                self._waiting.append(model)
                self._since[model.model_id] = time.monotonic()
        self._wake.set()

    def query_available_resource(self) -> int:
        if self.budget_exhausted():
            return 0
        return max(0, self.trial_concurrency * self.max_concurrency_cgo - len(self.running_models()))

    def finish(self) -> None:
        self.flush()
        super().finish()

    def shutdown(self) -> None:
        super().shutdown()
        self._wake.set()

    # ----- batching -----

    def flush(self, force: bool = True) -> None:
        """Send the waiting models, in as few trials as the plan allows. Unless ``force``, a trial that is not
        full waits until its oldest model has waited ``batch_waiting_time``."""
        with self._flush_lock:
            self._flush(force)

    def _flush(self, force: bool) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        plan = LogicalPlan()
        for model in waiting:
            plan.add_model(model, input_key(self._evaluator_tree(model.evaluator)))
        DedupInputOptimizer().convert(plan)
        now, keep = time.monotonic(), []
        for trial in plan.assemble(self.max_concurrency_cgo):
            oldest = min(self._since.get(m.model_id, now) for m in trial.models)
            if force or len(trial.models) >= self.max_concurrency_cgo or now - oldest >= self.batch_waiting_time:
                self._send_trial(trial)
            else:
                keep.extend(trial.models)
        with self._lock:
            self._waiting[:0] = keep

    def _schedule(self) -> None:
        while not self._closed:
            self._wake.wait(0.1)
            self._wake.clear()
            if self._waiting and not self._closed:
                try:
                    self.flush(force=False)
                except Exception:  # noqa: BLE001 - a model that cannot be built fails; the scheduler goes on
                    _logger.exception('CGO: cannot send the waiting models')

    def _send_trial(self, trial: PhysicalTrial) -> None:
        from ..graph import uid
        try:
            params = self.trial_parameters_of(trial.models)
        except Exception as err:  # noqa: BLE001 - code generation failed: those models cannot train
            if len(trial.models) > 1:
                _logger.warning('CGO: cannot merge models %s (%s); each runs alone', [m.model_id for m in trial.models], err)
                for model in trial.models:
                    self._send_trial(PhysicalTrial([model], trial.input))
                return
            _logger.warning('CGO: model %s cannot be built: %s', trial.models[0].model_id, err)
            trial.models[0].status = ModelStatus.Failed
            return
        pid = uid()  # the process-wide id counter: never a model id
        with self._lock:
            self._trials[pid] = trial
            for model in trial.models:
                self._trial_of[model.model_id] = pid
            self.physical_trials.append([m.model_id for m in trial.models])
        self._send(('submit', pid, params))

    def trial_parameters_of(self, models: List[Model]) -> dict:
        """What the trial training ``models`` together receives (``module``: the merged module)."""
        from .. import serializer
        from ..codegen import model_to_pytorch_module
        from ..evaluator.pytorch.cgo.evaluator import NUM_MODELS_ATTR
        modules = [model_to_pytorch_module(m) for m in models]
        merged = merge_modules(modules, NUM_MODELS_ATTR)
        pickled = serializer._cloudpickle().dumps(merged)
        return {
            'engine': self.trial_engine,
            'models': [{'model_id': m.model_id, 'sample': _jsonable(architecture_of(m)), 'code': mod.code}
                       for m, mod in zip(models, modules)],
            'code': merged.code,
            'module': base64.b64encode(pickled).decode('ascii'),
            'evaluator': self._evaluator_tree(models[0].evaluator),
        }

    def trial_parameters(self, model: Model) -> dict:
        return self.trial_parameters_of([model])

    # ----- results -----

    def _on_message(self, message: tuple) -> None:
        kind, pid = message[0], message[1]
        with self._lock:
            trial = self._trials.get(pid) if isinstance(pid, int) else None
        if trial is None:
            _logger.warning('result for an unknown trial %r ignored', pid)
            return
        models = trial.models
        if kind == 'metric':
            _, _, trial_id, metric_type, value = message
            for i, model in enumerate(models):
                if self._trial_of.get(model.model_id) != pid:
                    continue  # a result of an earlier (merged) trial of a model being re-run
                self.trial_job_ids[model.model_id] = trial_id
                single = value.get(f'model_{i}') if isinstance(value, dict) else None
                if single is None and len(models) == 1:
                    single = value.get('default') if isinstance(value, dict) else value
                if single is None:
                    continue
                if metric_type == 'FINAL':
                    model.metric = single
                elif metric_type == 'PERIODICAL':
                    model.intermediate_metrics.append(single)
        elif kind == 'end':
            _, _, trial_id, event = message
            current = [m for m in models if self._trial_of.get(m.model_id) == pid]
            for model in current:
                self.trial_job_ids[model.model_id] = trial_id
            # a failed merged trial re-runs all its models alone; a succeeded one only those without a result
            rerun = [] if len(models) == 1 or self._closed else \
                current if event != 'SUCCEEDED' else [m for m in current if m.metric is None]
            for model in current:
                if model not in rerun:
                    model.status = ModelStatus.Trained if event == 'SUCCEEDED' and model.metric is not None else ModelStatus.Failed
            if rerun:
                _logger.info('CGO: merged trial %s ended %s; models %s run alone', trial_id, event, [m.model_id for m in rerun])
            for model in rerun:
                model.metric = None
                model.intermediate_metrics = []
                self._send_trial(PhysicalTrial([model], trial.input))
