"""``RetiariiExperiment`` and ``RetiariiExeConfig``: a multi-trial NAS experiment on the NNI manager.

How it runs (the manager is unchanged: the same manager, REST API, web UI and training services as
an HPO experiment):

1. ``run()`` prepares the model space for the execution engine (``'py'``: the ``@model_wrapper``
   class and its inline choices; ``'base'``: the torch.fx graph IR and its mutators), then starts
   the manager with an ordinary experiment config whose ``advisor`` is
   :class:`nni.retiarii.experiment._advisor.RetiariiAdvisor` and whose trial command is
   ``python3 -m nni.retiarii.trial_entry <engine>``.
2. The advisor (in the manager's dispatcher process) connects back to the engine in this process.
   The strategy runs here, in a thread: each submitted model becomes one trial whose parameters
   (visible in the web UI) carry the architecture dict ``sample``, what the trial needs to build the
   model, and the dumped evaluator.
3. Metrics and trial ends flow back into ``Model.metric`` / ``intermediate_metrics`` / ``status``.
4. When the strategy returns, the advisor tells the manager there are no more trials; ``run()``
   returns once the experiment is DONE (or the budget ended it), after stopping the manager.
"""
from __future__ import annotations

import copy
import logging
import numbers
import threading
import time
from typing import Any, List, Optional

from nni.experiment import Experiment
from nni.experiment.config import ExperimentConfig
from nni.experiment.config.base import ConfigError, Field
from nni.runtime.states import ENDED_STATES

from .. import execution
from ..graph import Model, ModelStatus

__all__ = ['RetiariiExeConfig', 'RetiariiExperiment']

_logger = logging.getLogger('nni.retiarii.experiment')

ENGINES = ('py', 'base', 'cgo', 'benchmark')
_HALTED = ENDED_STATES
_NOT_SUPPORTED: dict = {}
#: engines whose trials receive generated code (the CGO trial runs the graph engine's trial command)
_GRAPH_ENGINES = ('base', 'cgo')


class RetiariiExeConfig(ExperimentConfig):
    """The config of a :class:`RetiariiExperiment`: the experiment config v2 fields plus ``execution_engine``.

    ``RetiariiExeConfig('local')`` (or ``'remote'``) creates the training-service config. ``trial_command``,
    ``search_space`` and the tuner / assessor / advisor are set by the experiment and must be left alone.
    ``trial_code_directory`` (default ``.``) is the trial's working directory: modules the model space or the
    evaluator import by name must be importable from there.

    Args:
        training_service_platform: ``'local'``, ``'remote'``, ...
        **kwargs: fields (``experiment_name``, ``trial_concurrency``, ``max_trial_number``,
            ``max_experiment_duration``, ``trial_gpu_number``, ``execution_engine`` (``'py'``, default, ``'base'``,
            ``'cgo'`` or ``'benchmark'``), ``max_concurrency_cgo`` (the most models merged into one trial, default 3)
            and ``batch_waiting_time`` (seconds, default 10) for ``'cgo'`` (:mod:`nni.retiarii.execution.cgo_engine`;
            ``max_trial_number`` then counts models, not trials), ``dummy_input`` (input shape, for hardware-aware filters), ``benchmark``
            (``'nasbench201'`` / ``'nasbench101'``), ``benchmark_dataset``, ``benchmark_metric``, ``benchmark_epochs``
            (see :mod:`nni.retiarii.execution.benchmark`) ...).
    """

    _fields = {
        **ExperimentConfig._fields,
        'trial_command': Field('str', default='_reserved'),
        'execution_engine': Field('str', default='py'),
        'dummy_input': Field('json'),
        # execution_engine='cgo'
        'max_concurrency_cgo': Field('json'),
        'batch_waiting_time': Field('json'),
        # execution_engine='benchmark': nni.retiarii.execution.benchmark checks them
        'benchmark': Field('str'),
        'benchmark_dataset': Field('str'),
        'benchmark_metric': Field('str'),
        'benchmark_epochs': Field('int'),
    }

    def validate_retiarii(self) -> None:
        """Check the NAS-specific fields (one-line :class:`ConfigError`)."""
        engine = self.execution_engine
        if engine in _NOT_SUPPORTED:
            raise ConfigError('executionEngine', f'{engine!r}: {_NOT_SUPPORTED[engine]}; allowed: {", ".join(map(repr, ENGINES))}')
        if engine not in ENGINES:
            raise ConfigError('executionEngine', f'unknown engine {engine!r}; allowed: {", ".join(map(repr, ENGINES))}')
        if engine == 'benchmark':
            from ..execution.benchmark import check_config
            check_config(self)
        value = self.max_concurrency_cgo
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise ConfigError('maxConcurrencyCgo', f'expected a positive int (the most models merged into one trial), got {value!r}')
        value = self.batch_waiting_time
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0):
            raise ConfigError('batchWaitingTime', f'expected a number of seconds >= 0, got {value!r}')
        if self.trial_command not in (None, '_reserved'):
            raise ConfigError('trialCommand', 'is set by RetiariiExperiment (python3 -m nni.retiarii.trial_entry <engine>); leave it unset')
        for name in ('tuner', 'assessor', 'advisor'):
            value = getattr(self, name)
            if value is not None and not (hasattr(value, 'is_empty') and value.is_empty()):
                raise ConfigError(name, 'not used by a NAS experiment (the strategy chooses the models); leave it unset')
        if self.dummy_input is not None and not (isinstance(self.dummy_input, (list, tuple)) and self.dummy_input
                                                  and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in self.dummy_input)):
            raise ConfigError('dummyInput', f'expected a shape: a list of positive ints like [1, 3, 32, 32], got {self.dummy_input!r}')

    def experiment_config(self, advisor: dict) -> ExperimentConfig:
        """The plain experiment config the manager runs (validated: a bad field raises a one-line ConfigError)."""
        self.validate_retiarii()
        values = {name: copy.deepcopy(getattr(self, name)) for name in ExperimentConfig._fields}
        trial_engine = 'base' if self.execution_engine == 'cgo' else self.execution_engine
        values.update(trial_command=f'python3 -m nni.retiarii.trial_entry {trial_engine}',
                      search_space={}, search_space_file=None, tuner=None, assessor=None, advisor=advisor)
        if self.execution_engine == 'cgo':
            # one trial trains several models: the engine counts models against max_trial_number, and a failed
            # merged trial re-runs its models in more trials than models
            values['max_trial_number'] = None
        values = {k: v for k, v in values.items() if v is not None}
        config = ExperimentConfig(**values)
        object.__setattr__(config, '_base_path', self._base_path)
        config.to_canonical_dict()  # validation, before anything starts
        return config


