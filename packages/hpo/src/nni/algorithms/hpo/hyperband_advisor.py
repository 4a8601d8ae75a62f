"""Hyperband advisor (builtin advisor ``Hyperband``).

Hyperband (Li et al., "Hyperband: A Novel Bandit-Based Approach to Hyperparameter
Optimization", JMLR 2018) runs *brackets* of successive halving. Bracket ``s`` starts ``n``
random configurations with budget ``r``; after each round the best ``1/eta`` of them run
again with ``eta`` times the budget, until one configuration runs with the maximum budget
``R``. With ``s_max = floor(log_eta(R))``, bracket ``s`` (``s = s_max, ..., 0``) has::

    n = ceil((s_max + 1) / (s + 1) * eta**s)     r = R * eta**-s
    round i (i = 0 .. s):  n_i = floor(n * eta**-i)     r_i = r * eta**i

Hyperband is an *advisor*: it both generates configurations and decides, from their
results, which ones continue. It runs on :class:`nni.runtime.msg_dispatcher_base.MsgDispatcherBase`;
no tuner or assessor may be configured next to it.

Trial contract: the parameters a trial receives carry one more key, ``TRIAL_BUDGET``: the
budget ``r_i`` of its round, an ``int`` (``floor(R * eta**(i - s))``, at least 1), e.g. the
number of epochs or mini-batches to run. The trial reports intermediate results and a final
result, each a number or a dict with a numeric ``default`` key.

Example config::

    advisor:
      name: Hyperband
      classArgs:
        R: 100
        eta: 3
        optimize_mode: maximize
        exec_mode: parallelism

Search-space support (configurations are sampled uniformly from the search space's priors,
so every type is supported):

=====================  =========
type                   Hyperband
=====================  =========
choice                 yes
choice (nested)        yes
randint                yes
uniform                yes
quniform               yes
loguniform             yes
qloguniform            yes
normal                 yes
qnormal                yes
lognormal              yes
qlognormal             yes
=====================  =========

Notes on the docs:

* The docs' worked example for ``R = 81, eta = 3`` lists brackets with ``n = 81, 27, 9, 6, 5``
  configurations (s = 4 .. 0). The formula above, which the docs name by its ingredients
  and which the Hyperband paper uses, gives ``n = 81, 34, 15, 8, 5``: the example's ``s = 3,
  2, 1`` columns (27, 9, 6) are not produced by any ``(s_max + 1) / (s + 1) * eta**s``
  rounding. This implementation follows the formula; the budgets ``r`` (1, 3, 9, 27, 81) and
  the number of rounds per bracket (``s + 1``) agree with the example.
* The docs' table (``s = 1``: 6 then 2 configurations) also implies ``n_i = floor(n / eta**i)``
  rounds; that rule is used here.
"""
from __future__ import annotations

import json
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nni.runtime.msg_dispatcher_base import MetricType, MsgDispatcherBase
from nni.runtime.protocol import CommandType, pack_parameter
from nni.utils import ClassArgsValidator, OptimizeMode, extract_scalar_reward

from ._space import FlatSpace
from ._tuner_support import ALL_TYPES, check_search_space

__all__ = [
    "Hyperband",
    "HyperbandClassArgsValidator",
    "TRIAL_BUDGET_KEY",
    "hyperband_s_max",
    "bracket_rounds",
    "hyperband_brackets",
]

_logger = logging.getLogger(__name__)

TRIAL_BUDGET_KEY = "TRIAL_BUDGET"
"""The key the budget of a trial is sent under, next to the sampled hyper-parameters."""

EXEC_MODES = ("serial", "parallelism")


# ---------------------------------------------------------------------------------------------
# bracket arithmetic


def hyperband_s_max(R: int, eta: int) -> int:
    """``floor(log_eta(R))``, computed exactly on integers (``log(81, 3)`` is ``3.9999...``)."""
    if R < 1 or eta < 2:
        raise ValueError(f"Hyperband needs R >= 1 and eta >= 2, got R={R!r}, eta={eta!r}")
    s = 0
    while eta ** (s + 1) <= R:
        s += 1
    return s


