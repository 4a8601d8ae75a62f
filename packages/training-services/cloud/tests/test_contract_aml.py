"""nni-core's training-service contract suite against AmlTrainingService over FakeAzureml
(the run-snapshot layout: absolute paths linked in the run)."""
from __future__ import annotations

import shutil

import pytest

from nni.testing.training_service import TrainingServiceContract
from nni.training_services.cloud.aml import AmlAdapter, AmlTrainingService
from nni.training_services.cloud.testing import FakeAzureml


class TestAmlContract(TrainingServiceContract):
    timeout = 60

    @pytest.fixture(autouse=True)
    def _fake(self, tmp_path):
        self.fake = FakeAzureml(tmp_path / "aml")
        self.made = []
        yield
        for ts in self.made:
            shutil.rmtree(ts.base, ignore_errors=True)

    def make_service(self, context, config=None):
        config = {"platform": "aml", "subscriptionId": "01234567-89ab-cdef-0123-456789abcdef", "resourceGroup": "rg-1",
                  "workspaceName": "ws-1", "computeTarget": "cpu-cluster", **(config or {})}
        ts = AmlTrainingService(config, context, adapter=AmlAdapter(self.fake, config, "nni_exp_contract"))
        self.made.append(ts)
        return ts
