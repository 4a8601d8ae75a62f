"""``nnictl --version``: the version of every installed nni distribution."""
from __future__ import annotations

from nni.runtime.distributions import installed_distributions


def print_versions(_args=None) -> int:
    for name, version in installed_distributions().items():
        print(f"{name} {version}")
    return 0
