"""Versions of the installed ``nni`` distributions."""
from __future__ import annotations

import importlib.metadata as _md


def core_version() -> str:
    """The version of nni-core (``nni.__version__``)."""
    try:
        return _md.version("nni-core")
    except _md.PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


def installed_distributions() -> dict[str, str]:
    """Map every installed ``nni`` / ``nni-*`` distribution name to its version, sorted by name."""
    found: dict[str, str] = {}
    for dist in _md.distributions():
        name = (dist.metadata["Name"] or "").strip()
        norm = name.lower().replace("_", "-")
        if norm == "nni" or norm.startswith("nni-"):
            found[norm] = dist.version
    return dict(sorted(found.items()))


class NotBuiltYetError(ModuleNotFoundError):
    """Raised by importing a module of a distribution that ships no implementation yet.

    A ``ModuleNotFoundError`` (so ``except ImportError`` guards keep working) whose one-line
    message names the distribution and the feature that is missing.
    """

    def __init__(self, distribution: str, feature: str, module: str):
        super().__init__(
            f"{module}: {feature} is not built yet; the {distribution} distribution is installed "
            f"but ships no implementation in this release",
            name=module,
        )
        self.distribution = distribution
        self.feature = feature
