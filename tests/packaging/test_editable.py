"""Install mode (a): every package installed editable at once (the dev setup)."""
from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

IMPORT_PATHS = {
    "packages/core": "nni.runtime.registry",
    "packages/hpo": "nni.algorithms.hpo",
    "packages/nas": "nni.retiarii",
    "packages/compression": "nni.compression",
    "packages/feature-engineering": "nni.feature_engineering",
    "packages/training-services/local": "nni.training_services.local",
    "packages/training-services/remote": "nni.training_services.remote",
    "packages/training-services/kubernetes": "nni.training_services.kubernetes",
    "packages/webui-server": "nni.server",
    "packages/cli": "nni.tools.nnictl",
    "packages/benchmarks": "nni.nas.benchmarks",
}


@pytest.mark.parametrize("folder,module", sorted(IMPORT_PATHS.items()))
def test_each_import_path_comes_from_its_own_src(folder, module):
    # find_spec, not import: the placeholder modules of unbuilt distributions raise when imported
    spec = importlib.util.find_spec(module)
    assert Path(spec.origin).resolve().is_relative_to(ROOT / folder / "src")


def test_only_core_owns_nni_init():
    owners = [p for p in (ROOT / "packages").glob("**/src/nni/__init__.py")]
    assert owners == [ROOT / "packages/core/src/nni/__init__.py"]
    for shared in ("algorithms", "tools", "training_services", "nas"):
        assert not list((ROOT / "packages").glob(f"**/src/nni/{shared}/__init__.py")), shared


def test_import_nni_is_light():
    code = "import sys, nni; bad = [m for m in ('torch', 'scipy', 'aiohttp', 'peewee') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
