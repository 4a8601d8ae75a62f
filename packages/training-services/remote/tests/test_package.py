"""nni-ts-remote imports, declares what it uses, and keeps paramiko out of ``import nni``."""
import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def test_public_api_imports():
    import nni.training_services.remote as remote

    for name in remote.__all__:
        assert getattr(remote, name) is not None


def test_declares_its_dependencies():
    deps = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert {d.split(">")[0] for d in deps} == {"nni-core", "nni-ts-local", "paramiko", "pathspec"}
    assert importlib.metadata.version("nni-ts-remote")


def test_import_nni_does_not_load_paramiko():
    code = "import sys, nni; print('paramiko' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
