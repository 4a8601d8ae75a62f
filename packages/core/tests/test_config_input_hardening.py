"""Hostile config / search-space files give one-line errors naming the field or file (issue 11, item 4)."""
from __future__ import annotations

import json

import pytest

from nni.common.hpo_utils.loading import MAX_NESTING, load_json_or_yaml, load_search_space
from nni.experiment.config import ExperimentConfig
from nni.experiment.config.base import ConfigError

HEAD = (
    "trialCommand: python3 trial.py\ntrialCodeDirectory: .\ntrialConcurrency: 1\n"
    "tuner: {name: Random}\ntrainingService: {platform: local}\n"
)
SPACE = "searchSpace: {x: {_type: choice, _value: [1, 2]}}\n"


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text, text
    return text


@pytest.mark.parametrize("shape", ["flow", "block", "mapping"])
def test_config_nested_5000_levels_is_a_yaml_error(tmp_path, shape):
    deep = {
        "flow": "searchSpace: " + "[" * 5000 + "]" * 5000 + "\n",
        "block": "searchSpace:\n" + "".join("  " * (i + 1) + "- \n" for i in range(5000)),
        "mapping": "searchSpace:\n" + "".join("  " * (i + 1) + "a:\n" for i in range(5000)) + "  " * 5001 + "b: 1\n",
    }[shape]
    (tmp_path / "config.yml").write_text(HEAD + deep)
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.load(tmp_path / "config.yml")
    assert "config.yml: invalid YAML at line" in _one_line(err.value)
    assert f"nested deeper than {MAX_NESTING} levels" in str(err.value)


def test_config_nesting_at_the_limit_loads(tmp_path):
    def config(depth):  # the document, searchSpace, x and _value are 4 levels
        return HEAD + "searchSpace: {x: {_type: choice, _value: [" + "[" * depth + "]" * depth + "]}}\n"

    (tmp_path / "config.yml").write_text(config(MAX_NESTING - 4))
    assert ExperimentConfig.load(tmp_path / "config.yml", validate=False).search_space["x"]["_type"] == "choice"
    (tmp_path / "config.yml").write_text(config(MAX_NESTING - 3))
    with pytest.raises(ConfigError, match="nested deeper"):
        ExperimentConfig.load(tmp_path / "config.yml", validate=False)


@pytest.mark.parametrize("suffix", [".json", ".yml"])
def test_search_space_file_nested_5000_levels(tmp_path, suffix):
    (tmp_path / f"space{suffix}").write_text('{"x": {"_type": "choice", "_value": ' + "[" * 5000 + "]" * 5000 + "}}")
    with pytest.raises(ValueError) as err:
        load_search_space(tmp_path / f"space{suffix}")
    assert f"space{suffix}" in _one_line(err.value) and "nested deeper" in str(err.value)
    (tmp_path / "config.yml").write_text(HEAD + f"searchSpaceFile: space{suffix}\n")
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.load(tmp_path / "config.yml").to_canonical_dict(check_algorithms=False)
    assert _one_line(err.value).startswith("searchSpaceFile:") and "nested deeper" in str(err.value)


def test_json_nested_below_the_recursion_limit_is_still_refused():
    text = "[" * 500 + "]" * 500
    assert json.loads(text)  # Python parses it ...
    with pytest.raises(ValueError, match=f"nested deeper than {MAX_NESTING} levels"):
        load_json_or_yaml(text, "space.json")  # ... but it is past the limit


def test_duplicate_config_key_names_key_and_line(tmp_path):
    (tmp_path / "config.yml").write_text(HEAD + SPACE + "trialConcurrency: 4\n")
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.load(tmp_path / "config.yml")
    assert "duplicate key 'trialConcurrency' (first at line 3)" in _one_line(err.value)
    assert "config.yml: invalid YAML at line 7" in str(err.value)


def test_duplicate_nested_key_and_search_space_key(tmp_path):
    (tmp_path / "config.yml").write_text(HEAD + "searchSpace:\n  x: {_type: choice, _value: [1]}\n  x: {_type: choice, _value: [2]}\n")
    with pytest.raises(ConfigError, match=r"line 8.*duplicate key 'x' \(first at line 7\)"):
        ExperimentConfig.load(tmp_path / "config.yml")
    (tmp_path / "space.yml").write_text("x: {_type: choice, _value: [1]}\ny: {}\nx: {}\n")
    with pytest.raises(ValueError, match=r"space.yml.*line 3.*duplicate key 'x'"):
        load_search_space(tmp_path / "space.yml")


def test_merge_keys_may_still_be_overridden():
    text = "base: &b {_type: choice, _value: [1]}\nx:\n  <<: *b\n  _value: [2]\n"
    assert load_json_or_yaml(text, "space.yml", yaml_first=True)["x"] == {"_type": "choice", "_value": [2]}


def test_invalid_utf8_config_names_the_file(tmp_path):
    (tmp_path / "config.yml").write_bytes(HEAD.encode() + b"experimentName: caf\xe9\n")
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.load(tmp_path / "config.yml")
    assert str(tmp_path / "config.yml") in _one_line(err.value) and "not UTF-8" in str(err.value)


@pytest.mark.parametrize("below", [False, True])
def test_working_directory_that_is_a_file_names_the_field(tmp_path, below):
    (tmp_path / "afile").write_text("x")
    workdir = tmp_path / "afile" / "sub" if below else tmp_path / "afile"
    (tmp_path / "config.yml").write_text(HEAD + SPACE + f"experimentWorkingDirectory: {workdir}\n")
    config = ExperimentConfig.load(tmp_path / "config.yml")
    with pytest.raises(ConfigError) as err:
        config.to_canonical_dict(check_algorithms=False)
    assert _one_line(err.value).startswith("experimentWorkingDirectory: ") and "is a file" in str(err.value)


def test_rest_schema_limits_are_the_config_limits():
    from nni.experiment.config import limits as base
    from nni.runtime import rest_api

    for name in ("MAX_TRIAL_CONCURRENCY", "MAX_TRIAL_NUMBER", "MAX_DURATION_SECONDS"):
        assert getattr(rest_api, name) == getattr(base, name), name
    params = rest_api.route("update_experiment_profile").request["properties"]["params"]["properties"]
    assert params["trialConcurrency"]["maximum"] == base.MAX_TRIAL_CONCURRENCY
    assert params["maxTrialNum"]["maximum"] == base.MAX_TRIAL_NUMBER
    assert params["maxExecDuration"]["maximum"] == base.MAX_DURATION_SECONDS
