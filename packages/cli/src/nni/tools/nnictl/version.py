"""``nnictl --version``: the version of NNI, then of every installed nni distribution."""
from __future__ import annotations

from nni.runtime.distributions import core_version, installed_distributions


def print_versions(_args=None) -> int:
    """First line: the bare version of the ``nni`` meta-package (nni-core's when the
    meta-package is not installed), which is all NNI v2.5 prints; then ``name version`` for
    every installed ``nni`` / ``nni-*`` distribution."""
    found = installed_distributions()
    print(found.get("nni") or core_version())
    for name, version in found.items():
        print(f"{name} {version}")
    return 0
