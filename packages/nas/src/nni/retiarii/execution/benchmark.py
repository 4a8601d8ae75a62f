"""An execution engine that answers from a NAS benchmark database instead of training.

::

    with BenchmarkExecutionEngine('nasbench201', dataset='cifar100', max_trial_number=50) as engine:
        strategy.run(*engine.preprocess(NasBench201Space()))
    engine.models        # each with metric = the database's valid_acc after 200 epochs (mean over seeds)

or, with the same user code as a real search, ``RetiariiExeConfig(execution_engine='benchmark',
benchmark='nasbench201')`` and ``RetiariiExperiment.run``. The search runs in this process without the NNI
manager (no trial is run, so there is nothing for the manager or the web UI to do): each submitted model is
turned into the benchmark's architecture key and answered at once with the database's numbers
(``nni.nas.benchmarks``, from nni-benchmarks; the database must exist in ``$NASBENCHMARK_DIR``).

Supported model spaces (checked by :meth:`BenchmarkExecutionEngine.preprocess`, one-line error otherwise):

- ``'nasbench201'``: exactly the six edge choices ``<prefix>/0_1 ... <prefix>/2_3`` of a
  :class:`~nni.retiarii.nn.pytorch.NasBench201Cell` (every cell sharing one label), candidates named as the
  database's operators (``none``, ``skip_connect``, ``conv_1x1``, ``conv_3x3``, ``avg_pool_3x3``; the official
  ``nor_conv_1x1`` / ``nor_conv_3x3`` are accepted too), e.g. :class:`nni.retiarii.benchmark_spaces.NasBench201Space`.
- ``'nasbench101'``: exactly the choices ``<prefix>/num_nodes``, ``<prefix>/op<i>``, ``<prefix>/input<i>`` of
  a :class:`~nni.retiarii.nn.pytorch.NasBench101Cell` with at most 7 vertices, operators among
  ``conv3x3-bn-relu``, ``conv1x1-bn-relu``, ``maxpool3x3`` (e.g. ``NasBench101Space``). The sampled cell is pruned
  as NAS-Bench-101 does and looked up by its graph hash (``isomorphism=True``); a cell with more than 9 edges
  after pruning is ``Failed`` (it would raise ``InvalidMutation`` when built).

A model is ``Trained`` with ``metric`` = the ``metric`` field (default ``valid_acc``) of the trials of that
architecture at ``num_epochs`` (default: 200 for NAS-Bench-201, 108 for NAS-Bench-101), averaged over the
benchmark's seeds (``reduction='mean'``), and ``intermediate_metrics`` = that field per epoch. An architecture
the database does not hold is ``Failed`` (the reason is in ``engine.errors``). Results are cached per architecture.
"""
from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, Dict, List, Optional, Tuple

from ..graph import Model, ModelStatus
from . import set_execution_engine
from .base import AbstractExecutionEngine

__all__ = ['BenchmarkExecutionEngine', 'UnsupportedSpaceError', 'BENCHMARKS', 'sample_to_nb201_arch', 'sample_to_nb101_arch',
           'check_config', 'run_experiment']

_logger = logging.getLogger(__name__)

BENCHMARKS = ('nasbench201', 'nasbench101')
NB201_DATASETS = ('cifar10-valid', 'cifar10', 'cifar100', 'imagenet16-120')
NB201_EDGES = ('0_1', '0_2', '0_3', '1_2', '1_3', '2_3')
NB201_OPS = ('none', 'skip_connect', 'conv_1x1', 'conv_3x3', 'avg_pool_3x3')
_NB201_ALIASES = {'nor_conv_1x1': 'conv_1x1', 'nor_conv_3x3': 'conv_3x3'}
NB101_OPS = ('conv3x3-bn-relu', 'conv1x1-bn-relu', 'maxpool3x3')
NB101_MAX_NODES, NB101_MAX_EDGES = 7, 9
_METRICS = {'nasbench201': ('train_acc', 'valid_acc', 'test_acc', 'ori_test_acc'),
            'nasbench101': ('train_acc', 'valid_acc', 'test_acc')}
_DEFAULT_EPOCHS = {'nasbench201': 200, 'nasbench101': 108}
_EPOCHS = {'nasbench201': (12, 200), 'nasbench101': (4, 12, 36, 108)}

