"""Remote training service: runs trials on machines reached over SSH.

Not built yet: importing this module raises :class:`~nni.runtime.distributions.NotBuiltYetError`
(a ``ModuleNotFoundError``) that names the distribution and the missing feature.
"""
from nni.runtime.distributions import NotBuiltYetError

raise NotBuiltYetError("nni-ts-remote", "the remote training service (trials on machines reached over SSH)", __name__)
