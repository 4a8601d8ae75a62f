"""NAS benchmark databases (NAS-Bench-101, NAS-Bench-201, NDS, NLP), part of nni-benchmarks.

Not built yet: importing this module raises :class:`~nni.runtime.distributions.NotBuiltYetError`
(a ``ModuleNotFoundError``) that names the distribution and the missing feature.
"""
from nni.runtime.distributions import NotBuiltYetError

raise NotBuiltYetError("nni-benchmarks", "the NAS benchmark databases (NAS-Bench-101/201, NDS, NLP)", __name__)