_SUPPORTED = ("supported: benchmark='nasbench201' with one NasBench201Cell label (edges <label>/0_1 ... <label>/2_3, "
              f"candidates among {', '.join(NB201_OPS)}; e.g. nni.retiarii.benchmark_spaces.NasBench201Space) or "
              "benchmark='nasbench101' with one NasBench101Cell label (<label>/num_nodes, op<i>, input<i>, at most 7 vertices, "
              f"candidates among {', '.join(NB101_OPS)}; e.g. NasBench101Space)")


class UnsupportedSpaceError(ValueError):
    """The model space is not one the chosen benchmark has the architectures of."""


def _nb201_op(value: Any) -> Optional[str]:
    value = _NB201_ALIASES.get(value, value)
    return value if value in NB201_OPS else None


def _check_nb201_space(choices: Dict[str, List[Any]]) -> str:
    """The label prefix of the NB201 cell, or a one-line UnsupportedSpaceError."""
    prefixes = {}
    for label in choices:
        m = re.fullmatch(r'(.+)/([0-9]+_[0-9]+)', label)
        if m is None or m.group(2) not in NB201_EDGES:
            raise UnsupportedSpaceError(f'execution_engine=\'benchmark\' (nasbench201): the model space has the choice {label!r}, '
                                        f'which is not an edge of a NAS-Bench-201 cell; {_SUPPORTED}')
        prefixes.setdefault(m.group(1), []).append(m.group(2))
    if len(prefixes) != 1:
        raise UnsupportedSpaceError(f'execution_engine=\'benchmark\' (nasbench201): expected the edges of one cell label (every cell '
                                    f'shares one architecture in NAS-Bench-201), got labels {sorted(prefixes)}; {_SUPPORTED}')
    (prefix, edges), = prefixes.items()
    if sorted(edges) != list(NB201_EDGES):
        raise UnsupportedSpaceError(f'execution_engine=\'benchmark\' (nasbench201): cell {prefix!r} has edges {sorted(edges)}, '
                                    f'expected {", ".join(NB201_EDGES)} (num_tensors=4); {_SUPPORTED}')
    for label, candidates in choices.items():
        bad = [c for c in candidates if _nb201_op(c) is None]
        if bad:
            raise UnsupportedSpaceError(f'execution_engine=\'benchmark\' (nasbench201): choice {label!r} has candidates {bad} that are not '
                                        f'NAS-Bench-201 operators (name the candidates {", ".join(NB201_OPS)}); {_SUPPORTED}')
    return prefix


def _check_nb101_space(choices: Dict[str, List[Any]]) -> str:
    prefixes = {}
    for label in choices:
        m = re.fullmatch(r'(.+)/(num_nodes|op[0-9]+|input[0-9]+)', label)
        if m is None:
            raise UnsupportedSpaceError(f'execution_engine=\'benchmark\' (nasbench101): the model space has the choice {label!r}, '
                                        f'which is not a choice of a NAS-Bench-101 cell; {_SUPPORTED}')
        prefixes.setdefault(m.group(1), set()).add(m.group(2))
    if len(prefixes) != 1:
        raise UnsupportedSpaceError(f'execution_engine=\'benchmark\' (nasbench101): expected the choices of one cell label, '
                                    f'got labels {sorted(prefixes)}; {_SUPPORTED}')
    (prefix, keys), = prefixes.items()
    sizes = choices.get(f'{prefix}/num_nodes')
    if sizes is None:
        raise UnsupportedSpaceError(f'execution_engine=\'benchmark\' (nasbench101): cell {prefix!r} has no num_nodes choice; {_SUPPORTED}')
    n = max(sizes)
    if not all(isinstance(s, int) for s in sizes) or n > NB101_MAX_NODES:
        raise UnsupportedSpaceError(f'execution_engine=\'benchmark\' (nasbench101): cell {prefix!r} allows num_nodes {sizes}, '
                                    f'NAS-Bench-101 cells have 2 ... {NB101_MAX_NODES} vertices; {_SUPPORTED}')
    expected = {'num_nodes'} | {f'op{i}' for i in range(1, n - 1)} | {f'input{i}' for i in range(1, n)}
    if keys != expected:
        raise UnsupportedSpaceError(f'execution_engine=\'benchmark\' (nasbench101): cell {prefix!r} has choices {sorted(keys)}, '
                                    f'expected {sorted(expected)}; {_SUPPORTED}')
    for i in range(1, n - 1):
        bad = [c for c in choices[f'{prefix}/op{i}'] if c not in NB101_OPS]
        if bad:
            raise UnsupportedSpaceError(f'execution_engine=\'benchmark\' (nasbench101): choice {prefix + "/op" + str(i)!r} has candidates '
                                        f'{bad} that are not NAS-Bench-101 operators (name them {", ".join(NB101_OPS)}); {_SUPPORTED}')
    return prefix


