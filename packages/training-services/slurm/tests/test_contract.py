"""The training-service contract suite of nni-core, run against a real SLURM cluster."""
from __future__ import annotations

import pytest

from nni.testing.training_service import TrainingServiceContract
from nni.training_services.slurm import SlurmTrainingService


@pytest.mark.slow
class TestSlurmContract(TrainingServiceContract):
    timeout = 90

    @pytest.fixture(autouse=True)
    def _cluster(self, slurm):
        yield slurm

    def make_service(self, context, config=None):
        return SlurmTrainingService({"platform": "slurm", "sbatchArgs": [], **(config or {})}, context)
