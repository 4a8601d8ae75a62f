"""An execution engine that trains models in threads of the current process (tests, debugging, tiny searches).

::

    with InProcessExecutionEngine(concurrency=2, max_trial_number=20) as engine:   # sets itself as the engine
        strategy.run(base_model, mutators)
    engine.models                     # every submitted Model, with metric / intermediate_metrics / status

Each submitted model is built in a worker thread (pure-python models with :func:`nni.retiarii.space.instantiate`,
graph models with :func:`nni.retiarii.codegen.model_to_pytorch_module`) and handed to its evaluator
(``model.evaluator``, else the engine's ``evaluator``) as a zero-argument factory: ``evaluator._execute(factory)``,
the same contract as in a trial.

Metrics: the evaluator reports with the ordinary trial API (``nni.report_final_result`` /
``nni.report_intermediate_result``). The engine hooks the trial API's channel look-up (``nni.trial.get_channel``)
once, so that in a worker thread it returns a channel that writes into that thread's model; every other thread
keeps the channel of its environment. Inside a worker ``nni.get_trial_id()`` is ``model_<id>`` and
``nni.get_next_parameter()`` returns ``model.sample``. A final result given as a dict is reduced to its
``'default'`` key for ``model.metric`` (intermediate ones too). An evaluator that raises makes the model
``Failed``; one that returns without a final result leaves it ``Trained`` with ``metric`` ``None``.

Budget: ``max_trial_number`` submissions and/or ``max_duration`` seconds since the engine was made.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Dict, List, Optional

from ..graph import Model, ModelStatus
from . import set_execution_engine
from .base import AbstractExecutionEngine, is_finished

__all__ = ['InProcessExecutionEngine']

_logger = logging.getLogger(__name__)

_local = threading.local()
_hook_lock = threading.Lock()


def _install_channel_hook() -> None:
    import nni.trial as trial

    with _hook_lock:
        if getattr(trial.get_channel, '_retiarii_inprocess', False):
            return
        original = trial.get_channel

        def get_channel() -> Any:
            channel = getattr(_local, 'channel', None)
            return channel if channel is not None else original()

        get_channel._retiarii_inprocess = True  # type: ignore[attr-defined]
        trial.get_channel = get_channel


def _scalar(value: Any) -> Any:
    return value.get('default', value) if isinstance(value, dict) else value


class _ModelChannel:
    """The trial channel of one worker thread: parameters are the model's sample, metrics go to the model."""

    def __init__(self, model: Model, sequence: int):
        from nni.runtime.env_vars import TrialEnv
        from nni.trial import TrialState

        self.model = model
        self.final_reported = False
        self.trial_state = TrialState()  # each model is its own trial for nni.get_next_parameter()
        self.env = TrialEnv(platform='inprocess', exp_id='inprocess', trial_job_id=f'model_{model.model_id}',
                            sequence_id=str(sequence), sys_dir=None, output_dir=None, multi_phase=False,
                            manager_url=None, manager_token=None)

    def get_parameter(self, index: int, wait: bool = False) -> Optional[dict]:
        if index != 0:
            return None
        return {'parameter_id': self.model.model_id, 'parameter_source': 'algorithm',
                'parameters': dict(self.model.sample), 'parameter_index': 0}

    def request_parameter(self, index: int) -> None:
        pass

    def send_metric(self, record: dict) -> None:
        value = record['value']
        value = json.loads(value) if isinstance(value, str) else value
        if record['type'] == 'FINAL':
            self.model.metric = _scalar(value)
            self.final_reported = True
        elif record['type'] == 'PERIODICAL':
            self.model.intermediate_metrics.append(_scalar(value))


