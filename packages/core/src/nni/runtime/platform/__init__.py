"""Trial channels: how ``nni.get_next_parameter`` / ``nni.report_*`` reach the manager.

Chosen from the environment (:mod:`nni.runtime.env_vars`) the first time a trial API is used:

* no ``NNI_PLATFORM`` -> :class:`~nni.runtime.platform.standalone.StandaloneChannel`
  (parameters ``{}``, metrics printed on stdout);
* ``NNI_PLATFORM=unittest`` -> :class:`~nni.runtime.platform.test.UnittestChannel`
  (parameters and metrics in memory, for unit tests of trial code; see :mod:`.test`);
* ``NNI_MANAGER_URL`` set -> :class:`~nni.runtime.platform.http.HttpChannel`;
* otherwise (``local``, or a remote platform whose training service copies files) ->
  :class:`~nni.runtime.platform.local.FileChannel` (``$NNI_SYS_DIR/parameter.cfg`` in,
  ``$NNI_OUTPUT_DIR/.nni/metrics`` out).

A channel has three methods: ``get_parameter(index) -> dict | None`` (the parameter record
``{"parameter_id", "parameter_source", "parameters", "parameter_index"}``, ``None`` when there
is none), ``request_parameter(index)`` (multi-phase) and ``send_metric(record: dict)``.
"""
from __future__ import annotations

from ..env_vars import TrialEnv, trial_env

TYPE_CHECKING = False  # not imported from typing: every trial process pays for that import
if TYPE_CHECKING:
    from typing import Any, Protocol

    class TrialChannel(Protocol):
        env: TrialEnv

        def get_parameter(self, index: int, wait: bool = False) -> dict | None: ...

        def request_parameter(self, index: int) -> None: ...

        def send_metric(self, record: dict) -> None: ...


_cache: tuple[TrialEnv, Any] | None = None


def get_channel() -> TrialChannel:
    """The channel for the current environment (cached while the environment is unchanged)."""
    global _cache
    env = trial_env()
    if _cache is not None and _cache[0] == env:
        return _cache[1]
    if env.platform is None:
        from .standalone import StandaloneChannel

        channel: Any = StandaloneChannel(env)
    elif env.platform == "unittest":
        from .test import UnittestChannel

        channel = UnittestChannel(env)
    elif env.manager_url:
        from .http import HttpChannel

        channel = HttpChannel(env)
    else:
        from .local import FileChannel

        channel = FileChannel(env)
    _cache = (env, channel)
    return channel
