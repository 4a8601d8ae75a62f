"""nni-core's training-service contract suite against OpenpaiTrainingService over OpenpaiStandIn
(the storage-path layout; DLC and DLTS share the same base class)."""
from __future__ import annotations

import pytest

from nni.testing.training_service import TrainingServiceContract
from nni.training_services.cloud.openpai import OpenpaiTrainingService
from nni.training_services.cloud.testing import OpenpaiStandIn


class TestOpenpaiContract(TrainingServiceContract):
    timeout = 60

    @pytest.fixture(autouse=True)
    def _standin(self, tmp_path):
        self.tmp = tmp_path
        with OpenpaiStandIn(tmp_path / "pai") as server:
            self.server = server
            yield

    def make_service(self, context, config=None):
        storage = str(self.tmp / "storage")
        return OpenpaiTrainingService({"platform": "openpai", "host": self.server.url, "username": self.server.username,
                                       "token": self.server.token, "trialCpuNumber": 1, "trialMemorySize": 1024,
                                       "storageConfigName": "confignfs-data", "localStorageMountPoint": storage,
                                       "containerStorageMountPoint": storage, **(config or {})}, context)
