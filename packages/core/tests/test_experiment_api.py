"""``nni.experiment.Experiment`` without a manager: construction, records, install hint."""
from __future__ import annotations

import importlib.util

import pytest

from nni.experiment import Experiment, ExperimentConfig
from nni.experiment.data import TrialJob, TrialMetricData, TrialResult
from nni.experiment.experiment import INSTALL_HINT, RunningExperimentError


def test_construct_from_platform_and_config():
    exp = Experiment("local")
    assert exp.config.training_service.platform == "local"
    exp.config.tuner.name = "TPE"
    exp.config.tuner.class_args["optimize_mode"] = "maximize"
    assert Experiment(exp.config).config is exp.config
    assert Experiment(config=exp.config).config is exp.config
    assert isinstance(Experiment(training_service="local").config, ExperimentConfig)


def test_missing_server_gives_install_hint(monkeypatch):
    real = importlib.util.find_spec

    def fake(name, *a, **k):
        return None if name.startswith("nni.server") else real(name, *a, **k)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    exp = Experiment("local")
    with pytest.raises(RunningExperimentError) as err:
        exp.start(8080)
    assert str(err.value) == INSTALL_HINT and "pip install nni-webui-server" in str(err.value)
    with pytest.raises(RunningExperimentError, match="nni-webui-server"):
        Experiment.resume("abcdefgh")


def test_not_started_is_a_clear_error():
    with pytest.raises(RunningExperimentError, match="not started or connected"):
        Experiment("local").get_status()


def test_records_decode_rest_shapes():
    r = TrialResult.from_json({"parameter": {"C": 0.5}, "value": "0.98", "trialJobId": "VLqU9"})
    assert r == TrialResult(parameter={"C": 0.5}, value=0.98, trialJobId="VLqU9")
    assert repr(r) == "TrialResult(parameter={'C': 0.5}, value=0.98, trialJobId='VLqU9')"
    m = TrialMetricData.from_json({"timestamp": 1, "trialJobId": "DLo6r", "parameterId": "1", "type": "FINAL", "sequence": 0, "data": '{"default": 0.8, "loss": 1}'})
    assert m.data == {"default": 0.8, "loss": 1} and m.parameterId == "1"
    job = TrialJob.from_json(
        {
            "trialJobId": "a",
            "status": "SUCCEEDED",
            "sequenceId": 0,
            "hyperParameters": ['{"parameter_id": 0, "parameter_source": "algorithm", "parameters": {"x": 1}, "parameter_index": 0}'],
            "finalMetricData": [{"timestamp": 1, "trialJobId": "a", "parameterId": "0", "type": "FINAL", "sequence": 0, "data": "1"}],
        }
    )
    assert job.hyperParameters[0].parameters == {"x": 1} and job.finalMetricData[0].data == 1