def _check_strategy(strategy: Any) -> None:
    if not callable(getattr(strategy, 'run', None)):
        raise TypeError(f'strategy: expected a strategy object with run(base_model, applied_mutators) '
                        f'(e.g. nni.retiarii.strategy.Random()), got {type(strategy).__name__}')


class RetiariiExperiment(Experiment):
    """A multi-trial NAS experiment.

    Args:
        base_model: the model space (a ``@model_wrapper`` module instance for ``execution_engine='py'``;
            a plain module, maybe with inline choices, for ``'base'``).
        evaluator: trains and scores each model (``FunctionalEvaluator``, ``pl.Classification`` ...).
        applied_mutators: ``Mutator`` objects (graph-based engine only; empty with inline mutations).
        strategy: any object with ``run(base_model, applied_mutators)`` (``nni.retiarii.strategy``).

    Example::

        exp = RetiariiExperiment(Net(), FunctionalEvaluator(fit), [], Random())
        config = RetiariiExeConfig('local')
        config.trial_concurrency = 2
        config.max_trial_number = 10
        exp.run(config, 8081)
        print(exp.export_top_models(formatter='dict'))
    """

    def __init__(self, base_model: Any, evaluator: Any = None, applied_mutators: Optional[list] = None,
                 strategy: Any = None, trainer: Any = None):
        super().__init__(None)
        if evaluator is None:
            evaluator = trainer  # v2.0 spelling
        if evaluator is None:
            raise TypeError('evaluator: required (e.g. FunctionalEvaluator(fit) or pl.Classification(...))')
        _check_strategy(strategy)
        if applied_mutators is not None and not isinstance(applied_mutators, (list, tuple)):
            raise TypeError(f'applied_mutators: expected a list of Mutator objects, got {type(applied_mutators).__name__}')
        self.base_model = base_model
        self.evaluator = evaluator
        self.applied_mutators = list(applied_mutators or [])
        self.strategy = strategy
        self.exe_config: Optional[RetiariiExeConfig] = None
        self._engine: Optional[execution.AbstractExecutionEngine] = None
        self._models: List[Model] = []
        self._engine_name: Optional[str] = None
        self._final_status: Optional[str] = None

    # ----- running -----

    def run(self, config: Optional[RetiariiExeConfig] = None, port: int = 8080, debug: bool = False) -> bool:
        """Run the search: blocks until the strategy finished and its trials ended (or a budget is reached).

        Serves the web UI on ``port`` meanwhile; the manager is stopped when this returns.
        With ``execution_engine='benchmark'`` the strategy runs in this thread against the benchmark database,
        without the manager or web UI (:mod:`nni.retiarii.execution.benchmark`).

        Returns:
            ``True`` when the experiment ended DONE.
        """
        from ..execution.graph import GraphExecutionEngine
        from ..execution.python import PurePythonExecutionEngine

        config = config if config is not None else self.exe_config
        if config is None:
            raise ValueError("config: required; pass RetiariiExeConfig('local') with trial_concurrency set")
        if not isinstance(config, RetiariiExeConfig):
            raise TypeError(f'config: expected a RetiariiExeConfig, got {type(config).__name__}')
        config.validate_retiarii()
        self.exe_config = config
        if config.dummy_input is not None:
            from ..strategy.hardware import fill_dummy_input
            fill_dummy_input(self.strategy, config.dummy_input)  # a LatencyFilter without its own input shape
        if config.execution_engine == 'benchmark':  # answered from the database in this process: no manager, no trials
            from ..execution.benchmark import run_experiment
            return run_experiment(self, config)
        if config.execution_engine == 'cgo':
            from ..execution.cgo_engine import CGOExecutionEngine
            CGOExecutionEngine.check_evaluator(self.evaluator)
            engine = CGOExecutionEngine(config.trial_concurrency, config.max_trial_number,
                                        config.max_concurrency_cgo, config.batch_waiting_time)
        else:
            engine_cls = GraphExecutionEngine if config.execution_engine == 'base' else PurePythonExecutionEngine
            engine = engine_cls(config.trial_concurrency, config.max_trial_number)
        strategy_error: List[BaseException] = []
        try:
            base_model, mutators = engine.preprocess(self.base_model, self.applied_mutators)
            base_model.evaluator = self.evaluator
            self.config = config.experiment_config(engine.advisor_config())
            self._engine, self._engine_name = engine, config.execution_engine
            self.start(port, debug)
            engine.set_status_source(self._cached_status())
            execution.set_execution_engine(engine)
            thread = threading.Thread(target=self._run_strategy, args=(base_model, mutators, strategy_error),
                                      name='retiarii-strategy', daemon=True)
            thread.start()
            finished_sent = False
            status = self.get_status()
            while status not in _HALTED:
                if not finished_sent and not thread.is_alive():
                    engine.finish()
                    finished_sent = True
                time.sleep(0.1)
                status = self.get_status()
            self._final_status = status
        finally:
            engine.shutdown()
            self._models = engine.list_models()
            if self.port is not None:
                self.stop()
        if strategy_error:
            raise strategy_error[0]
        return status == 'DONE'

    def _cached_status(self):
        # strategies poll budget_exhausted() in loops: at most one REST call per 0.2 s
        cache = {'at': 0.0, 'status': None}

        def status() -> str:
            if time.monotonic() - cache['at'] > 0.2:
                cache['status'], cache['at'] = self.get_status(), time.monotonic()
            return cache['status']
        return status

    def _run_strategy(self, base_model: Model, mutators: list, errors: List[BaseException]) -> None:
        try:
            self.strategy.run(base_model, mutators)
        except BaseException as err:  # noqa: BLE001 - re-raised by run() in the main thread
            _logger.exception('the strategy failed')
            errors.append(err)

    # ----- results -----

    def list_models(self) -> List[Model]:
        """Every model the strategy submitted, in order (with ``status``, ``metric``, ``intermediate_metrics``)."""
        return list(self._engine.list_models()) if self._engine is not None else list(self._models)

    def export_top_models(self, top_k: int = 1, optimize_mode: str = 'maximize', formatter: str = 'dict') -> List[Any]:
        """The ``top_k`` trained models by final metric, best first.

        Args:
            top_k: how many.
            optimize_mode: ``'maximize'`` or ``'minimize'`` the metric.
            formatter: ``'dict'``: the architecture dicts (``label -> value``, what ``fixed_arch`` takes);
                ``'code'``: the generated PyTorch ``forward`` source (graph-based engine only).
        """
        if formatter not in ('dict', 'code'):
            raise ValueError(f"formatter: unknown {formatter!r}; allowed: 'dict', 'code'")
        if optimize_mode not in ('maximize', 'minimize'):
            raise ValueError(f"optimize_mode: unknown {optimize_mode!r}; allowed: 'maximize', 'minimize'")
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ValueError(f'top_k: expected a positive int, got {top_k!r}')
        if formatter == 'code' and self._engine_name not in _GRAPH_ENGINES:
            raise ValueError("formatter='code' needs the graph-based engine (execution_engine='base'); "
                             "the pure-python engine exports formatter='dict'")
        trained = [m for m in self.list_models()
                   if m.status == ModelStatus.Trained and isinstance(m.metric, numbers.Real)]
        trained.sort(key=lambda m: m.metric, reverse=optimize_mode == 'maximize')
        top = trained[:top_k]
        if formatter == 'code':
            from ..codegen import model_to_pytorch_module
            return [model_to_pytorch_module(m).code for m in top]
        if self._engine_name in _GRAPH_ENGINES:
            from ..execution.graph import architecture_of
            return [architecture_of(m) for m in top]
        return [dict(m.sample) for m in top]

    def get_experiment_id(self) -> Optional[str]:
        """The experiment id (known once ``run()`` started it)."""
        return self.id

    def get_status(self) -> str:
        """``RUNNING``, ``DONE``, ``STOPPED``, ``ERROR`` ... (the manager's; ``INITIALIZED`` before ``run()``)."""
        if self.port is None and self._final_status is not None:
            return self._final_status  # the store says STOPPED: run() stops the manager after DONE
        if self.id is None:
            return 'INITIALIZED'
        return super().get_status()
