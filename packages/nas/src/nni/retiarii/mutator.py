"""The Mutator API: ``Mutator``, ``Sampler``, ``InvalidMutation``.

A mutator describes a set of mutations of a model: :meth:`Mutator.mutate` edits a model in place and
asks :meth:`Mutator.choice` whenever it has to decide. A strategy binds a :class:`Sampler` that answers
those questions and calls :meth:`Mutator.apply`, which works on a fork (the original model is unchanged).
:meth:`Mutator.dry_run` records the candidate lists of every ``choice`` call (answering each with its first
candidate), which is how a strategy learns the search space.
"""
from __future__ import annotations

import abc
from typing import Any, Iterable, List, Optional, Tuple

from .graph import Model, ModelStatus, Mutation

__all__ = ['Mutator', 'Sampler', 'InvalidMutation']


class InvalidMutation(ValueError):
    """Raised by a mutator when the choices it got do not make a valid model; the strategy should sample again."""


class Sampler(abc.ABC):
    """Answers the ``choice`` calls of mutators; strategies implement one."""

    @abc.abstractmethod
    def choice(self, candidates: List[Any], mutator: 'Mutator', model: Model, index: int) -> Any:
        """Pick one of ``candidates`` for the ``index``-th choice call (0-based) of ``mutator`` on ``model``."""

    def mutation_start(self, mutator: 'Mutator', model: Model) -> None:
        """Called before ``mutator.mutate(model)``."""

    def mutation_end(self, mutator: 'Mutator', model: Model) -> None:
        """Called after ``mutator.mutate(model)``."""


class _RecorderSampler(Sampler):
    def __init__(self) -> None:
        self.recorded_candidates: List[List[Any]] = []

    def choice(self, candidates: List[Any], mutator: 'Mutator', model: Model, index: int) -> Any:
        self.recorded_candidates.append(candidates)
        return candidates[0]


class Mutator(abc.ABC):
    """Mutates a :class:`Model`; subclass it and implement :meth:`mutate` with :meth:`choice`.

    Args:
        sampler: the sampler answering ``choice`` calls (or use :meth:`bind_sampler`).
        label: a mutator with a label usually mutates the nodes with that label.

    Example::

        class BlockMutator(Mutator):
            def __init__(self, target, candidates):
                super().__init__(label=target)
                self.candidates = candidates

            def mutate(self, model):
                for node in model.get_nodes_by_label(self.label):
                    chosen = self.choice(self.candidates)
                    node.update_operation(chosen.type, chosen.parameters)
    """

    def __init__(self, sampler: Optional[Sampler] = None, label: Optional[str] = None):
        self.sampler = sampler
        self.label = label
        self._cur_model: Optional[Model] = None
        self._cur_samples: List[Any] = []

    def bind_sampler(self, sampler: Sampler) -> 'Mutator':
        """Set the sampler that answers ``choice`` calls; returns ``self``."""
        self.sampler = sampler
        return self

    def apply(self, model: Model) -> Model:
        """Return a mutated copy of the (frozen) ``model``; the original is not modified.

        The copy is frozen, and its history ends with this mutation (the choices made are in ``samples``).
        """
        if self.sampler is None:
            raise RuntimeError(f'{type(self).__name__}.apply: no sampler is bound; pass one to the constructor or call bind_sampler()')
        copy = model.fork()
        self._cur_model = copy
        self._cur_samples = []
        self.sampler.mutation_start(self, copy)
        try:
            self.mutate(copy)
        finally:
            self._cur_model = None
        self.sampler.mutation_end(self, copy)
        copy.history.append(Mutation(self, self._cur_samples, model, copy))
        copy.status = ModelStatus.Frozen
        return copy

    def dry_run(self, model: Model) -> Tuple[List[List[Any]], Model]:
        """Run :meth:`mutate` on a copy, choosing first candidates; return the candidate lists and the copy."""
        saved = self.sampler
        recorder = _RecorderSampler()
        self.sampler = recorder
        try:
            new_model = self.apply(model)
        finally:
            self.sampler = saved
        return recorder.recorded_candidates, new_model

    def choice(self, candidates: Iterable[Any]) -> Any:
        """Ask the sampler to choose one of ``candidates`` (only valid inside :meth:`mutate`)."""
        if self._cur_model is None or self.sampler is None:
            raise RuntimeError(f'{type(self).__name__}.choice: only callable while apply() or dry_run() runs mutate()')
        candidates = list(candidates)
        if not candidates:
            raise ValueError(f'{type(self).__name__}.choice: got an empty candidate list')
        chosen = self.sampler.choice(candidates, self, self._cur_model, len(self._cur_samples))
        self._cur_samples.append(chosen)
        return chosen

    @abc.abstractmethod
    def mutate(self, model: Model) -> None:
        """Mutate ``model`` in place, calling :meth:`choice` for every decision."""

    def __repr__(self) -> str:
        return f'{type(self).__name__}(label={self.label!r})'