def sample_to_nb201_arch(sample: Dict[str, Any], prefix: str) -> Dict[str, str]:
    """The NAS-Bench-201 ``arch`` dict (``{'0_1': 'conv_3x3', ...}``) of an architecture dict of a cell labelled ``prefix``."""
    arch = {}
    for edge in NB201_EDGES:
        op = _nb201_op(sample.get(f'{prefix}/{edge}'))
        if op is None:
            raise ValueError(f'sample[{prefix + "/" + edge!r}]: {sample.get(prefix + "/" + edge)!r} is not one of {", ".join(NB201_OPS)}')
        arch[edge] = op
    return arch


def sample_to_nb101_arch(sample: Dict[str, Any], prefix: str) -> Dict[str, Any]:
    """The NAS-Bench-101 ``arch`` dict (``op<i>`` / ``input<i>``) of an architecture dict of a NasBench101Cell labelled
    ``prefix``, pruned as the cell is; a one-line ValueError for a cell NAS-Bench-101 does not hold."""
    n = int(sample[f'{prefix}/num_nodes'])
    matrix = [[0] * n for _ in range(n)]
    for v in range(1, n):
        chosen = sample.get(f'{prefix}/input{v}', [])
        for u in ([chosen] if isinstance(chosen, int) else chosen):
            matrix[int(u)][v] = 1
    from ..nn.pytorch.component import _nb101_prune  # the cell's own pruning, so both agree
    keep = _nb101_prune(matrix)
    if not keep:
        raise ValueError(f'cell {prefix!r}: the output is not reachable from the input')
    pruned = [[matrix[u][v] for v in keep] for u in keep]
    edges = sum(map(sum, pruned))
    if edges > NB101_MAX_EDGES:
        raise ValueError(f'cell {prefix!r}: {edges} edges after pruning, NAS-Bench-101 cells have at most {NB101_MAX_EDGES}')
    arch: Dict[str, Any] = {}
    for new_v, old_v in enumerate(keep[1:], start=1):
        if new_v < len(keep) - 1:
            arch[f'op{new_v}'] = sample[f'{prefix}/op{old_v}']
        arch[f'input{new_v}'] = [u for u in range(new_v) if pruned[u][new_v]]
    return arch


