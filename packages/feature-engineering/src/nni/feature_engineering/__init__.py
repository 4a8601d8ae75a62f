"""Feature engineering: gradient and GBDT feature selectors.

Not built yet: importing this module raises :class:`~nni.runtime.distributions.NotBuiltYetError`
(a ``ModuleNotFoundError``) that names the distribution and the missing feature.
"""
from nni.runtime.distributions import NotBuiltYetError

raise NotBuiltYetError("nni-fe", "feature engineering (gradient and GBDT feature selectors)", __name__)
