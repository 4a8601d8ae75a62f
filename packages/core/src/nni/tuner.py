"""Base class of tuners (``nni.tuner.Tuner``).

Lifecycle, as driven by :class:`nni.runtime.msg_dispatcher.MsgDispatcher`:

1. ``__init__(**classArgs)``;
2. :meth:`Tuner.update_search_space` with the experiment's search space (again whenever the user
   updates it);
3. :meth:`Tuner.generate_multiple_parameters` / :meth:`Tuner.generate_parameters` whenever the
   manager wants new trials; ``parameter_id`` values are unique integers, one per trial;
4. :meth:`Tuner.receive_trial_result` with the final result of a trial the tuner generated;
5. :meth:`Tuner.trial_end` when the trial finishes (``success`` only for SUCCEEDED).

Trials added by hand (web UI "Add trial", ``POST /trial-jobs``) reach the tuner only if it opts
in by calling ``self._accept_customized_trials()`` in its ``__init__`` (as in NNI v2.5); then
their results come with ``customized=True`` in kwargs. Otherwise the tuner never sees them.

A tuner whose space is exhausted raises :class:`nni.NoMoreTrialError` (or returns an empty list
from ``generate_multiple_parameters``). Parameters may be any JSON-serializable object; the trial
receives exactly that object from ``nni.get_next_parameter()``.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from .recoverable import Recoverable
from .utils import NoMoreTrialError

__all__ = ["Tuner"]

_logger = logging.getLogger(__name__)


class Tuner(Recoverable):
    """Base class of tuners. Override :meth:`update_search_space`, :meth:`receive_trial_result`
    and :meth:`generate_parameters` (or :meth:`generate_multiple_parameters`).

    Example:
        >>> class FixedTuner(Tuner):
        ...     def update_search_space(self, search_space): pass
        ...     def generate_parameters(self, parameter_id, **kwargs):
        ...         return {"dropout": 0.3, "learning_rate": 0.4}
        ...     def receive_trial_result(self, parameter_id, parameters, value, **kwargs): pass
    """

    #: Whether results and ends of trials added by hand reach this tuner; set it with
    #: :meth:`_accept_customized_trials`.
    accept_customized_trials: bool = False

    def _accept_customized_trials(self, accept: bool = True) -> None:
        """Opt in (or out) of receiving trials added by hand; call it in ``__init__``."""
        self.accept_customized_trials = bool(accept)

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> Any:
        """One configuration for the trial ``parameter_id``; raise :class:`nni.NoMoreTrialError`
        when the space is exhausted. ``kwargs`` are not a stable API; ignore them."""
        raise NotImplementedError("Tuner: override generate_parameters() or generate_multiple_parameters()")

    def generate_multiple_parameters(self, parameter_id_list: list[int], **kwargs: Any) -> list[Any]:
        """Configurations for several trials; the default calls :meth:`generate_parameters` for
        each id and stops early at :class:`nni.NoMoreTrialError`. The result may be shorter than
        ``parameter_id_list``; an empty list means no more trials."""
        result = []
        for parameter_id in parameter_id_list:
            try:
                _logger.debug("generating param for %s", parameter_id)
                res = self.generate_parameters(parameter_id, **kwargs)
            except NoMoreTrialError:
                return result
            result.append(res)
        return result

    def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        """The final result ``value`` (exactly what the trial reported) of trial ``parameter_id``,
        which ran ``parameters``. ``kwargs['customized']`` is True for trials added by hand (only
        seen after :meth:`_accept_customized_trials`)."""
        raise NotImplementedError("Tuner: override receive_trial_result()")

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        """Trial ``parameter_id`` ended; ``success`` is False when it failed or was stopped."""

    def update_search_space(self, search_space: Any) -> None:
        """The (new) search space, the JSON object from the experiment owner."""
        raise NotImplementedError("Tuner: override update_search_space()")

    def import_data(self, data: list[dict]) -> Optional[int]:
        """Results of earlier trials: a list of ``{"parameter": {...}, "value": metric}``. Used
        by ``nnictl experiment import`` and on resume; ignored by default. A tuner may return
        the number of records it used; ``nnictl experiment import`` reports it."""

    def _on_exit(self) -> None:
        """Called once when the dispatcher stops normally (Terminate)."""

    def _on_error(self) -> None:
        """Called once when the dispatcher stops because of an error."""
