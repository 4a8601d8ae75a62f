"""Benchmark functions for tuner tests, and a loop that lets a tuner minimise one in-process."""
from __future__ import annotations

import math
from typing import Any, Callable

BRANIN_SPACE = {"x1": {"_type": "uniform", "_value": [-5, 10]}, "x2": {"_type": "uniform", "_value": [0, 15]}}


def branin(params: dict) -> float:
    """The Branin function on ``BRANIN_SPACE``'s keys; its minimum is 0.397887 (at three points)."""
    x1, x2 = params["x1"], params["x2"]
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def minimize_with(tuner: Any, space: dict, objective: Callable[[dict], float], n: int) -> tuple[float, list[dict]]:
    """Set ``space``, then ``n`` times: generate, evaluate ``objective``, report, end the trial.

    Trials run one at a time, parameter ids ``0..n-1``. Returns the lowest value seen and the
    parameters in the order they were generated.
    """
    tuner.update_search_space(space)
    best, tried = math.inf, []
    for i in range(n):
        params = tuner.generate_parameters(i)
        tried.append(params)
        value = objective(params)
        best = min(best, value)
        tuner.receive_trial_result(i, params, value)
        tuner.trial_end(i, True)
    return best, tried
