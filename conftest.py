"""Test-wide settings for every package's tests: no test touches the real home folder."""
from __future__ import annotations

import os
import tempfile


def pytest_configure(config):
    # One private home per test process (each xdist worker runs this too), so user registry
    # files and ~/nni-experiments written by tests never mix with a developer's own.
    home = tempfile.mkdtemp(prefix="nni-test-home-")
    os.environ["HOME"] = home
    os.environ["NNI_CONFIG_DIR"] = os.path.join(home, ".config", "nni")
    os.environ.setdefault("NNI_EXPERIMENTS_DIR", os.path.join(home, "nni-experiments"))
