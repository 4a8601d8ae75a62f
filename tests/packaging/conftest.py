"""Helpers for the packaging tests: wheels of every distribution and fresh virtual environments."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def package_dirs() -> list[Path]:
    lines = (ROOT / "tools" / "packages.txt").read_text().splitlines()
    return [ROOT / line.strip() for line in lines if line.strip() and not line.startswith("#")]


def run(cmd, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CONSTRAINT=str(ROOT / "tools" / "constraints.txt"))
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, **kw)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory) -> Path:
    """Wheels of every distribution of the repository and of the root meta-package, built with hatchling."""
    out = tmp_path_factory.mktemp("wheels")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", out,
         *package_dirs(), ROOT])
    return out


def wheel_of(wheel_dir: Path, dist: str) -> Path:
    prefix = dist.replace("-", "_") + "-"
    found = [p for p in wheel_dir.glob("*.whl") if p.name.startswith(prefix)]
    assert len(found) == 1, f"expected one wheel for {dist}, got {found}"
    return found[0]


@pytest.fixture()
def fresh_venv(tmp_path) -> Path:
    """A new virtual environment with nothing of this repository in it; returns its python."""
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", venv])
    return venv / "bin" / "python"


@pytest.fixture()
def sh():
    """Run a command; fail the test with its output when it exits non-zero."""
    return run


@pytest.fixture()
def wheel(wheel_dir):
    """The wheel file of one distribution: ``wheel('nni-core')``."""
    return lambda dist: wheel_of(wheel_dir, dist)
