"""The search-space format is determined by the tuner: built-in algorithms get the standard
check, custom ones (className / codeDirectory, or ``nnictl algo register``) get the space as
written, checked only by their own ``validate_search_space`` hook."""
from __future__ import annotations

import json
import textwrap

import pytest

from nni.experiment.config import ConfigError, ExperimentConfig
from nni.experiment.config.search_space import check_search_space, is_builtin_algorithm, search_space_owner
from nni.runtime import registry

ODD_SPACES = [
    {"x": [1, 100], "y": {"_type": "my_own", "_value": 3}},
    [1, 2, 3],
    {"layers": [[16, 32], [64]]},
    "just a string",
]

ALGOS = '''
from nni.tuner import Tuner


class PlainTuner(Tuner):
    def update_search_space(self, search_space):
        self.space = search_space


class PickyTuner(PlainTuner):
    @staticmethod
    def validate_search_space(search_space):
        if not isinstance(search_space, list):
            raise ValueError("PickyTuner wants a list of candidates")
'''


@pytest.fixture()
def algos(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_CONFIG_DIR", str(tmp_path / "nni-config"))
    code = tmp_path / "algos"
    code.mkdir()
    (code / "nni_ss_owner_algos.py").write_text(ALGOS)
    return code


def _config(tmp_path, space, tuner: dict, **extra) -> dict:
    (tmp_path / "space.json").write_text(json.dumps(space))
    return {"searchSpaceFile": str(tmp_path / "space.json"), "trialCommand": "python3 t.py", "trialConcurrency": 1,
            "tuner": tuner, "trainingService": {"platform": "local"}, **extra}


@pytest.mark.parametrize("space", ODD_SPACES, ids=["list-param", "top-list", "nested-lists", "string"])
def test_custom_tuner_gets_the_space_as_written(tmp_path, algos, space):
    data = _config(tmp_path, space, {"className": "nni_ss_owner_algos.PlainTuner", "codeDirectory": str(algos)})
    canon = ExperimentConfig.from_dict(data, validate=True).to_canonical_dict()
    assert canon["searchSpace"] == space and canon["searchSpaceFile"] is None
    inline = ExperimentConfig.from_dict({**data, "searchSpaceFile": None, "searchSpace": space}).json()
    assert inline["searchSpace"] == space


@pytest.mark.parametrize("space", ODD_SPACES[:2], ids=["list-param", "top-list"])
def test_builtin_tuner_gets_the_standard_check(tmp_path, space):
    data = _config(tmp_path, space, {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}})
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.from_dict(data).json()
    assert info.value.field == "searchSpaceFile" and "\n" not in str(info.value)


def test_registered_algorithm_is_custom(tmp_path, algos):
    registry.register_user_algorithm({"algoType": "tuner", "builtinName": "PlainOne", "className": "nni_ss_owner_algos.PlainTuner"}, algos)
    assert not is_builtin_algorithm("tuner", {"name": "PlainOne"})
    assert is_builtin_algorithm("tuner", {"name": "TPE"})
    assert not is_builtin_algorithm("tuner", {"className": "a.B", "codeDirectory": "/x"})
    canon = ExperimentConfig.from_dict(_config(tmp_path, [1, 2], {"name": "PlainOne"})).json()
    assert canon["searchSpace"] == [1, 2]


def test_the_class_hook_is_the_only_check(tmp_path, algos):
    picky = {"className": "nni_ss_owner_algos.PickyTuner", "codeDirectory": str(algos)}
    assert ExperimentConfig.from_dict(_config(tmp_path, [{"_type": "anything"}], picky)).json()["searchSpace"] == [{"_type": "anything"}]
    with pytest.raises(ConfigError, match=r"^searchSpaceFile: rejected by tuner nni_ss_owner_algos.PickyTuner: PickyTuner wants a list of candidates$"):
        ExperimentConfig.from_dict(_config(tmp_path, {"x": {"_type": "choice", "_value": [1]}}, picky)).json()


def test_advisor_owns_the_space(tmp_path, algos):
    config = {"tuner": None, "advisor": {"className": "nni_ss_owner_algos.PlainTuner", "codeDirectory": str(algos)}}
    assert search_space_owner(config)[0] == "advisor"
    check_search_space(config, [1, 2])  # custom advisor: as written
    with pytest.raises(ConfigError, match="^searchSpace: the search space must be a JSON object"):
        check_search_space({"tuner": None, "advisor": {"name": "BOHB"}}, [1, 2])


def test_v1_custom_tuner_from_files_with_its_own_format(tmp_path, algos):
    (tmp_path / "space.json").write_text(json.dumps({"x": [1, 100]}))
    (tmp_path / "config.yml").write_text(textwrap.dedent(f"""\
        authorName: nni
        experimentName: naive
        trialConcurrency: 1
        trainingServicePlatform: local
        searchSpacePath: space.json
        useAnnotation: false
        multiPhase: false
        tuner:
          codeDir: {algos}
          classFileName: nni_ss_owner_algos.py
          className: PlainTuner
        trial:
          command: python3 t.py
          codeDir: .
          gpuNum: 0
        """))
    canon = ExperimentConfig.load(tmp_path / "config.yml").json()
    assert canon["searchSpace"] == {"x": [1, 100]}
    assert canon["tuner"]["className"] == "nni_ss_owner_algos.PlainTuner"
