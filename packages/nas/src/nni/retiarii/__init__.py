"""Neural architecture search (Retiarii): model spaces, mutators, strategies, evaluators, one-shot trainers.

Not built yet: importing this module raises :class:`~nni.runtime.distributions.NotBuiltYetError`
(a ``ModuleNotFoundError``) that names the distribution and the missing feature.
"""
from nni.runtime.distributions import NotBuiltYetError

raise NotBuiltYetError("nni-nas", "neural architecture search (Retiarii: model spaces, mutators, strategies, evaluators, one-shot trainers)", __name__)
