"""Check a configuration against a raw search-space JSON (used by the contract suites).

Works from the search-space JSON itself (the ten ``_type``s of NNI's spec plus nested
``choice``), so an algorithm is checked against the spec, not against another implementation.
NNI v2.5 semantics: only a ``choice`` option that is a dict with ``_name`` is a nested space (any
other dict option is a plain value that must reach the trial unchanged), and a range whose low
equals its high (``randint [n, n]`` included) always gives that value.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

ALL_TYPES = (
    "choice", "randint", "uniform", "quniform", "loguniform",
    "qloguniform", "normal", "qnormal", "lognormal", "qlognormal",
)


class SearchSpaceMismatch(AssertionError):
    """A configuration does not fit its search space (message names the parameter)."""


def _num(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _close_le(a: float, b: float) -> bool:
    return a <= b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _in_range(v: float, low: float, high: float) -> bool:
    return _close_le(low, v) and _close_le(v, high)


def _q_multiple(v: float, q: float) -> bool:
    r = v / q
    return math.isclose(r, round(r), rel_tol=1e-9, abs_tol=1e-6)


def _same_option(value: Any, option: Any) -> bool:
    if isinstance(option, bool) or isinstance(value, bool):
        return type(option) is type(value) and option == value
    if isinstance(option, numbers.Integral):
        return isinstance(value, numbers.Integral) and value == option
    if isinstance(option, float):
        return _num(value) and value == option
    if isinstance(option, str):
        return isinstance(value, str) and value == option
    if isinstance(option, dict):
        return (isinstance(value, dict) and set(value) == set(option)
                and all(_same_option(value[k], option[k]) for k in option))
    if isinstance(option, list):
        return (isinstance(value, list) and len(value) == len(option)
                and all(_same_option(v, o) for v, o in zip(value, option)))
    return value == option


def _nested(option: Any) -> bool:
    return isinstance(option, dict) and "_name" in option


def check_value(spec: dict, value: Any, path: str) -> None:
    """Raise :class:`SearchSpaceMismatch` unless ``value`` is a possible value of ``spec``."""
    kind = spec.get("_type")
    args = spec.get("_value")

    def fail(why: str) -> None:
        raise SearchSpaceMismatch(f"{path}: {why} (got {value!r} for {kind} {args!r})")

    if kind == "choice":
        nested = [o for o in args if _nested(o)]
        if isinstance(value, dict) and "_name" in value and nested:
            name = value.get("_name")
            branch = next((o for o in nested if o.get("_name") == name), None)
            if branch is None:
                fail("nested choice value has no known '_name'")
            expected_keys = set(branch)
            if set(value) != expected_keys:
                fail(f"nested choice keys {sorted(value)} differ from the branch's {sorted(expected_keys)}")
            for key, sub in branch.items():
                if key == "_name":
                    continue
                if isinstance(sub, dict) and "_type" in sub:
                    check_value(sub, value[key], f"{path}.{key}")
                elif value[key] != sub:
                    fail(f"nested constant {key} changed")
            return
        if not any(_same_option(value, o) for o in args if not _nested(o)):
            fail("not one of the options (or not of the option's type)")
        return
    if not _num(value):
        fail("not a number")
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        fail("not finite")
    if kind == "randint":
        low, high = args[0], args[1]
        if not isinstance(value, numbers.Integral):
            fail("randint must give an int")
        if low == high:
            if value != low:
                fail("randint [n, n] must give n")
        elif not (low <= value < high):
            fail("outside [lower, upper)")
    elif kind in ("uniform", "loguniform"):
        if not _in_range(v, args[0], args[1]):
            fail("outside [low, high]")
        if kind == "loguniform" and v <= 0:
            fail("loguniform must be positive")
    elif kind in ("quniform", "qloguniform"):
        low, high, q = args
        if not _in_range(v, low, high):
            fail("outside [low, high]")
        if not (math.isclose(v, low) or math.isclose(v, high) or _q_multiple(v, q)):
            fail("not low, high or a multiple of q")
    elif kind == "normal":
        pass
    elif kind == "qnormal":
        if not _q_multiple(v, args[2]):
            fail("not a multiple of q")
    elif kind == "lognormal":
        if v <= 0:
            fail("lognormal must be positive")
    elif kind == "qlognormal":
        if v < 0 or not _q_multiple(v, args[2]):
            fail("not a non-negative multiple of q")
    else:
        fail(f"unknown _type {kind!r}")


def check_parameters(search_space: dict, params: Any) -> None:
    """Every search-space key present with a possible value, and no other key."""
    if not isinstance(params, dict):
        raise SearchSpaceMismatch(f"parameters must be a dict, got {type(params).__name__} {params!r}")
    missing = set(search_space) - set(params)
    extra = set(params) - set(search_space)
    if missing or extra:
        raise SearchSpaceMismatch(f"parameter keys differ from the search space: missing {sorted(missing)}, extra {sorted(extra)}")
    for key, spec in search_space.items():
        check_value(spec, params[key], key)


def random_value(spec: dict, rng: Any) -> Any:
    """A random possible value of ``spec`` (``rng``: :class:`random.Random`)."""
    kind = spec["_type"]
    args = spec["_value"]
    if kind == "choice":
        option = args[rng.randrange(len(args))]
        if _nested(option):
            return {k: (random_value(v, rng) if isinstance(v, dict) and "_type" in v else v) for k, v in option.items()}
        return option
    if kind == "randint":
        return rng.randrange(int(args[0]), max(int(args[1]), int(args[0]) + 1))
    if kind == "uniform":
        return rng.uniform(args[0], args[1])
    if kind == "quniform":
        return float(min(max(round(rng.uniform(args[0], args[1]) / args[2]) * args[2], args[0]), args[1]))
    if kind == "loguniform":
        return min(max(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))), args[0]), args[1])
    if kind == "qloguniform":
        v = math.exp(rng.uniform(math.log(args[0]), math.log(args[1])))
        return float(min(max(round(v / args[2]) * args[2], args[0]), args[1]))
    if kind == "normal":
        return rng.gauss(args[0], args[1])
    if kind == "qnormal":
        return round(rng.gauss(args[0], args[1]) / args[2]) * args[2]
    if kind == "lognormal":
        return math.exp(rng.gauss(args[0], args[1]))
    if kind == "qlognormal":
        return round(math.exp(rng.gauss(args[0], args[1])) / args[2]) * args[2]
    raise ValueError(f"unknown _type {kind!r}")


def random_parameters(search_space: dict, rng: Any) -> dict:
    return {k: random_value(v, rng) for k, v in search_space.items()}
