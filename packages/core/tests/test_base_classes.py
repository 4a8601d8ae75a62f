import json

import pytest

from nni import NoMoreTrialError
from nni.assessor import AssessResult, Assessor
from nni.recoverable import Recoverable
from nni.runtime.msg_dispatcher_base import MsgDispatcherBase
from nni.runtime.protocol import CommandType as C
from nni.runtime.protocol import pack_parameter
from nni.testing import drive_dispatcher
from nni.tuner import Tuner


class ThreeTuner(Tuner):
    def __init__(self):
        self.left = 3

    def update_search_space(self, search_space):
        pass

    def generate_parameters(self, parameter_id, **kwargs):
        if not self.left:
            raise NoMoreTrialError()
        self.left -= 1
        return {"id": parameter_id}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        pass


def test_generate_multiple_parameters_stops_at_no_more_trial():
    tuner = ThreeTuner()
    assert tuner.generate_multiple_parameters([1, 2]) == [{"id": 1}, {"id": 2}]
    assert tuner.generate_multiple_parameters([3, 4, 5]) == [{"id": 3}]
    assert tuner.generate_multiple_parameters([6]) == []


def test_base_tuner_defaults():
    tuner = ThreeTuner()
    tuner.trial_end(1, True)
    tuner.import_data([{"parameter": {}, "value": 1}])
    tuner.load_checkpoint()
    tuner.save_checkpoint()
    tuner._on_exit()
    tuner._on_error()
    with pytest.raises(NotImplementedError):
        Tuner().update_search_space({})


def test_assess_result_truthiness():
    assert AssessResult.Good and not AssessResult.Bad
    assert AssessResult(True) is AssessResult.Good and AssessResult.Bad.value is False
    with pytest.raises(NotImplementedError):
        Assessor().assess_trial("t", [1])


def test_checkpoint_path(tmp_path, monkeypatch):
    monkeypatch.delenv("NNI_CHECKPOINT_DIRECTORY", raising=False)
    assert Recoverable().get_checkpoint_path() is None
    monkeypatch.setenv("NNI_CHECKPOINT_DIRECTORY", str(tmp_path / "ckpt"))
    assert Recoverable().get_checkpoint_path() == str(tmp_path / "ckpt")
    assert (tmp_path / "ckpt").is_dir()


class CountingAdvisor(MsgDispatcherBase):
    """A minimal advisor, as the docs' customize-advisor page describes."""

    def __init__(self, budget=2):
        super().__init__()
        self.budget = budget
        self.next_id = 0
        self.metrics = []
        self.ended = []

    def handle_initialize(self, data):
        self.handle_update_search_space(data)
        self.send(C.Initialized, "")

    def handle_update_search_space(self, data):
        self.space = data

    def handle_request_trial_jobs(self, data):
        for _ in range(data):
            self.send(C.NewTrialJob, pack_parameter(self.next_id, {"budget": self.budget}))
            self.next_id += 1

    def handle_report_metric_data(self, data):
        self.metrics.append(data)
        if data["type"] == "PERIODICAL" and data["value"] < 0:
            self.send(C.KillTrialJob, json.dumps(data["trial_job_id"]))

    def handle_trial_end(self, data):
        self.ended.append(data["event"])

    def handle_import_data(self, data):
        self.imported = data

    def handle_add_customized_trial(self, data):
        pass


def test_custom_advisor_dispatching():
    advisor = CountingAdvisor()
    metric = {"parameter_id": 0, "trial_job_id": "T", "type": "PERIODICAL", "sequence": 0, "value": "-1"}
    replies = drive_dispatcher(advisor, [
        (C.Initialize, '{"a": 1}'), (C.RequestTrialJobs, "2"), (C.ReportMetricData, json.dumps(metric)),
        (C.ImportData, json.dumps([{"parameter": {}, "value": '{"default": 2}'}])),
        (C.TrialEnd, json.dumps({"trial_job_id": "T", "event": "EARLY_STOPPED", "hyper_params": ""})), (C.Terminate, ""),
        (C.RequestTrialJobs, "5"),  # after Terminate: never handled
    ])
    assert [c for c, _ in replies] == [C.Initialized, C.NewTrialJob, C.NewTrialJob, C.KillTrialJob]
    assert advisor.metrics[0]["value"] == -1  # decoded from the JSON string
    assert advisor.imported == [{"parameter": {}, "value": {"default": 2}}]
    assert advisor.ended == ["EARLY_STOPPED"] and advisor.stopping


def test_advisor_missing_handler_reports_error():
    class Lazy(MsgDispatcherBase):
        pass

    with pytest.raises(NotImplementedError):
        drive_dispatcher(Lazy(), [(C.Initialize, "{}")])
