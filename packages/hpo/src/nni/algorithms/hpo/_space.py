"""Tuner-side helpers: a formatted search space seen as flat float rows.

Built on :func:`nni.common.hpo_utils.format_search_space`. Every parameter (nested ones included)
is one column; a row is one configuration: the option index for categorical parameters (``choice``,
``randint``), the value (its logarithm for log types) for numerical ones, ``NaN`` where the
parameter is not active (a nested parameter whose branch was not chosen). Random sampling,
mutation and the TPE model all work on these rows; :meth:`FlatSpace.to_parameters` turns one back
into the user's dict via :func:`nni.common.hpo_utils.deformat_parameters`.

A numerical range whose low equals its high (``uniform [2, 2]`` ...) is one column that is
categorical with a single option: no model ever sees a zero-width range, and
:meth:`FlatSpace.to_formatted` puts the constant back.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from nni.common.hpo_utils import deformat_parameters, format_parameters, format_search_space

from ._tpe_engine import Dim, deactivate, sample_prior


class FlatSpace:
    """The formatted search space as a list of :class:`Dim`, plus row <-> parameters conversion."""

    def __init__(self, search_space: dict):
        self.formatted = format_search_space(search_space)
        self.keys: list[tuple] = list(self.formatted.keys())
        self.specs = [self.formatted[k] for k in self.keys]
        index = {k: i for i, k in enumerate(self.keys)}
        self.dims: list[Dim] = []
        # column -> internal value of a numerical parameter whose range is one point
        self.constants: dict[int, float] = {}
        for j, spec in enumerate(self.specs):
            parent = parent_choice = None
            if len(spec.key) > 1:
                parent = index[tuple(spec.key[:-2])]
                parent_choice = int(spec.key[-2])
            if spec.categorical:
                dim = Dim(True, size=int(spec.size), parent=parent, parent_choice=parent_choice)
            elif spec.is_constant():
                self.constants[j] = float(spec.low)
                dim = Dim(True, size=1, parent=parent, parent_choice=parent_choice)
            elif spec.normal_distributed:
                dim = Dim(False, mu=float(spec.mu), sigma=float(spec.sigma), parent=parent,
                          parent_choice=parent_choice)
            else:
                dim = Dim(False, low=float(spec.low), high=float(spec.high), parent=parent,
                          parent_choice=parent_choice)
            if spec.q and j not in self.constants:
                dim.rounder = self._make_rounder(spec)
            self.dims.append(dim)
        self.children: list[list[int]] = [[] for _ in self.dims]
        for j, dim in enumerate(self.dims):
            if dim.parent is not None:
                self.children[dim.parent].append(j)

    def __len__(self) -> int:
        return len(self.dims)

    # ------------------------------------------------------------------ value scales
    @staticmethod
    def _bounds(spec) -> tuple[float, float]:
        if spec.normal_distributed:
            return -math.inf, math.inf
        if spec.log_distributed:
            return math.exp(spec.low), math.exp(spec.high)
        return spec.low, spec.high

    def _make_rounder(self, spec):
        q = float(spec.q)
        lo, hi = self._bounds(spec)
        log = bool(spec.log_distributed)

        def rounder(v: np.ndarray) -> np.ndarray:
            raw = np.exp(v) if log else v
            raw = np.clip(np.round(raw / q) * q, lo, hi)
            if log:
                # qlognormal can round to 0: keep a finite internal value that rounds back to 0
                return np.log(np.maximum(raw, q / 4))
            return raw

        return rounder

    def internal_of(self, j: int, value: Any) -> float:
        """Column ``j``'s row value for a formatted (internal) value."""
        spec = self.specs[j]
        if j in self.constants:
            return 0.0
        if spec.log_distributed and spec.q and not math.isfinite(value):
            return math.log(spec.q / 4)  # qlognormal rounded to 0
        return float(value)

    # ------------------------------------------------------------------ conversions
    def to_formatted(self, row: np.ndarray) -> dict:
        """``{key: internal value}`` of the active columns (indices as ``int``)."""
        out = {}
        for j in np.flatnonzero(~np.isnan(row)):
            if j in self.constants:
                out[self.keys[j]] = self.constants[j]
            else:
                out[self.keys[j]] = int(round(row[j])) if self.specs[j].categorical else float(row[j])
        return out

    def to_parameters(self, row: np.ndarray) -> dict:
        return deformat_parameters(self.to_formatted(row), self.formatted)

    def from_formatted(self, formatted: dict) -> np.ndarray:
        row = np.full(len(self.keys), np.nan)
        for j, key in enumerate(self.keys):
            if key in formatted:
                row[j] = self.internal_of(j, formatted[key])
        return deactivate(self.dims, row[None, :])[0]

    def from_parameters(self, parameters: dict) -> np.ndarray:
        return self.from_formatted(format_parameters(parameters, self.formatted))

    # ------------------------------------------------------------------ sampling
    def sample(self, rng: np.random.Generator, count: int = 1) -> np.ndarray:
        return sample_prior(self.dims, rng, count)

    def descendants(self, j: int) -> list[int]:
        out, todo = [], list(self.children[j])
        while todo:
            k = todo.pop()
            out.append(k)
            todo.extend(self.children[k])
        return out

    def mutate(self, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Re-sample one random active parameter (and the sub-space it may switch on)."""
        active = np.flatnonzero(~np.isnan(row))
        fresh = sample_prior(self.dims, rng, 1, only_active=False)[0]
        new = row.copy()
        if len(active) == 0:
            return deactivate(self.dims, fresh[None, :])[0]
        j = int(rng.choice(active))
        new[j] = fresh[j]
        if self.dims[j].categorical:
            # a newly chosen branch takes its parameters from the fresh draw
            for k in self.descendants(j):
                if np.isnan(new[k]):
                    new[k] = fresh[k]
        return deactivate(self.dims, new[None, :])[0]

    def is_finite(self) -> bool:
        """True when every parameter takes finitely many values (categorical or bounded q)."""
        return all(s.categorical or s.is_constant() or (s.q and not s.normal_distributed) for s in self.specs)

    def row_key(self, row: np.ndarray) -> tuple:
        """A hashable identity of a configuration (inactive columns omitted)."""
        return tuple((int(j), round(float(row[j]), 9)) for j in np.flatnonzero(~np.isnan(row)))

    # ------------------------------------------------------------------ finite spaces
    def grid_values(self, j: int) -> list[float]:
        """Every row value column ``j`` can take (finite columns only).

        ``quniform``/``qloguniform`` ``[low, high, q]`` give the values of their own formula
        ``clip(round(x / q) * q, low, high)``: ``low``, every multiple of ``q`` strictly between,
        and ``high`` (``[2, 10, 5]`` -> 2, 5, 10; ``[0, 10, 2.5]`` -> 0, 2.5, ..., 10).
        """
        spec = self.specs[j]
        if spec.categorical or j in self.constants:
            return [float(i) for i in range(int(self.dims[j].size))]
        if not spec.q or spec.normal_distributed:
            raise ValueError(f"parameter {spec.name!r} of type {spec.type} has infinitely many values")
        lo, hi = self._bounds(spec)
        q = float(spec.q)
        values = [lo]
        m = math.floor(lo / q) + 1
        while m * q < hi and not math.isclose(m * q, hi, rel_tol=1e-12, abs_tol=1e-12):
            if not math.isclose(m * q, lo, rel_tol=1e-12, abs_tol=1e-12):
                values.append(m * q)
            m += 1
        if hi > lo:
            values.append(hi)
        if spec.log_distributed:
            return [math.log(max(v, q / 4)) for v in values]
        return [float(v) for v in values]

    def count(self) -> int:
        """How many distinct configurations a finite space has."""
        sizes = {}
        for j in reversed(range(len(self.dims))):  # children come after their parents
            if self.dims[j].categorical:
                total = 0
                for k in range(self.dims[j].size):
                    prod = 1
                    for c in self.children[j]:
                        if self.dims[c].parent_choice == k:
                            prod *= sizes[c]
                    total += prod
                sizes[j] = total
            else:
                sizes[j] = len(self.grid_values(j))
        result = 1
        for j, dim in enumerate(self.dims):
            if dim.parent is None:
                result *= sizes[j]
        return result

    def enumerate_grid(self) -> np.ndarray:
        """All configurations of a finite space, as rows (the last parameter varies fastest)."""
        rows = [np.full(len(self.dims), np.nan)]
        for j, dim in enumerate(self.dims):
            values = self.grid_values(j)
            expanded = []
            for row in rows:
                if dim.parent is not None and row[dim.parent] != dim.parent_choice:
                    expanded.append(row)
                    continue
                for v in values:
                    new = row.copy()
                    new[j] = v
                    expanded.append(new)
            rows = expanded
        return np.array(rows).reshape(len(rows), len(self.dims))