class InProcessExecutionEngine(AbstractExecutionEngine):
    """Trains submitted models in a pool of ``concurrency`` threads of this process.

    Args:
        concurrency: models trained at the same time.
        max_trial_number: the budget in models (``None``: unlimited).
        max_duration: the budget in seconds from construction (``None``: unlimited).
        evaluator: used for models whose ``evaluator`` is ``None``.
    """

    def __init__(self, concurrency: int = 1, max_trial_number: Optional[int] = None, max_duration: Optional[float] = None,
                 evaluator: Any = None):
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise ValueError(f'InProcessExecutionEngine: concurrency must be an int >= 1, got {concurrency!r}')
        if max_trial_number is not None and (not isinstance(max_trial_number, int) or max_trial_number < 1):
            raise ValueError(f'InProcessExecutionEngine: max_trial_number must be an int >= 1 or None, got {max_trial_number!r}')
        if max_duration is not None and not max_duration > 0:
            raise ValueError(f'InProcessExecutionEngine: max_duration must be > 0 seconds or None, got {max_duration!r}')
        _install_channel_hook()
        self.concurrency = concurrency
        self.max_trial_number = max_trial_number
        self.max_duration = max_duration
        self.evaluator = evaluator
        self.models: List[Model] = []
        self.errors: Dict[int, BaseException] = {}  # model_id -> what the evaluator raised
        self._futures: List[Future] = []
        self._lock = threading.Lock()
        self._running = 0
        self._start = time.monotonic()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix='retiarii-inprocess')

    # ------------------------------------------------------------------ engine API
    def submit_models(self, *models: Model) -> None:
        with self._lock:
            if self.max_trial_number is not None and len(self.models) + len(models) > self.max_trial_number:
                raise RuntimeError(f'InProcessExecutionEngine: submitting {len(models)} more model(s) would exceed '
                                   f'max_trial_number={self.max_trial_number} ({len(self.models)} submitted); '
                                   'check budget_exhausted() first')
            for model in models:
                if model.status != ModelStatus.Frozen:
                    raise RuntimeError(f'InProcessExecutionEngine: only frozen models can be submitted, got one that is {model.status.value}')
                model.status = ModelStatus.Training
                self._running += 1
                sequence = len(self.models)
                self.models.append(model)
                self._futures.append(self._pool.submit(self._train, model, sequence))

    def list_models(self) -> List[Model]:
        return list(self.models)

    def query_available_resource(self) -> int:
        with self._lock:
            free = self.concurrency - self._running
            if self.max_trial_number is not None:
                free = min(free, self.max_trial_number - len(self.models))
        return 0 if self.budget_exhausted() else max(free, 0)

    def budget_exhausted(self) -> bool:
        if self.max_trial_number is not None and len(self.models) >= self.max_trial_number:
            return True
        return self.max_duration is not None and time.monotonic() - self._start >= self.max_duration

    def wait_models(self, *models: Model) -> None:
        while not all(is_finished(m) for m in models):
            time.sleep(0.005)

    def shutdown(self) -> None:
        """Wait for the running models, then stop the threads."""
        self._pool.shutdown(wait=True)

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> 'InProcessExecutionEngine':
        set_execution_engine(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.shutdown()
        finally:
            set_execution_engine(None)

    # ------------------------------------------------------------------ worker
    def _factory(self, model: Model) -> Any:
        if model.python_class is not None:
            from ..space import instantiate
            return lambda: instantiate(model)
        if model.root_graph is not None:
            from ..codegen import model_to_pytorch_module
            return lambda: model_to_pytorch_module(model)
        raise ValueError('InProcessExecutionEngine: the model has neither a python_class nor graphs')

    def _train(self, model: Model, sequence: int) -> None:
        channel = _ModelChannel(model, sequence)
        _local.channel = channel
        try:
            evaluator = model.evaluator if model.evaluator is not None else self.evaluator
            if evaluator is None:
                raise ValueError('InProcessExecutionEngine: the model has no evaluator and the engine was given none')
            evaluator._execute(self._factory(model))
            status = ModelStatus.Trained
        except BaseException as err:  # a failing model must not kill the worker
            _logger.info('model %d failed: %s: %s', model.model_id, type(err).__name__, err)
            self.errors[model.model_id] = err
            status = ModelStatus.Failed
        finally:
            _local.channel = None
        with self._lock:
            self._running -= 1
            model.status = status  # last: strategies poll the status