class BenchmarkExecutionEngine(AbstractExecutionEngine):
    """Answers each submitted model with a NAS benchmark's recorded result instead of training it.

    Args:
        benchmark: ``'nasbench201'`` or ``'nasbench101'``.
        dataset: NAS-Bench-201 only: ``'cifar10-valid'`` (default), ``'cifar10'``, ``'cifar100'``, ``'imagenet16-120'``.
        metric: the stats field reported (``'valid_acc'``, default; ``'test_acc'``, ``'train_acc'``, NB201 also ``'ori_test_acc'``).
        num_epochs: the training schedule looked up (NB201: 12 or 200, default 200; NB101: 4, 12, 36 or 108, default 108).
        max_trial_number: the budget in models (``None``: unlimited). Models submitted past it become ``Failed``.
        concurrency: what ``query_available_resource`` reports (strategies see the same parallelism as in a real run;
            models finish at once anyway).
    """

    def __init__(self, benchmark: str = 'nasbench201', dataset: Optional[str] = None, metric: str = 'valid_acc',
                 num_epochs: Optional[int] = None, max_trial_number: Optional[int] = None, concurrency: int = 1):
        if benchmark not in BENCHMARKS:
            raise ValueError(f'benchmark: unknown {benchmark!r}; allowed: {", ".join(map(repr, BENCHMARKS))}')
        if benchmark == 'nasbench201':
            dataset = 'cifar10-valid' if dataset is None else dataset
            if dataset not in NB201_DATASETS:
                raise ValueError(f'benchmark_dataset: {dataset!r} is not a NAS-Bench-201 dataset; allowed: {", ".join(map(repr, NB201_DATASETS))}')
        elif dataset is not None:
            raise ValueError(f'benchmark_dataset: nasbench101 has one dataset (CIFAR-10); leave it unset, got {dataset!r}')
        if metric not in _METRICS[benchmark]:
            raise ValueError(f'benchmark_metric: {metric!r} is not a {benchmark} metric; allowed: {", ".join(map(repr, _METRICS[benchmark]))}')
        num_epochs = _DEFAULT_EPOCHS[benchmark] if num_epochs is None else num_epochs
        if num_epochs not in _EPOCHS[benchmark]:
            raise ValueError(f'benchmark_epochs: {num_epochs!r} is not a {benchmark} schedule; allowed: {", ".join(map(str, _EPOCHS[benchmark]))}')
        if max_trial_number is not None and (not isinstance(max_trial_number, int) or isinstance(max_trial_number, bool)
                                             or max_trial_number < 1):
            raise ValueError(f'max_trial_number: expected an int >= 1 or None, got {max_trial_number!r}')
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise ValueError(f'concurrency: expected an int >= 1, got {concurrency!r}')
        self.benchmark, self.dataset, self.metric, self.num_epochs = benchmark, dataset, metric, num_epochs
        self.max_trial_number = max_trial_number
        self.concurrency = concurrency
        self.models: List[Model] = []
        self.errors: Dict[int, str] = {}  # model_id -> why it is Failed
        self.prefix: Optional[str] = None  # the cell label, set by preprocess / check_space
        self._cache: Dict[str, Tuple[Optional[float], List[Any], Optional[str]]] = {}
        self.query_seconds = 0.0  # time spent in database queries

    # ------------------------------------------------------------------ the model space
    def check_space(self, mutators: list) -> str:
        """Check that the mutators' choices are the benchmark's space; returns the cell label (one-line error otherwise)."""
        choices: Dict[str, List[Any]] = {}
        for mutator in mutators:
            mutable = getattr(mutator, 'mutable', None)
            if mutable is None:
                raise UnsupportedSpaceError(f'execution_engine=\'benchmark\': only inline choices of a @model_wrapper space are supported, '
                                            f'got the mutator {type(mutator).__name__}; {_SUPPORTED}')
            choices[mutable.label] = list(mutable.candidates)
        if not choices:
            raise UnsupportedSpaceError(f'execution_engine=\'benchmark\': the model space has no choices; {_SUPPORTED}')
        check = _check_nb201_space if self.benchmark == 'nasbench201' else _check_nb101_space
        self.prefix = check(choices)
        return self.prefix

    def preprocess(self, base_model: Any, applied_mutators: Optional[list] = None) -> Tuple[Model, list]:
        """The frozen base model and the mutators of a ``@model_wrapper`` space, checked against the benchmark."""
        from ..space import mutators_for, python_model
        if applied_mutators:
            raise UnsupportedSpaceError('applied_mutators: the benchmark engine supports inline choices only '
                                        f'(a @model_wrapper space, no Mutator subclasses); {_SUPPORTED}')
        model = python_model(base_model)
        mutators = mutators_for(base_model)
        self.check_space(mutators)
        return model, mutators

    def architecture(self, model: Model) -> Dict[str, Any]:
        """The benchmark's ``arch`` dict of a sampled model (ValueError if the benchmark cannot hold it)."""
        if self.prefix is None:
            raise RuntimeError('BenchmarkExecutionEngine: call preprocess() (or check_space()) before submitting models')
        if self.benchmark == 'nasbench201':
            return sample_to_nb201_arch(model.sample, self.prefix)
        return sample_to_nb101_arch(model.sample, self.prefix)

    # ------------------------------------------------------------------ the database
    def query(self, arch: Dict[str, Any]) -> Tuple[Optional[float], List[Any], Optional[str]]:
        """``(metric, intermediate metrics, error)`` of one architecture (cached)."""
        key = json.dumps(arch, sort_keys=True)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        start = time.perf_counter()
        try:
            if self.benchmark == 'nasbench201':
                from nni.nas.benchmarks.nasbench201 import query_nb201_trial_stats
                rows = list(query_nb201_trial_stats(arch, self.num_epochs, self.dataset, reduction='mean', include_intermediates=True))
            else:
                from nni.nas.benchmarks.nasbench101 import query_nb101_trial_stats
                rows = list(query_nb101_trial_stats(arch, self.num_epochs, isomorphism=True, reduction='mean',
                                                    include_intermediates=True))
        except ImportError as err:
            raise ImportError('the benchmark execution engine reads the databases of nni-benchmarks (nni.nas.benchmarks): '
                              'pip install nni-benchmarks') from err
        finally:
            self.query_seconds += time.perf_counter() - start
        if not rows or rows[0].get(self.metric) is None:
            where = f'{self.num_epochs} epochs' + (f' on {self.dataset}' if self.dataset else '')
            result: Tuple[Optional[float], List[Any], Optional[str]] = (None, [], f'the {self.benchmark} database has no {self.metric} for {arch} at {where}')
        else:
            inters = [rec.get(self.metric) for rec in rows[0].get('intermediates', [])]
            result = (float(rows[0][self.metric]), [v for v in inters if v is not None], None)
        self._cache[key] = result
        return result

    # ------------------------------------------------------------------ engine API
    def submit_models(self, *models: Model) -> None:
        for model in models:
            if model.status != ModelStatus.Frozen:
                raise ValueError(f'submit_models: model {model.model_id} is {model.status.value}; only frozen (sampled) models can be submitted')
            if self.budget_exhausted():
                _logger.warning('budget exhausted: model %s is not evaluated', model.model_id)
                model.status = ModelStatus.Failed
                continue
            model.status = ModelStatus.Training
            self.models.append(model)
            try:
                arch = self.architecture(model)
            except (ValueError, KeyError) as err:  # a cell the benchmark cannot hold (e.g. too many edges)
                self.errors[model.model_id] = str(err)
                model.status = ModelStatus.Failed
                continue
            metric, inters, error = self.query(arch)
            if error is not None:
                self.errors[model.model_id] = error
                model.status = ModelStatus.Failed
                continue
            model.intermediate_metrics = list(inters)
            model.metric = metric
            model.status = ModelStatus.Trained  # last: strategies poll the status

    def list_models(self) -> List[Model]:
        return list(self.models)

    def query_available_resource(self) -> int:
        if self.budget_exhausted():
            return 0
        if self.max_trial_number is None:
            return self.concurrency
        return min(self.concurrency, self.max_trial_number - len(self.models))

    def budget_exhausted(self) -> bool:
        return self.max_trial_number is not None and len(self.models) >= self.max_trial_number

    def wait_models(self, *models: Model) -> None:
        """Models are answered when submitted: nothing to wait for."""

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> 'BenchmarkExecutionEngine':
        set_execution_engine(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        set_execution_engine(None)


def run_experiment(experiment: Any, config: Any) -> bool:
    """``RetiariiExperiment.run`` for ``execution_engine='benchmark'``: the strategy runs here, against the database,
    without the NNI manager. Returns ``True`` (the search ended)."""
    engine = BenchmarkExecutionEngine(config.benchmark, config.benchmark_dataset, config.benchmark_metric or 'valid_acc',
                                      config.benchmark_epochs, config.max_trial_number, config.trial_concurrency or 1)
    base_model, mutators = engine.preprocess(experiment.base_model, experiment.applied_mutators)
    base_model.evaluator = experiment.evaluator
    experiment._engine, experiment._engine_name = engine, 'benchmark'
    with engine:
        experiment.strategy.run(base_model, mutators)
    experiment._models = engine.list_models()
    experiment._final_status = 'DONE'
    return True


_CONFIG_FIELDS = {'benchmark': 'benchmark', 'benchmark_dataset': 'benchmarkDataset', 'benchmark_metric': 'benchmarkMetric',
                  'benchmark_epochs': 'benchmarkEpochs', 'max_trial_number': 'maxTrialNumber', 'concurrency': 'trialConcurrency'}


def check_config(config: Any) -> None:
    """Check the benchmark fields of a ``RetiariiExeConfig`` (one-line ``ConfigError`` naming the field)."""
    from nni.experiment.config.base import ConfigError
    if config.benchmark is None:
        raise ConfigError('benchmark', f"required with executionEngine 'benchmark'; allowed: {', '.join(map(repr, BENCHMARKS))}")
    try:
        BenchmarkExecutionEngine(config.benchmark, config.benchmark_dataset, config.benchmark_metric or 'valid_acc',
                                 config.benchmark_epochs, config.max_trial_number, config.trial_concurrency or 1)
    except ValueError as err:
        name, _, detail = str(err).partition(': ')
        raise ConfigError(_CONFIG_FIELDS.get(name, name), detail) from None
