"""The entry-point registry: listing, lazy loading, the user registry file, unknown names."""
from __future__ import annotations

import sys
import textwrap

import pytest

from nni.runtime import registry


@pytest.fixture()
def fake_dist(tmp_path, monkeypatch):
    """An installed distribution (a real dist-info folder on sys.path) that provides algorithms."""
    site = tmp_path / "site"
    pkg = site / "fakealgos"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "tuners.py").write_text(
        textwrap.dedent(
            """
            import os
            IMPORTED = True
            marker = os.environ.get("FAKEALGOS_MARKER")
            if marker:
                open(marker, "a").write("imported\\n")

            class Validator:
                def validate_class_args(self, **kwargs):
                    if kwargs.get("speed") not in (None, "fast", "slow"):
                        raise ValueError("speed must be fast or slow")

            class TPELike:
                class_args_validator = Validator

            class Plain:
                pass
            """
        )
    )
    info = site / "fakealgos-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakealgos\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[nni.tuners]\nTPEFake = fakealgos.tuners:TPELike\nPlainTuner = fakealgos.tuners:Plain\n\n"
        "[nni.assessors]\nFakeStop = fakealgos.tuners:Plain\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("NNI_CONFIG_DIR", str(tmp_path / "config"))
    marker = tmp_path / "marker.txt"
    monkeypatch.setenv("FAKEALGOS_MARKER", str(marker))
    yield marker
    for name in [m for m in sys.modules if m.startswith("fakealgos")]:
        del sys.modules[name]


def test_lists_entry_points_without_importing(fake_dist):
    names = registry.list_names("tuner")
    assert "TPEFake" in names and "PlainTuner" in names
    assert "FakeStop" in registry.list_names("assessor")
    assert "FakeStop" not in names
    entry = registry.get_entry("tuner", "TPEFake")
    assert entry.source == "builtin" and entry.distribution == "fakealgos"
    assert entry.class_path == "fakealgos.tuners:TPELike"
    assert not fake_dist.exists(), "listing must not import the algorithm module"
    assert "fakealgos.tuners" not in sys.modules


def test_load_class_and_validator(fake_dist):
    cls = registry.load_class("tuner", "TPEFake")
    assert cls.__name__ == "TPELike"
    assert fake_dist.read_text() == "imported\n"
    validator = registry.load_validator("tuner", "TPEFake")
    validator().validate_class_args(speed="fast")
    with pytest.raises(ValueError, match="speed"):
        validator().validate_class_args(speed="warp")
    assert registry.load_validator("tuner", "PlainTuner") is None


def test_case_insensitive_lookup(fake_dist):
    assert registry.get_entry("tuner", "tpefake").name == "TPEFake"


def test_unknown_name_suggests_closest_and_lists_installed(fake_dist):
    with pytest.raises(registry.UnknownNameError) as err:
        registry.get_entry("tuner", "TPEFakee")
    msg = str(err.value)
    assert msg.startswith("Unknown tuner 'TPEFakee'. Did you mean 'TPEFake'?")
    assert "PlainTuner" in msg and "\n" not in msg
    with pytest.raises(registry.UnknownNameError, match="Unknown assessor 'Nope'"):
        registry.get_entry("assessor", "Nope")


def test_unknown_kind_rejected():
    with pytest.raises(ValueError, match="kind must be one of"):
        registry.list_names("optimizer")


def _user_algo(tmp_path):
    code = tmp_path / "my_algo"
    code.mkdir()
    (code / "demo_tuner.py").write_text(
        "class DemoTuner:\n    pass\n\nclass DemoValidator:\n    def validate_class_args(self, **kw):\n        pass\n"
    )
    return code


def test_user_registry_file_round_trip(fake_dist, tmp_path):
    code = _user_algo(tmp_path)
    meta = {
        "algoType": "tuner",
        "builtinName": "DemoTuner",
        "className": "demo_tuner.DemoTuner",
        "classArgsValidator": "demo_tuner.DemoValidator",
    }
    entry = registry.register_user_algorithm(meta, code_dir=code)
    assert entry.source == "user" and entry.code_dir == str(code.resolve())
    assert registry.user_registry_path().exists()
    assert "DemoTuner" in registry.list_names("tuner")
    assert "DemoTuner" not in registry.list_names("assessor")
    assert registry.load_class("tuner", "DemoTuner").__name__ == "DemoTuner"
    assert registry.load_validator("tuner", "DemoTuner").__name__ == "DemoValidator"
    removed = registry.unregister_user_algorithm("DemoTuner")
    assert removed["className"] == "demo_tuner.DemoTuner"
    assert "DemoTuner" not in registry.list_names("tuner")
    sys.modules.pop("demo_tuner", None)


def test_register_rejects_bad_meta_and_builtin_clash(fake_dist, tmp_path):
    with pytest.raises(ValueError, match="'className' is required"):
        registry.register_user_algorithm({"algoType": "tuner", "builtinName": "X"})
    with pytest.raises(ValueError, match="algoType must be one of"):
        registry.register_user_algorithm({"algoType": "pruner", "builtinName": "X", "className": "a.B"})
    with pytest.raises(ValueError, match="unknown field 'clasName'"):
        registry.register_user_algorithm({"algoType": "tuner", "builtinName": "X", "className": "a.B", "clasName": "x"})
    with pytest.raises(ValueError, match="already provided by an installed package"):
        registry.register_user_algorithm({"algoType": "tuner", "builtinName": "TPEFake", "className": "a.B"})
    with pytest.raises(ValueError, match="cannot be unregistered"):
        registry.unregister_user_algorithm("TPEFake")
    with pytest.raises(registry.UnknownNameError, match="No user-registered algorithm"):
        registry.unregister_user_algorithm("Ghost")


def test_reregister_replaces_previous_entry(fake_dist, tmp_path):
    code = _user_algo(tmp_path)
    base = {"algoType": "tuner", "builtinName": "DemoTuner", "className": "demo_tuner.DemoTuner"}
    registry.register_user_algorithm(base, code_dir=code)
    registry.register_user_algorithm({**base, "classArgsValidator": "demo_tuner.DemoValidator"}, code_dir=code)
    entries = [e for e in registry.list_entries("tuner") if e.name == "DemoTuner"]
    assert len(entries) == 1 and entries[0].class_args_validator == "demo_tuner.DemoValidator"


def test_only_installed_builtins_listed():
    """Built-in names of NNI that no installed package provides are never listed."""
    import importlib.metadata as md

    for kind, group in registry.ENTRY_POINT_GROUPS.items():
        declared = {ep.name for ep in md.entry_points(group=group)}
        assert set(registry.list_names(kind)) - {e.name for e in registry.list_entries(kind) if e.source == "user"} == declared


def test_installed_distributions_reports_core():
    from nni.runtime.distributions import installed_distributions

    dists = installed_distributions()
    assert dists["nni-core"] == "0.1.0"
    assert all(name == "nni" or name.startswith("nni-") for name in dists)
    import nni

    assert nni.__version__ == dists["nni-core"]
