"""Run one optimiser on one task: NNI tuners in-process, Optuna and hyperopt side by side.

Every runner offers the same two operations:

* :meth:`Runner.optimize` — ``trials`` sequential suggestions on a task, each result fed back
  before the next suggestion; returns a :class:`History`;
* :meth:`Runner.suggestion_latency` — feed ``n_obs`` random observations, then time producing
  one suggestion (median of ``repeats``).

NNI tuners are driven through the documented Tuner API only (``update_search_space``,
``generate_parameters``, ``receive_trial_result``, ``trial_end``, ``import_data``), so any tuner
registered under ``nni.tuners`` — or any object with those methods — can be benchmarked.
"""
from __future__ import annotations

import abc
import inspect
import json
import math
import random
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import space as _space
from .tasks import Task

PEER_NAMES = ("optuna-tpe", "optuna-random", "hyperopt-tpe", "hyperopt-random")
# Every built-in tuner that can run on a static objective (NetworkMorphism searches network
# graphs, not a search space, so it has no task here). A tuner that rejects a task's space is
# reported as "n/a (reason)" for that task.
NNI_DEFAULT_TUNERS = ("TPE", "Random", "Anneal", "Evolution", "SMAC", "GPTuner", "MetisTuner",
                      "DNGOTuner", "PBTTuner", "PPOTuner")
# --quick keeps to tuners whose 30-trial runs take well under a second each.
QUICK_NNI_TUNERS = ("TPE", "Random", "Anneal", "Evolution", "SMAC", "GPTuner", "PPOTuner")
# classArgs a builtin name implies when its class is shared (NNI's Anneal is a HyperoptTuner).
_IMPLIED_CLASS_ARGS = {"Anneal": {"algorithm_name": "anneal"}}


@dataclass
class History:
    """What one optimisation run produced, one entry per trial."""

    observed: list[float] = field(default_factory=list)  # what the optimiser was told
    values: list[float] = field(default_factory=list)  # the noiseless objective
    tuner_seconds: float = 0.0  # time spent inside the optimiser (suggest + feed back)

    def best_so_far(self, length: int | None = None) -> list[float]:
        """The noiseless value of the incumbent (best *observed*) after each trial.

        Padded with the last value up to ``length`` when the optimiser stopped early.
        """
        out, best_obs, incumbent = [], math.inf, math.nan
        for obs, val in zip(self.observed, self.values):
            if obs < best_obs:
                best_obs, incumbent = obs, val
            out.append(incumbent)
        if length is not None and out:
            out += [out[-1]] * (length - len(out))
        return out


class Runner(abc.ABC):
    """An optimiser the benchmark can run; subclasses implement the two methods."""

    name: str = "runner"

    @abc.abstractmethod
    def optimize(self, task: Task, trials: int, seed: int) -> History:
        """Run ``trials`` sequential trials on ``task`` with ``seed``."""

    @abc.abstractmethod
    def suggestion_latency(self, task: Task, n_obs: int, seed: int, repeats: int = 3) -> float:
        """Seconds to produce one suggestion after ``n_obs`` random observations (median)."""

    def unsupported(self, task: Task) -> str | None:
        """Why this optimiser cannot search ``task``'s space, or ``None`` when it can."""
        return None


def random_observations(task: Task, n: int, seed: int) -> list[tuple[dict, float]]:
    """``n`` uniformly random parameter sets with their observed values (for latency runs).

    Real tasks get a random value instead of a cross-validation run: the time to suggest does
    not depend on where the values came from, and 1000 fits would take minutes.
    """
    rng = np.random.default_rng(seed + 7919)
    out = []
    for _ in range(n):
        params = _space.sample_random(task.search_space, rng)
        value = task.observe(params, rng) if task.synthetic else float(rng.uniform(0, 1))
        out.append((params, value))
    return out


def _is_no_more_trials(err: BaseException) -> bool:
    return type(err).__name__ == "NoMoreTrialError"


