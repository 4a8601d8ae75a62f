"""Model compression: pruners, quantizers, speedup and analysis utilities.

Not built yet: importing this module raises :class:`~nni.runtime.distributions.NotBuiltYetError`
(a ``ModuleNotFoundError``) that names the distribution and the missing feature.
"""
from nni.runtime.distributions import NotBuiltYetError

raise NotBuiltYetError("nni-compress", "model compression (pruners, quantizers, speedup, analysis utilities)", __name__)
