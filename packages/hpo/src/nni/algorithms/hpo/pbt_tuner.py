"""Population Based Training tuner (builtin name ``PBTTuner``), after Jaderberg et al., 2017.

Example config (no assessor may be used with it)::

    tuner:
      name: PBTTuner
      classArgs:
        optimize_mode: maximize
        population_size: 10

The checkpoint-directory protocol of the docs: every configuration carries, besides the search
space's keys, ``load_checkpoint_dir`` and ``save_checkpoint_dir``. A trial loads its model from
the first (when a checkpoint is there), trains one *step* (what a step is belongs to the trial,
e.g. one epoch), saves to the second and reports its final result. Directories are
``all_checkpoint_dir/<member>/<step>``. Steps are synchronous: the ``population_size`` trials of
step ``i + 1`` are generated only when every trial of step ``i`` has ended. Between two steps
the members are ranked by their result; each of the worst ``ceil(fraction * population_size)``
(and every member without a result: failed, or no final metric) *exploits* a random member of
the best ``ceil(fraction * population_size)``: it loads that member's checkpoint and takes its
hyper-parameters, which it then *explores*: every numerical value is multiplied by a random
factor of ``factors`` (in the natural scale; clipped to the range, ``q``-rounded), a ``randint``
moves to a neighbouring integer, and each categorical (``choice``) value is re-sampled with
probability ``resample_probability`` (a nested choice that switches branch draws the new
branch's parameters from the prior). The other members continue from their own checkpoint.

Under an experiment the tuner answers requests it cannot serve yet (the next step before the
current one has ended) later: ``defers_requests`` tells the dispatcher so. The experiment ends
by its ``maxTrialNumber`` / ``maxExperimentDuration`` (a multiple of ``population_size`` trials
runs whole steps).

Decisions on what the NNI v2.5 docs leave open:

* ``factors`` (default ``(1.2, 0.8)``) is the documented argument; upstream's undocumented
  ``resample_probability`` (0.25) is accepted too, for categorical values.
* ``optimize_mode`` is optional (default ``'maximize'``, as for the other tuners).
* ``all_checkpoint_dir`` defaults to ``~/nni/checkpoint/<experiment id>`` (the docs' folder, one
  sub-folder per experiment so two experiments never share checkpoints); the id is
  ``NNI_EXP_ID``, else the name of the experiment folder the dispatcher's
  ``NNI_CHECKPOINT_DIRECTORY`` lies in, else ``standalone``.
* In step 0 ``load_checkpoint_dir`` equals ``save_checkpoint_dir`` (an empty folder): the trial
  finds no checkpoint and starts from scratch. The tuner creates the folders of every
  configuration it sends (local storage; for shared storage it tries and carries on).
* ``import_data`` replaces not-yet-sent members of step 0 by the best imported configurations
  (without checkpoints); once step 0 has begun imported data is not used.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from nni.tuner import Tuner
from nni.utils import ClassArgsError, ClassArgsValidator, NoMoreTrialError

from ._space import FlatSpace
from ._tpe_engine import deactivate, sample_prior
from ._tuner_support import ALL_TYPES, check_search_space, loss_of, parse_optimize_mode

__all__ = ["PBTTuner", "PBTClassArgsValidator", "CHECKPOINT_KEYS"]

_logger = logging.getLogger(__name__)

#: The keys PBT adds to every configuration (not search-space parameters).
CHECKPOINT_KEYS = ("load_checkpoint_dir", "save_checkpoint_dir")


def _factors_ok(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 and math.isfinite(f)
                    for f in value))


class PBTClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        if "factors" in kwargs and not _factors_ok(kwargs["factors"]):
            raise ClassArgsError(f"classArgs.factors must be a non-empty list of positive numbers, "
                                 f"e.g. [1.2, 0.8], got {kwargs['factors']!r}")
        if kwargs.get("fraction") == 0:
            raise ClassArgsError("classArgs.fraction must be a float in (0, 0.5], got 0")
        self.check(kwargs, optional={
            "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
            "all_checkpoint_dir": str,
            "population_size": self.range("population_size", int, 2, 99999),
            "factors": _factors_ok,
            "fraction": self.range("fraction", float, 0.0, 0.5),
            "resample_probability": self.range("resample_probability", float, 0.0, 1.0),
            "seed": self.range("seed", int, 0, None),
        })


def default_checkpoint_dir() -> str:
    """``~/nni/checkpoint/<experiment id>`` (see the module doc for where the id comes from)."""
    exp_id = os.environ.get("NNI_EXP_ID")
    if not exp_id and os.environ.get("NNI_CHECKPOINT_DIRECTORY"):
        exp_id = os.path.basename(os.path.dirname(os.path.abspath(os.environ["NNI_CHECKPOINT_DIRECTORY"])))
    return os.path.join(os.path.expanduser("~"), "nni", "checkpoint", exp_id or "standalone")


@dataclass(eq=False)
class _Member:
    row: np.ndarray
    load_dir: str
    save_dir: str
    parameter_id: Any = None
    loss: float = math.inf
    finished: bool = False


class PBTTuner(Tuner):
    """Population Based Training over checkpoints in ``all_checkpoint_dir``.

    Args:
        optimize_mode: ``'maximize'`` (default) or ``'minimize'`` the reported metric.
        all_checkpoint_dir: base folder of every checkpoint (shared storage for remote trials).
        population_size: trials per step (default 10).
        factors: perturbation factors of numerical values (default ``(1.2, 0.8)``).
        fraction: fraction of the population that is bottom / top (default 0.2).
        resample_probability: chance a categorical value is re-drawn when explored (0.25).
        seed: random seed (``None``: not reproducible).
    """

    class_args_validator = PBTClassArgsValidator
    supported_types = ALL_TYPES
    #: the dispatcher keeps requests that the next step cannot serve yet
    defers_requests = True

    def __init__(self, optimize_mode: str = "maximize", all_checkpoint_dir: str | None = None,
                 population_size: int = 10, factors: Any = (1.2, 0.8), fraction: float = 0.2,
                 resample_probability: float = 0.25, seed: int | None = None):
        PBTClassArgsValidator().validate_class_args(
            optimize_mode=str(getattr(optimize_mode, "value", optimize_mode)), population_size=population_size,
            factors=list(factors) if isinstance(factors, tuple) else factors, fraction=fraction,
            resample_probability=resample_probability)
        self.optimize_mode = parse_optimize_mode(optimize_mode, "PBTTuner")
        self.all_checkpoint_dir = os.path.abspath(os.path.expanduser(all_checkpoint_dir or default_checkpoint_dir()))
        self.population_size = int(population_size)
        self.factors = tuple(float(f) for f in factors)
        self.fraction = float(fraction)
        self.resample_probability = float(resample_probability)
        self.rng = np.random.default_rng(seed)
        self.space: FlatSpace | None = None
        self.step = 0
        self.population: list[_Member] = []
        self._by_id: dict[Any, _Member] = {}
        self._next = 0  # next member of the current step to send

    # ------------------------------------------------------------------ search space
    def update_search_space(self, search_space: dict) -> None:
        check_search_space(search_space, "PBTTuner", self.supported_types, nested=True)
        clash = [k for k in CHECKPOINT_KEYS if k in search_space]
        if clash:
            raise ValueError(f"search space key {clash[0]!r} is reserved by PBTTuner for the checkpoint "
                             f"folders; rename that parameter")
        self.space = FlatSpace(search_space)
        self.step = 0
        self._by_id = {}
        self._next = 0
        rows = self.space.sample(self.rng, self.population_size)
        self.population = []
        for i, row in enumerate(rows):
            save = self._dir(i, 0)
            self.population.append(_Member(row, save, save))

    def _dir(self, member: int, step: int) -> str:
        return os.path.join(self.all_checkpoint_dir, str(member), str(step))

    # ------------------------------------------------------------------ generation
    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        """The next member of the current step; :class:`nni.NoMoreTrialError` while the whole
        step is out and not finished (a dispatcher asks again after the next result)."""
        got = self.generate_multiple_parameters([parameter_id])
        if not got:
            raise NoMoreTrialError("PBTTuner: every trial of the current step is running; the next step "
                                   "starts when they have ended")
        return got[0]

    def generate_multiple_parameters(self, parameter_id_list: list, **kwargs: Any) -> list:
        """As many members of the current step as are left (a short list means "later")."""
        if self.space is None:
            raise RuntimeError("PBTTuner: update_search_space() must be called before generate_parameters()")
        out = []
        for pid in parameter_id_list:
            if self._next >= self.population_size:
                break
            member = self.population[self._next]
            self._next += 1
            member.parameter_id = pid
            self._by_id[pid] = member
            for folder in {member.load_dir, member.save_dir}:
                try:
                    os.makedirs(folder, exist_ok=True)
                except OSError as err:  # shared storage only the trials can reach
                    _logger.debug("PBTTuner: cannot create %s: %s", folder, err)
            params = self.space.to_parameters(member.row)
            params["load_checkpoint_dir"] = member.load_dir
            params["save_checkpoint_dir"] = member.save_dir
            out.append(params)
        return out

    # ------------------------------------------------------------------ results
    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        member = self._by_id.get(parameter_id)
        if member is None or member.finished:
            return
        member.loss = loss_of(value, self.optimize_mode)
        member.finished = True
        self._maybe_next_step()

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        member = self._by_id.get(parameter_id)
        if member is None or member.finished:
            return
        member.finished = True  # ended without a final result: the worst
        self._maybe_next_step()

    def _maybe_next_step(self) -> None:
        if self._next < self.population_size or not all(m.finished for m in self.population):
            return
        n = self.population_size
        cut = max(1, math.ceil(self.fraction * n))
        order = sorted(range(n), key=lambda i: self.population[i].loss)
        top = [i for i in order[:cut] if math.isfinite(self.population[i].loss)]
        bottom = set(order[n - cut:]) | {i for i in range(n) if not math.isfinite(self.population[i].loss)}
        bottom -= set(top)
        new_step = self.step + 1
        new_population = []
        for i, member in enumerate(self.population):
            if i in bottom and top:
                src = int(self.rng.choice(top))
                source = self.population[src]
                row = self.explore(source.row)
                load = source.save_dir
                _logger.info("PBTTuner step %d: member %d exploits member %d", new_step, i, src)
            else:
                row, load = member.row.copy(), member.save_dir
            new_population.append(_Member(row, load, self._dir(i, new_step)))
        self.population = new_population
        self.step = new_step
        self._next = 0
        self._by_id = {}

    # ------------------------------------------------------------------ explore
    def explore(self, row: np.ndarray) -> np.ndarray:
        """A perturbed copy of ``row`` (see the module doc)."""
        assert self.space is not None
        space = self.space
        new = row.copy()
        fresh = sample_prior(space.dims, self.rng, 1, only_active=False)[0]
        for j, dim in enumerate(space.dims):
            if np.isnan(new[j]) or j in space.constants:
                continue
            spec = space.specs[j]
            if dim.categorical:
                old = new[j]
                if self.rng.random() < self.resample_probability:
                    new[j] = fresh[j]
                elif spec.type == "randint" and dim.size > 1:
                    new[j] = float(np.clip(old + self.rng.choice([-1, 1]), 0, dim.size - 1))
                if new[j] != old:
                    for k in space.descendants(j):  # the new branch's parameters come from the prior
                        new[k] = fresh[k]
                continue
            factor = float(self.rng.choice(self.factors))
            value = new[j] + math.log(factor) if spec.log_distributed else new[j] * factor
            value = float(np.clip(value, dim.low, dim.high))
            if dim.rounder is not None:
                value = float(dim.rounder(np.array([value]))[0])
            new[j] = value
        return deactivate(space.dims, new[None, :])[0]

    # ------------------------------------------------------------------ import
    def import_data(self, data: list[dict]) -> int:
        """Seed step 0's unsent members with the best imported configurations."""
        if self.space is None or self.step > 0:
            return 0
        scored = []
        for record in data:
            try:
                params = {k: v for k, v in dict(record["parameter"]).items() if k not in CHECKPOINT_KEYS}
                scored.append((loss_of(record["value"], self.optimize_mode), self.space.from_parameters(params)))
            except (KeyError, TypeError, ValueError) as err:
                _logger.warning("PBTTuner: skipping imported record %.200r: %s", record, err)
        scored.sort(key=lambda item: item[0])
        used = 0
        for i in range(self._next, self.population_size):
            if used >= len(scored):
                break
            self.population[i].row = scored[used][1]
            used += 1
        return used