def _plain(obj: Any) -> Any:
    """Parameters as JSON types (what a trial would receive over the wire)."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))


# ------------------------------------------------------------------------------- NNI
class NniTunerRunner(Runner):
    """An NNI tuner, by registered name (``nni.runtime.registry``) or by factory.

    Args:
        name: the builtin name (``TPE``), a class path (``package.module:Class``), or a label
            when ``factory`` is given.
        class_args: classArgs for the constructor. ``optimize_mode='minimize'`` and
            ``seed=<run seed>`` are added when the constructor takes them; the global
            ``random`` and ``numpy.random`` generators are seeded as well.
        factory: ``seed -> tuner``; used instead of the registry (e.g. a test's tuner).
    """

    def __init__(self, name: str, class_args: dict | None = None,
                 factory: Callable[[int], Any] | None = None):
        self.name = name  # the label in reports; may gain the classArgs (make_runner)
        self.tuner_ref = name  # what is loaded: a registered name or ``module:Class``
        self.class_args = dict(class_args or {})
        self.factory = factory
        if factory is None and ":" not in name:
            from nni.runtime import registry

            try:
                registry.get_entry("tuner", name)
            except KeyError as err:
                raise ValueError(f"--tuners: {err}; peers: {', '.join(PEER_NAMES)}") from None

    def make_tuner(self, seed: int) -> Any:
        random.seed(seed)
        np.random.seed(seed % 2 ** 32)
        if self.factory is not None:
            return self.factory(seed)
        from nni.runtime import registry

        if ":" in self.tuner_ref:
            cls = registry.import_object(self.tuner_ref)
        else:
            cls = registry.load_class("tuner", self.tuner_ref)
        params = inspect.signature(cls).parameters
        kwargs = dict(self.class_args)
        for key, value in _IMPLIED_CLASS_ARGS.get(self.tuner_ref, {}).items():
            if key in params:
                kwargs.setdefault(key, value)
        if "optimize_mode" in params:
            kwargs.setdefault("optimize_mode", "minimize")
        if "seed" in params:
            kwargs.setdefault("seed", seed)
        return cls(**kwargs)

    def unsupported(self, task: Task) -> str | None:
        """The tuner's own ``update_search_space`` error for ``task``'s space (e.g. GPTuner on a
        nested choice), or ``None`` when it accepts the space."""
        tuner = self.make_tuner(0)
        try:
            tuner.update_search_space(task.search_space)
        except ValueError as err:  # the documented way a tuner rejects a space
            return str(err).splitlines()[0] if str(err) else type(err).__name__
        return None

    def optimize(self, task: Task, trials: int, seed: int) -> History:
        rng = np.random.default_rng(seed)
        tuner = self.make_tuner(seed)
        hist = History()
        start = time.perf_counter()
        tuner.update_search_space(task.search_space)
        spent = time.perf_counter() - start
        for pid in range(trials):
            start = time.perf_counter()
            try:
                params = tuner.generate_parameters(pid)
            except Exception as err:  # noqa: BLE001 - NoMoreTrialError lives in core
                if _is_no_more_trials(err):
                    break
                raise
            spent += time.perf_counter() - start
            params = _plain(params)
            observed = task.observe(params, rng)
            hist.observed.append(observed)
            hist.values.append(task.evaluate(params) if task.noise_sd else observed)
            start = time.perf_counter()
            tuner.receive_trial_result(pid, params, observed)
            if hasattr(tuner, "trial_end"):
                tuner.trial_end(pid, True)
            spent += time.perf_counter() - start
        hist.tuner_seconds = spent
        return hist

    def suggestion_latency(self, task: Task, n_obs: int, seed: int, repeats: int = 3) -> float:
        tuner = self.make_tuner(seed)
        tuner.update_search_space(task.search_space)
        data = random_observations(task, n_obs, seed)
        if _overrides(tuner, "import_data"):  # the documented warm-start path
            tuner.import_data([{"parameter": p, "value": v} for p, v in data])
        else:
            for pid, (p, v) in enumerate(data):
                tuner.receive_trial_result(pid, p, v)
        times = []
        for k in range(repeats):
            start = time.perf_counter()
            tuner.generate_parameters(n_obs + k)
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def _overrides(obj: Any, method: str) -> bool:
    try:
        from nni.tuner import Tuner
    except ImportError:
        return hasattr(obj, method)
    mine = getattr(type(obj), method, None)
    return mine is not None and mine is not getattr(Tuner, method, None)


# ----------------------------------------------------------------------------- Optuna
class OptunaRunner(Runner):
    """Optuna's ``TPESampler`` or ``RandomSampler`` (library defaults), driven by ask/tell."""

    def __init__(self, sampler: str = "tpe"):
        if sampler not in ("tpe", "random"):
            raise ValueError(f"optuna sampler must be tpe or random, got {sampler!r}")
        self.sampler = sampler
        self.name = f"optuna-{sampler}"

    def _study(self, seed: int):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        sampler = (optuna.samplers.TPESampler(seed=seed) if self.sampler == "tpe"
                   else optuna.samplers.RandomSampler(seed=seed))
        return optuna.create_study(direction="minimize", sampler=sampler)

    def optimize(self, task: Task, trials: int, seed: int) -> History:
        rng = np.random.default_rng(seed)
        study = self._study(seed)
        hist = History()
        for _ in range(trials):
            start = time.perf_counter()
            trial = study.ask()
            params = _space.suggest_optuna(trial, task.search_space)
            hist.tuner_seconds += time.perf_counter() - start
            observed = task.observe(params, rng)
            hist.observed.append(observed)
            hist.values.append(task.evaluate(params) if task.noise_sd else observed)
            start = time.perf_counter()
            study.tell(trial, observed)
            hist.tuner_seconds += time.perf_counter() - start
        return hist

    def suggestion_latency(self, task: Task, n_obs: int, seed: int, repeats: int = 3) -> float:
        import optuna

        study = self._study(seed)
        frozen = []
        for p, v in random_observations(task, n_obs, seed):
            dists, values = _space.optuna_distributions(task.search_space, p)
            frozen.append(optuna.trial.create_trial(params=values, distributions=dists, value=v))
        study.add_trials(frozen)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            trial = study.ask()
            _space.suggest_optuna(trial, task.search_space)
            times.append(time.perf_counter() - start)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)  # not an observation
        return statistics.median(times)


