"""NNI search spaces: validation, random sampling, and the same space for Optuna and hyperopt.

A search space is NNI's JSON object (``{"name": {"_type": ..., "_value": [...]}}``); a nested
``choice`` has dict options that carry ``_name`` (spec hpo.md §3.3).  A parameter set is what
an NNI tuner returns: ``{"name": value}``, where a nested choice's value is the chosen branch
dict with ``_name`` kept and its own parameters filled in.

The converters here express one NNI space for the two peer libraries so that every tuner of
the benchmark searches exactly the same domain, and both return parameter sets in NNI's format:

* :func:`suggest_optuna` samples a space through an Optuna ``Trial`` (define-by-run, so the
  branch parameters of a nested choice are only suggested when their branch is chosen);
* :func:`to_hyperopt` builds the ``hp.*`` expression; :func:`from_hyperopt` finishes a sample
  the NNI way (clipping of the ``q`` types, plain Python numbers).

Optuna parameter and hyperopt label names are the parameter's path joined by ``/``
(``model/poly/degree``), so names inside different branches never collide.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import optuna

TYPES = (
    "choice", "randint", "uniform", "quniform", "loguniform", "qloguniform",
    "normal", "qnormal", "lognormal", "qlognormal",
)
_N_VALUES = {"randint": 2, "uniform": 2, "loguniform": 2, "normal": 2, "lognormal": 2,
             "quniform": 3, "qloguniform": 3, "qnormal": 3, "qlognormal": 3}
# Optuna has no normal distributions; the benchmark's tasks do not use them.
OPTUNA_TYPES = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform")


def _is_nested(options: list) -> bool:
    return any(isinstance(o, dict) for o in options)


def validate(space: dict, path: str = "search_space") -> None:
    """Raise a one-line ``ValueError`` naming the field when ``space`` is not a valid NNI space."""
    if not isinstance(space, dict):
        raise ValueError(f"{path}: expected a mapping of parameter name to {{_type, _value}}")
    for name, spec in space.items():
        if name == "_name":
            continue
        where = f"{path}.{name}"
        if not isinstance(spec, dict) or "_type" not in spec or "_value" not in spec:
            raise ValueError(f"{where}: expected {{\"_type\": ..., \"_value\": [...]}}")
        kind, value = spec["_type"], spec["_value"]
        if kind not in TYPES:
            raise ValueError(f"{where}._type: {kind!r} is not one of {', '.join(TYPES)}")
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"{where}._value: expected a non-empty list")
        if kind == "choice":
            if _is_nested(value):
                for i, option in enumerate(value):
                    if not isinstance(option, dict) or "_name" not in option:
                        raise ValueError(f"{where}._value[{i}]: a nested choice needs dict options with '_name'")
                    validate(option, f"{where}._value[{i}]")
            continue
        if len(value) != _N_VALUES[kind]:
            raise ValueError(f"{where}._value: {kind} takes {_N_VALUES[kind]} numbers, got {len(value)}")
        if kind in ("randint", "uniform", "quniform", "loguniform", "qloguniform") and not value[0] < value[1]:
            raise ValueError(f"{where}._value: lower bound must be below the upper bound, got {list(value)}")
        if kind in ("loguniform", "qloguniform") and value[0] <= 0:
            raise ValueError(f"{where}._value: {kind} bounds must be positive, got {list(value)}")


def _q_round(x: float, q: float, low: float | None = None, high: float | None = None) -> float:
    v = round(x / q) * q
    if low is not None:
        v = min(max(v, low), high)
    return float(v)


def sample_random(space: dict, rng: np.random.Generator) -> dict:
    """One parameter set drawn uniformly (per NNI's ``_type`` semantics) from ``space``."""
    out: dict[str, Any] = {}
    for name, spec in space.items():
        if name == "_name":
            continue
        kind, v = spec["_type"], spec["_value"]
        if kind == "choice":
            option = v[int(rng.integers(len(v)))]
            if isinstance(option, dict):
                sub = sample_random(option, rng)
                out[name] = {"_name": option["_name"], **sub}
            else:
                out[name] = option
        elif kind == "randint":
            out[name] = int(rng.integers(v[0], v[1]))
        elif kind == "uniform":
            out[name] = float(rng.uniform(v[0], v[1]))
        elif kind == "quniform":
            out[name] = _q_round(rng.uniform(v[0], v[1]), v[2], v[0], v[1])
        elif kind == "loguniform":
            out[name] = float(math.exp(rng.uniform(math.log(v[0]), math.log(v[1]))))
        elif kind == "qloguniform":
            out[name] = _q_round(math.exp(rng.uniform(math.log(v[0]), math.log(v[1]))), v[2], v[0], v[1])
        elif kind == "normal":
            out[name] = float(rng.normal(v[0], v[1]))
        elif kind == "qnormal":
            out[name] = _q_round(rng.normal(v[0], v[1]), v[2])
        elif kind == "lognormal":
            out[name] = float(math.exp(rng.normal(v[0], v[1])))
        elif kind == "qlognormal":
            out[name] = _q_round(math.exp(rng.normal(v[0], v[1])), v[2])
        else:  # pragma: no cover - validate() rejects it
            raise ValueError(f"{name}._type: unknown type {kind!r}")
    return out


def contains(space: dict, params: dict, tol: float = 1e-9) -> bool:
    """Whether ``params`` is a parameter set of ``space`` (right keys, values in bounds)."""
    names = [n for n in space if n != "_name"]
    if set(params) - {"_name"} != set(names):
        return False
    for name in names:
        kind, v = space[name]["_type"], space[name]["_value"]
        x = params[name]
        if kind == "choice":
            if _is_nested(v):
                if not isinstance(x, dict):
                    return False
                branch = [o for o in v if o["_name"] == x.get("_name")]
                if not branch or not contains(branch[0], x, tol):
                    return False
            elif x not in v:
                return False
        elif kind == "randint":
            if int(x) != x or not v[0] <= x < v[1]:
                return False
        elif kind in ("uniform", "loguniform", "quniform", "qloguniform"):
            if not v[0] - tol <= x <= v[1] + tol:
                return False
            if kind.startswith("q") and abs(x / v[2] - round(x / v[2])) > 1e-6 and x not in (v[0], v[1]):
                return False
        elif kind in ("lognormal", "qlognormal") and x < 0:
            return False
    return True


# --------------------------------------------------------------------------------- Optuna
def _optuna_choice_values(options: list) -> list:
    # Optuna stores categorical choices as None/bool/int/float/str; other options go by index.
    if all(o is None or isinstance(o, (bool, int, float, str)) for o in options):
        return list(options)
    return list(range(len(options)))


def suggest_optuna(trial: "optuna.trial.BaseTrial", space: dict, prefix: str = "") -> dict:
    """Sample ``space`` through an Optuna trial; returns the parameter set in NNI's format.

    Nested choices become a ``suggest_categorical`` over the branch ``_name``s followed by the
    chosen branch's own suggestions (conditional parameters).
    """
    out: dict[str, Any] = {}
    for name, spec in space.items():
        if name == "_name":
            continue
        kind, v = spec["_type"], spec["_value"]
        key = prefix + name
        if kind == "choice":
            if _is_nested(v):
                names = [o["_name"] for o in v]
                chosen = trial.suggest_categorical(key, names)
                option = v[names.index(chosen)]
                out[name] = {"_name": chosen, **suggest_optuna(trial, option, f"{key}/{chosen}/")}
            else:
                values = _optuna_choice_values(v)
                picked = trial.suggest_categorical(key, values)
                out[name] = picked if values == list(v) else v[picked]
        elif kind == "randint":
            out[name] = int(trial.suggest_int(key, int(v[0]), int(v[1]) - 1))
        elif kind == "uniform":
            out[name] = float(trial.suggest_float(key, v[0], v[1]))
        elif kind == "loguniform":
            out[name] = float(trial.suggest_float(key, v[0], v[1], log=True))
        elif kind == "quniform":
            low, high, q = v
            aligned = _is_multiple(low, q) and _is_multiple(high - low, q)
            if aligned:  # NNI's grid {low, low+q, ..., high} is Optuna's stepped float
                out[name] = _q_round(trial.suggest_float(key, low, high, step=q), q, low, high)
            else:
                out[name] = _q_round(trial.suggest_float(key, low, high), q, low, high)
        elif kind == "qloguniform":
            low, high, q = v
            out[name] = _q_round(trial.suggest_float(key, low, high, log=True), q, low, high)
        else:
            raise ValueError(
                f"search_space.{key}._type: {kind!r} has no Optuna distribution; "
                f"supported: {', '.join(OPTUNA_TYPES)}"
            )
    return out


def _is_multiple(x: float, q: float) -> bool:
    return abs(x / q - round(x / q)) < 1e-9


def optuna_distributions(space: dict, params: dict, prefix: str = "") -> tuple[dict, dict]:
    """The Optuna ``{name: distribution}`` and ``{name: internal value}`` of an NNI parameter set.

    Used to add observations that Optuna did not suggest (``study.add_trial``).
    Returns ``(distributions, values)``.
    """
    import optuna.distributions as od

    dists: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for name, spec in space.items():
        if name == "_name":
            continue
        kind, v = spec["_type"], spec["_value"]
        key = prefix + name
        x = params[name]
        if kind == "choice":
            if _is_nested(v):
                names = [o["_name"] for o in v]
                dists[key] = od.CategoricalDistribution(names)
                values[key] = x["_name"]
                d, vals = optuna_distributions(v[names.index(x["_name"])], x, f"{key}/{x['_name']}/")
                dists.update(d)
                values.update(vals)
            else:
                choices = _optuna_choice_values(v)
                dists[key] = od.CategoricalDistribution(choices)
                values[key] = x if list(choices) == list(v) else v.index(x)
        elif kind == "randint":
            dists[key] = od.IntDistribution(int(v[0]), int(v[1]) - 1)
            values[key] = int(x)
        elif kind == "uniform":
            dists[key] = od.FloatDistribution(v[0], v[1])
            values[key] = float(x)
        elif kind == "loguniform" or kind == "qloguniform":
            dists[key] = od.FloatDistribution(v[0], v[1], log=True)
            values[key] = float(x)
        elif kind == "quniform":
            low, high, q = v
            if _is_multiple(low, q) and _is_multiple(high - low, q):
                dists[key] = od.FloatDistribution(low, high, step=q)
            else:
                dists[key] = od.FloatDistribution(low, high)
            values[key] = float(x)
        else:
            raise ValueError(f"search_space.{key}._type: {kind!r} has no Optuna distribution")
    return dists, values


# ------------------------------------------------------------------------------- hyperopt
def to_hyperopt(space: dict) -> dict:
    """The hyperopt ``hp.*`` expression of ``space`` (a dict; nested choices as ``hp.choice``):
    nni-hpo's own ``json2space``, so both sides of the comparison see one conversion."""
    from nni.algorithms.hpo.hyperopt_tuner import json2space

    return json2space(space)


def from_hyperopt(space: dict, sample: dict) -> dict:
    """Finish a hyperopt sample the NNI way: ``q`` types clipped to their bounds, plain numbers."""
    out: dict[str, Any] = {}
    for name, spec in space.items():
        if name == "_name":
            continue
        kind, v = spec["_type"], spec["_value"]
        x = sample[name]
        if kind == "choice":
            if isinstance(x, dict):
                branch = next(o for o in v if isinstance(o, dict) and o["_name"] == x["_name"])
                out[name] = {"_name": x["_name"], **from_hyperopt(branch, x)}
            else:
                out[name] = x.item() if isinstance(x, np.generic) else x
        elif kind == "randint":
            out[name] = int(x)
        elif kind in ("quniform", "qloguniform"):
            out[name] = float(min(max(float(x), v[0]), v[1]))
        else:
            out[name] = float(x)
    return out
