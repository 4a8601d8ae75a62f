"""TPE strategy: nni-hpo's native TPE tuner over the dry-run choice space."""
from __future__ import annotations

import itertools
import logging
import random
from typing import Any, Dict, List, Optional, Tuple

from ..graph import Model
from ..mutator import InvalidMutation, Mutator
from .base import BaseStrategy
from .utils import ChoiceSpace, ModelTracker, metric_of

__all__ = ['TPEStrategy']

_logger = logging.getLogger(__name__)


class TPEStrategy(BaseStrategy):
    """The Tree-structured Parzen Estimator (Bergstra et al., "Algorithms for Hyper-Parameter Optimization").

    A sequential model-based optimization approach: it models the performance of configurations from the
    history of results and chooses the next configuration to try from that model. Each choice of the dry-run
    space becomes one categorical (``choice`` over candidate indices) parameter of
    :class:`nni.algorithms.hpo.tpe_tuner.TpeTuner` (needs nni-hpo).

    Configurations already tried are not trained again: their known result is fed back to the tuner and
    another suggestion is asked for (after ``max_redraws`` repeats in a row, an untried configuration is
    drawn at random). The strategy stops, after waiting for its running models, once every configuration has
    been tried. Failed models are told to the tuner as failed trials (no result).

    Args (none in NNI v2.5; these are extensions with the v2.5 behaviour as defaults):
        optimize_mode: ``'maximize'`` (default: NAS metrics are accuracies) or ``'minimize'``.
        seed: seed of the tuner and of the fallback draws (``None``: not reproducible).
        tpe_args: algorithm settings of the tuner (see ``TpeArguments``), e.g. ``{'n_startup_jobs': 10}``.
    """

    max_redraws = 20

    def __init__(self, optimize_mode: str = 'maximize', seed: Optional[int] = None, tpe_args: Optional[Dict[str, Any]] = None):
        try:
            from nni.algorithms.hpo.tpe_tuner import TpeTuner
        except ImportError as err:  # nni-hpo is a separate distribution
            raise ImportError('TPEStrategy needs the TPE tuner of nni-hpo (nni.algorithms.hpo.tpe_tuner); install nni-hpo') from err
        if optimize_mode not in ('maximize', 'minimize'):
            raise ValueError(f"TPEStrategy: optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        self.optimize_mode = optimize_mode
        self.seed = seed
        self.tpe_args = tpe_args
        self._tuner_class = TpeTuner
        self._make_tuner()  # checks tpe_args now (a one-line error) rather than when the experiment runs
        self.rng = random.Random(seed)

    def _make_tuner(self) -> Any:
        self.tuner = self._tuner_class(optimize_mode=self.optimize_mode, seed=self.seed, tpe_args=self.tpe_args)
        return self.tuner

    def run(self, base_model: Model, applied_mutators: List[Mutator]) -> None:
        space = ChoiceSpace(base_model, applied_mutators)
        self._make_tuner()  # every run starts from no results
        keys = [f'c{i}' for i in range(len(space))]  # the tuner's parameter names: positions, labels may hold any character
        self.tuner.update_search_space({key: {'_type': 'choice', '_value': list(range(n))} for key, n in zip(keys, space.counts)})
        ids = itertools.count()
        results: Dict[int, float] = {}        # code -> metric of a finished configuration
        tried: set = set()                    # codes submitted (running or finished) or invalid
        running: Dict[int, Tuple[int, int, dict]] = {}  # model_id -> (parameter id, code, parameters)

        def on_finished(model: Model) -> None:
            pid, code, params = running.pop(model.model_id)
            metric = metric_of(model)
            if metric is None:
                self.tuner.trial_end(pid, False)
                return
            results[code] = metric
            self.tuner.receive_trial_result(pid, params, metric)
            self.tuner.trial_end(pid, True)

        tracker = ModelTracker()
        while tracker.next_slot(on_finished):
            indices: Optional[Tuple[int, ...]] = None
            pid = next(ids)
            params: dict = {}
            for _ in range(self.max_redraws):
                params = self.tuner.generate_parameters(pid)
                candidate = tuple(int(params[key]) for key in keys)
                code = space.encode(candidate)
                if code not in tried:
                    indices = candidate
                    break
                if code in results:  # known: answer from history, ask again
                    self.tuner.receive_trial_result(pid, params, results[code])
                    self.tuner.trial_end(pid, True)
                else:  # still running: let the tuner forget the suggestion
                    self.tuner.trial_end(pid, False)
                pid = next(ids)
            if indices is None:
                indices = space.random_unseen(tried, self.rng)
                if indices is None:
                    _logger.info('TPEStrategy: all %d configurations tried; waiting for the running models', space.size)
                    tracker.wait_all(on_finished)
                    return
                # not a suggestion: the tuner takes its result as a customized trial (mapped from the parameters)
                params = {key: i for key, i in zip(keys, indices)}
            code = space.encode(indices)
            tried.add(code)
            try:
                model = space.build(base_model, indices)
            except InvalidMutation as err:
                _logger.debug('TPEStrategy: invalid configuration (%s)', err)
                self.tuner.trial_end(pid, False)
                continue
            running[model.model_id] = (pid, code, params)
            tracker.submit(model)