# --------------------------------------------------------------------------- hyperopt
class HyperoptRunner(Runner):
    """hyperopt's ``tpe.suggest`` or ``rand.suggest`` (library defaults) through ``fmin``."""

    def __init__(self, algo: str = "tpe"):
        if algo not in ("tpe", "random"):
            raise ValueError(f"hyperopt algorithm must be tpe or random, got {algo!r}")
        self.algo = algo
        self.name = f"hyperopt-{algo}"

    def _suggest(self):
        from hyperopt import rand, tpe

        return tpe.suggest if self.algo == "tpe" else rand.suggest

    def optimize(self, task: Task, trials: int, seed: int) -> History:
        from hyperopt import STATUS_OK, Trials, fmin

        rng = np.random.default_rng(seed)
        hist = History()
        objective_seconds = 0.0

        def fn(sample):
            nonlocal objective_seconds
            start = time.perf_counter()
            params = _space.from_hyperopt(task.search_space, sample)
            observed = task.observe(params, rng)
            hist.observed.append(observed)
            hist.values.append(task.evaluate(params) if task.noise_sd else observed)
            objective_seconds += time.perf_counter() - start
            return {"loss": observed, "status": STATUS_OK}

        start = time.perf_counter()
        fmin(fn, _space.to_hyperopt(task.search_space), algo=self._suggest(), max_evals=trials,
             trials=Trials(), rstate=np.random.default_rng(seed), show_progressbar=False)
        hist.tuner_seconds = time.perf_counter() - start - objective_seconds
        return hist

    def suggestion_latency(self, task: Task, n_obs: int, seed: int, repeats: int = 3) -> float:
        from hyperopt import STATUS_OK, Trials, fmin, rand
        from hyperopt.base import Domain

        data = iter(random_observations(task, n_obs, seed))
        hspace = _space.to_hyperopt(task.search_space)
        trials = Trials()

        def fn(_sample):  # the random observations: hyperopt's own random draws, task values
            return {"loss": next(data)[1], "status": STATUS_OK}

        fmin(fn, hspace, algo=rand.suggest, max_evals=n_obs, trials=trials,
             rstate=np.random.default_rng(seed), show_progressbar=False)
        domain = Domain(fn, hspace)
        suggest = self._suggest()
        times = []
        for k in range(repeats):
            ids = trials.new_trial_ids(1)
            start = time.perf_counter()
            suggest(ids, domain, trials, seed + k)
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def make_runner(spec: str | Runner) -> Runner:
    """A runner from a command-line name: a peer (``optuna-tpe``), or an NNI tuner — a
    registered name or a class path ``package.module:Class`` — with optional JSON classArgs
    after a colon (``Evolution:{"population_size": 30}``)."""
    if isinstance(spec, Runner):
        return spec
    lower = spec.lower()
    if lower in ("optuna-tpe", "optuna-random"):
        return OptunaRunner(lower.split("-", 1)[1])
    if lower in ("hyperopt-tpe", "hyperopt-random"):
        return HyperoptRunner(lower.split("-", 1)[1])
    cut = spec.find(":{")
    name, sep, args = (spec[:cut], ":", spec[cut + 1:]) if cut >= 0 else (spec, "", "")
    class_args = {}
    if sep:
        try:
            class_args = json.loads(args)
        except json.JSONDecodeError:
            raise ValueError(f"--tuners: classArgs of {name!r} must be a JSON object, got {args!r}") from None
        if not isinstance(class_args, dict):
            raise ValueError(f"--tuners: classArgs of {name!r} must be a JSON object, got {args!r}")
    runner = NniTunerRunner(name, class_args)
    if class_args:
        runner.name = spec
    return runner
