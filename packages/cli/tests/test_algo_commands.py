"""``nnictl algo`` with the real console script and a per-test user registry."""
from __future__ import annotations

import os
import sys
from pathlib import Path
import subprocess
import textwrap

import pytest

NNICTL = str(Path(sys.executable).parent / "nnictl")  # the console script of this environment


@pytest.fixture()
def nnictl(tmp_path):
    env = dict(os.environ, NNI_CONFIG_DIR=str(tmp_path / "config"))

    def run(*args, ok=True):
        proc = subprocess.run([NNICTL, *args], capture_output=True, text=True, env=env, cwd=tmp_path)
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc

    return run


@pytest.fixture()
def custom_tuner(tmp_path):
    folder = tmp_path / "customized_tuner"
    folder.mkdir()
    (folder / "demo_tuner.py").write_text(textwrap.dedent("""
        from nni.tuner import Tuner
        from nni.utils import ClassArgsValidator

        class DemoTuner(Tuner):
            def __init__(self, optimize_mode="maximize"):
                self.optimize_mode = optimize_mode
            def update_search_space(self, search_space):
                self.space = search_space
            def generate_parameters(self, parameter_id, **kwargs):
                return {"x": parameter_id}
            def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
                pass

        class MyClassArgsValidator(ClassArgsValidator):
            def validate_class_args(self, **kwargs):
                if kwargs.get("optimize_mode", "maximize") not in ("maximize", "minimize"):
                    raise ValueError("optimize_mode must be maximize or minimize")
    """))
    (folder / "meta_file.yml").write_text(
        "algoType: tuner\nbuiltinName: demotuner\nclassName: demo_tuner.DemoTuner\n"
        "classArgsValidator: demo_tuner.MyClassArgsValidator\n"
    )
    return folder


def test_register_list_show_unregister(nnictl, custom_tuner):
    out = nnictl("algo", "register", "--meta", str(custom_tuner / "meta_file.yml")).stdout
    assert "demotuner" in out
    listed = nnictl("algo", "list").stdout
    row = next(line for line in listed.splitlines() if "demotuner" in line)
    assert [c.strip() for c in row.strip("|").split("|")] == ["demotuner", "tuners", "User", "DemoTuner", "demo_tuner"]
    shown = nnictl("algo", "show", "demotuner").stdout
    assert "className: demo_tuner.DemoTuner" in shown and "classArgsValidator: demo_tuner.MyClassArgsValidator" in shown
    nnictl("algo", "unregister", "demotuner")
    assert "demotuner" not in nnictl("algo", "list").stdout


def test_register_errors_are_one_line(nnictl, custom_tuner, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("algoType: tuner\nbuiltinName: x\n")
    proc = nnictl("algo", "register", "--meta", str(bad), ok=False)
    assert proc.returncode == 1 and proc.stderr.strip() == "ERROR: meta file: field 'className' is required and must be a non-empty string"
    missing = nnictl("algo", "register", "--meta", str(tmp_path / "nope.yml"), ok=False)
    assert missing.returncode == 1 and "file not found" in missing.stderr
    unimportable = tmp_path / "u.yml"
    unimportable.write_text("algoType: tuner\nbuiltinName: ghost\nclassName: ghost_mod.Ghost\n")
    proc = nnictl("algo", "register", "--meta", str(unimportable), ok=False)
    assert proc.returncode == 1 and "cannot import 'ghost_mod.Ghost'" in proc.stderr
    assert "ghost" not in nnictl("algo", "list").stdout, "a failed registration must be undone"
    proc = nnictl("algo", "unregister", "nothere", ok=False)
    assert proc.returncode == 1 and "No user-registered algorithm named 'nothere'" in proc.stderr
    proc = nnictl("algo", "show", "demotunr", ok=False)
    assert proc.returncode == 1 and "unknown algorithm 'demotunr'" in proc.stderr
    for p in (proc, missing):
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