def bracket_rounds(R: int, eta: int, s: int) -> list[tuple[int, int]]:
    """The rounds ``[(n_i, r_i), ...]`` of bracket ``s`` (``i = 0 .. s``).

    ``n = ceil((s_max + 1) / (s + 1) * eta**s)``, ``n_i = floor(n / eta**i)``,
    ``r_i = floor(R * eta**(i - s))`` (exact integer arithmetic; ``r_i >= 1``).

    Example:
        >>> bracket_rounds(81, 3, 3)
        [(34, 3), (11, 9), (3, 27), (1, 81)]
    """
    s_max = hyperband_s_max(R, eta)
    if not 0 <= s <= s_max:
        raise ValueError(f"bracket s must be in [0, {s_max}] for R={R}, eta={eta}, got {s}")
    n = -((-(s_max + 1) * eta**s) // (s + 1))  # ceil with integers only
    return [(n // eta**i, (R * eta**i) // eta**s) for i in range(s + 1)]


def hyperband_brackets(R: int, eta: int) -> dict[int, list[tuple[int, int]]]:
    """All brackets of one Hyperband execution, ``{s: bracket_rounds(R, eta, s)}`` for
    ``s = s_max .. 0`` (in that order).

    Example:
        >>> [rounds[0] for rounds in hyperband_brackets(81, 3).values()]
        [(81, 1), (34, 3), (15, 9), (8, 27), (5, 81)]
    """
    s_max = hyperband_s_max(R, eta)
    return {s: bracket_rounds(R, eta, s) for s in range(s_max, -1, -1)}


# ---------------------------------------------------------------------------------------------
# classArgs


class HyperbandClassArgsValidator(ClassArgsValidator):
    """``optimize_mode`` (maximize | minimize), ``R`` (int >= 1), ``eta`` (int >= 2),
    ``exec_mode`` (serial | parallelism); all optional."""

    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(
            kwargs,
            optional={
                "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
                "R": self.range("R", int, 1, None),
                "eta": self.range("eta", int, 2, None),
                "exec_mode": self.choices("exec_mode", *EXEC_MODES),
            },
        )


# ---------------------------------------------------------------------------------------------
# state


@dataclass
class _TrialRun:
    """One configuration run with one budget (one trial)."""

    parameter_id: int
    config_id: int  # the configuration's index inside its bracket (kept across rounds)
    params: dict
    budget: int
    bracket: "_Bracket"
    round_index: int
    final: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    ended: bool = False

    @property
    def parameters(self) -> dict:
        """What the trial receives: the configuration plus ``TRIAL_BUDGET``."""
        return {**self.params, TRIAL_BUDGET_KEY: self.budget}

    def score(self) -> float | None:
        """The result that ranks this run (``None``: no usable result).

        The final result when reported; otherwise the intermediate result at the budget's
        step (sequence ``budget - 1``); otherwise the latest intermediate result.
        """
        if self.final is not None:
            return self.final
        if self.budget - 1 in self.intermediate:
            return self.intermediate[self.budget - 1]
        if self.intermediate:
            return self.intermediate[max(self.intermediate)]
        return None


class _Bracket:
    """Successive halving over ``rounds`` for one bracket ``s`` of Hyperband iteration ``iteration``."""

    def __init__(self, iteration: int, s: int, rounds: list[tuple[int, int]], mode: OptimizeMode):
        self.iteration = iteration
        self.s = s
        self.rounds = rounds
        self.mode = mode
        self.round_index = 0
        self.runs: list[_TrialRun] = []  # the current round's runs
        self.done = False

    def __repr__(self) -> str:
        return f"<bracket {self.iteration}-{self.s} round {self.round_index}/{len(self.rounds)}>"

    def round_finished(self) -> bool:
        return all(run.ended for run in self.runs)

    def select_survivors(self) -> list[_TrialRun]:
        """The best ``n_{i+1}`` runs of the finished round (runs without a result never survive)."""
        n_next = self.rounds[self.round_index + 1][0]
        scored = [(run.score(), run) for run in self.runs]
        scored = [(score, run) for score, run in scored if score is not None and not math.isnan(score)]
        sign = -1.0 if self.mode is OptimizeMode.Maximize else 1.0
        scored.sort(key=lambda item: (sign * item[0], item[1].parameter_id))
        return [run for _score, run in scored[:n_next]]


# ---------------------------------------------------------------------------------------------
# the advisor


class Hyperband(MsgDispatcherBase):
    """Hyperband as an advisor: random configurations, successive halving inside brackets.

    Args:
        R: The maximum budget of one trial (epochs, mini-batches, ...). Every trial receives
            its budget as ``TRIAL_BUDGET``.
        eta: Each round keeps the best ``1/eta`` of its configurations, with ``eta`` times
            the budget; ``(eta - 1) / eta`` are discarded.
        optimize_mode: ``'maximize'`` or ``'minimize'`` the reported metric.
        exec_mode: ``'parallelism'``: whenever a trial is requested and no promoted
            configuration is waiting, the next bracket starts at once, so several brackets
            can be unfinished; after bracket 0 a new Hyperband iteration (fresh random
            configurations) begins, so the experiment's trial number or duration limit ends
            the run. ``'serial'``: the original algorithm; the next bracket starts only
            after the current one is done (a request that cannot be served yet is kept and
            served as soon as a round's survivors are known), and after the ``s_max + 1``
            brackets of one execution the advisor answers requests with ``NoMoreTrialJobs``.

    How rounds advance: a round is finished when every trial of it has ended (any end
    status). Its runs are ranked by their final result, else by the intermediate result
    at the budget's step, else by their latest intermediate result; runs with no result
    (or NaN) are never promoted. The best ``n_{i+1}`` are started again, as new trials
    with new parameter ids, with budget ``r_{i+1}``. Promoted configurations are served
    before new brackets start.

    Parameter ids are integers ``0, 1, 2, ...`` in the order the trials are generated.
    """

    class_args_validator = HyperbandClassArgsValidator

    def __init__(self, R: int = 60, eta: int = 3, optimize_mode: str = "maximize", exec_mode: str = "parallelism"):
        HyperbandClassArgsValidator().validate_class_args(
            R=R, eta=eta, optimize_mode=optimize_mode, exec_mode=exec_mode
        )
        super().__init__()
        self.R = R
        self.eta = eta
        self.optimize_mode = OptimizeMode(optimize_mode)
        self.exec_mode = exec_mode
        self.s_max = hyperband_s_max(R, eta)
        self.schedule = hyperband_brackets(R, eta)
        self.rng = np.random.default_rng()

        self.space: FlatSpace | None = None
        self.brackets: list[_Bracket] = []
        self.runs: dict[int, _TrialRun] = {}
        self.best_parameters: dict | None = None
        self.best_value: float | None = None
        self._ready: deque[_TrialRun] = deque()
        self._credit = 0
        self._next_parameter_id = 0
        self._next_s = self.s_max
        self._iteration = 0
        self._exhausted = False
        self._trial_to_parameter: dict[str, int] = {}

    # -- MsgDispatcherBase handlers ----------------------------------------------------------

    def handle_initialize(self, data: dict) -> None:
        """Set the search space and answer ``Initialized``."""
        self.handle_update_search_space(data)
        self._send(CommandType.Initialized, "")

    def handle_update_search_space(self, data: dict) -> None:
        """Check the search space (every type, nested choices too) and sample from it from now on."""
        check_search_space(data, "Hyperband", ALL_TYPES, nested=True)
        if TRIAL_BUDGET_KEY in data:
            raise ValueError(
                f"search space parameter {TRIAL_BUDGET_KEY!r}: the name is reserved by Hyperband "
                "for the trial budget; rename it"
            )
        self.space = FlatSpace(data)

    def handle_request_trial_jobs(self, data: int) -> None:
        """Send ``data`` trials now, or as soon as configurations are ready (serial mode)."""
        self._credit += int(data)
        self._serve()

    def handle_report_metric_data(self, data: dict) -> None:
        """Record an intermediate or final result; answer a multi-phase parameter request."""
        kind = data.get("type")
        if kind == MetricType.REQUEST_PARAMETER:
            self._send_phase_parameter(data)
            return
        if kind not in (MetricType.PERIODICAL, MetricType.FINAL):
            raise ValueError(
                f"Hyperband: metric type {kind!r} is not supported; expected PERIODICAL, FINAL or REQUEST_PARAMETER"
            )
        run = self._run_of(data)
        if run is None:
            _logger.debug("metric of a trial Hyperband did not generate: %s", data)
            return
        value = _load_value(data.get("value"))
        score = extract_scalar_reward(value)
        if kind == MetricType.FINAL:
            run.final = score
            self._update_best(run.parameters, score)
        else:
            run.intermediate[int(data.get("sequence", len(run.intermediate)))] = score

    def handle_trial_end(self, data: dict) -> None:
        """Mark the trial's run ended; when its round is complete, promote the survivors."""
        run = self._run_of(data)
        if run is None:
            _logger.debug("end of a trial Hyperband did not generate: %s", data)
            return
        if run.ended:
            return
        run.ended = True
        bracket = run.bracket
        if run.round_index == bracket.round_index and bracket.round_finished():
            self._advance(bracket)
        self._serve()

    def handle_import_data(self, data: list) -> None:
        """Resumed or imported results: they update :attr:`best_parameters` only.

        A bracket's successive halving compares configurations run with the same budget
        inside the same bracket, which imported results were not, so they do not seed brackets.
        """
        for record in data or []:
            if not isinstance(record, dict) or "parameter" not in record or "value" not in record:
                raise ValueError(f"Hyperband import_data: each record needs 'parameter' and 'value', got {record!r}")
            self._update_best(record["parameter"], extract_scalar_reward(_load_value(record["value"])))
        _logger.info("Hyperband imported %d results", len(data or []))

    def handle_add_customized_trial(self, data: Any) -> None:
        """Start a hand-made trial outside the brackets (its results do not affect them)."""
        parameter_id = self._new_parameter_id()
        self._send(CommandType.NewTrialJob, pack_parameter(parameter_id, data, parameter_source="customized"))

    # -- scheduling --------------------------------------------------------------------------

    def _serve(self) -> None:
        while self._credit > 0:
            run = self._next_run()
            if run is None:
                break
            self._credit -= 1
            self._send(CommandType.NewTrialJob, pack_parameter(run.parameter_id, run.parameters))
        if self._exhausted and self._credit > 0:
            self._credit = 0
            self._send(CommandType.NoMoreTrialJobs, "")

    def _next_run(self) -> _TrialRun | None:
        if not self._ready:
            if self.exec_mode == "serial":
                current = self.brackets[-1] if self.brackets else None
                if current is not None and not current.done:
                    return None  # wait for the current bracket's round to finish
                if current is not None and current.s == 0:
                    self._exhausted = True
                    return None
            self._start_bracket()
        return self._ready.popleft() if self._ready else None

    def _start_bracket(self) -> None:
        if self.space is None:
            raise RuntimeError("Hyperband: trials were requested before the search space was set (handle_initialize)")
        s = self._next_s
        bracket = _Bracket(self._iteration, s, self.schedule[s], self.optimize_mode)
        self.brackets.append(bracket)
        n0 = bracket.rounds[0][0]
        rows = self._new_rows(n0)
        configs = [(k, self.space.to_parameters(row)) for k, row in enumerate(rows)]
        self._start_round(bracket, configs)
        _logger.info("Hyperband iteration %d: bracket s=%d starts with %d configurations", self._iteration, s, n0)
        if s == 0:
            self._next_s = self.s_max
            self._iteration += 1
        else:
            self._next_s = s - 1

    def _new_rows(self, count: int) -> np.ndarray:
        """The first-round configurations of a new bracket, as :class:`FlatSpace` rows: random
        draws from the search space (BOHB overrides this with its model-based sampling)."""
        return self.space.sample(self.rng, count)

    def _start_round(self, bracket: _Bracket, configs: list[tuple[int, dict]]) -> None:
        budget = bracket.rounds[bracket.round_index][1]
        bracket.runs = []
        for config_id, params in configs:
            run = _TrialRun(self._new_parameter_id(), config_id, params, budget, bracket, bracket.round_index)
            bracket.runs.append(run)
            self.runs[run.parameter_id] = run
            self._ready.append(run)

    def _advance(self, bracket: _Bracket) -> None:
        """The current round of ``bracket`` is finished: start the next one, or close the bracket."""
        if bracket.round_index + 1 >= len(bracket.rounds):
            bracket.done = True
            _logger.info("Hyperband bracket %d-%d done", bracket.iteration, bracket.s)
            return
        survivors = bracket.select_survivors()
        if not survivors:
            bracket.done = True
            _logger.warning("Hyperband bracket %d-%d: no trial of round %d reported a result; bracket closed",
                            bracket.iteration, bracket.s, bracket.round_index)
            return
        bracket.round_index += 1
        self._start_round(bracket, [(run.config_id, run.params) for run in survivors])

    # -- helpers -----------------------------------------------------------------------------

    def _send(self, command: CommandType, data: str) -> None:
        self.send(command, data)

    def _new_parameter_id(self) -> int:
        parameter_id = self._next_parameter_id
        self._next_parameter_id += 1
        return parameter_id

    def _run_of(self, data: dict) -> _TrialRun | None:
        trial_job_id = data.get("trial_job_id")
        parameter_id = data.get("parameter_id")
        if parameter_id is None and data.get("hyper_params") is not None:
            hyper_params = data["hyper_params"]
            if isinstance(hyper_params, str):
                hyper_params = json.loads(hyper_params)
            parameter_id = hyper_params.get("parameter_id") if isinstance(hyper_params, dict) else None
        if parameter_id is None and trial_job_id is not None:
            parameter_id = self._trial_to_parameter.get(trial_job_id)
        try:
            parameter_id = int(parameter_id)
        except (TypeError, ValueError):
            return None
        if trial_job_id is not None:
            self._trial_to_parameter[trial_job_id] = parameter_id
        return self.runs.get(parameter_id)

    def _send_phase_parameter(self, data: dict) -> None:
        run = self._next_run()
        if run is None:
            payload = pack_parameter(None, None, parameter_index=data.get("parameter_index", 0),
                                     trial_job_id=data.get("trial_job_id"))
        else:
            payload = pack_parameter(run.parameter_id, run.parameters, parameter_index=data.get("parameter_index", 0),
                                     trial_job_id=data.get("trial_job_id"))
            if data.get("trial_job_id") is not None:
                self._trial_to_parameter[data["trial_job_id"]] = run.parameter_id
        self._send(CommandType.SendTrialJobParameter, payload)

    def _update_best(self, parameters: Any, value: float) -> None:
        if math.isnan(value):
            return
        better = (
            self.best_value is None
            or (self.optimize_mode is OptimizeMode.Maximize and value > self.best_value)
            or (self.optimize_mode is OptimizeMode.Minimize and value < self.best_value)
        )
        if better:
            self.best_value = value
            self.best_parameters = parameters


def _load_value(value: Any) -> Any:
    """Metric values travel as JSON strings; tolerate already-decoded ones."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(
                f"metric value {value!r} is not valid JSON; report a number or a dict with a numeric 'default' key"
            ) from None
    return value
