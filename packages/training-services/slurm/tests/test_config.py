"""SlurmConfig: every field checked, one-line errors naming the field; found through the registry."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from nni.experiment.config import ExperimentConfig
from nni.experiment.config.base import ConfigError
from nni.runtime import registry
from nni.training_services.slurm import SlurmConfig, SlurmTrainingService


def canonical(ts, **top):
    fields = dict(trial_command="python3 trial.py", trial_concurrency=2, search_space={}, tuner={"name": "Random"})
    fields.update(top)
    config = ExperimentConfig(training_service=ts, **fields)
    out = config.canonical_copy() if hasattr(config, "canonical_copy") else config.json()
    services = out["trainingService"]
    return services if len(services) > 1 else services[0]


def error(ts, **top) -> str:
    with pytest.raises(ConfigError) as info:
        canonical(ts, **top)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_defaults_and_conversions():
    c = canonical({"platform": "slurm", "partition": "gpu", "account": "proj-1", "qos": "normal", "timeLimit": "1.5h",
                   "cpusPerTrial": 4, "memoryPerTrial": "8gb", "sbatchArgs": "--constraint=v100 --nice=10",
                   "setupScript": "module load cuda"})
    assert c["platform"] == "slurm" and c["timeLimit"] == 5400 and c["memoryPerTrial"] == 8192
    assert c["sbatchArgs"] == ["--constraint=v100", "--nice=10"]
    assert c["gpusPerTrial"] == 0 and c["reuseMode"] is True and c["maxRunners"] is None
    plain = canonical({"platform": "slurm"})
    assert plain["cpusPerTrial"] == 1 and plain["sbatchArgs"] == [] and plain["nniManagerIp"] is None


def test_gpus_and_manager_ip_come_from_the_experiment():
    c = canonical({"platform": "slurm"}, trial_gpu_number=2, nni_manager_ip="10.0.0.5")
    assert c["gpusPerTrial"] == 2 and c["nniManagerIp"] == "10.0.0.5"
    assert canonical({"platform": "slurm", "nniManagerIp": "login1"}, nni_manager_ip="10.0.0.5")["nniManagerIp"] == "login1"
    msg = error({"platform": "slurm", "gpusPerTrial": 1}, trial_gpu_number=2)
    assert msg.startswith("trainingService.gpusPerTrial:") and "trialGpuNumber 2" in msg


@pytest.mark.parametrize("ts, field, words", [
    ({"sbatchArgs": ["--output=/tmp/x"]}, "trainingService.sbatchArgs[0]", "collects the job's output"),
    ({"sbatchArgs": ["--nice=1", "-J", "x"]}, "trainingService.sbatchArgs[1]", "names its jobs"),
    ({"sbatchArgs": "--wrap 'echo hi'"}, "trainingService.sbatchArgs", "writes the batch script"),
    ({"sbatchArgs": ["constraint=v100"]}, "trainingService.sbatchArgs[0]", "starting with '-'"),
    ({"sbatchArgs": ["--export=NONE"]}, "trainingService.sbatchArgs[0]", "token"),
    ({"sbatchArgs": {"a": 1}}, "trainingService.sbatchArgs", "list of sbatch options"),
    ({"sbatchArgs": [3]}, "trainingService.sbatchArgs[0]", "non-empty string"),
    ({"partition": "gpu queue"}, "trainingService.partition", "SLURM partition name"),
    ({"timeLimit": "forever"}, "trainingService.timeLimit", "duration"),
    ({"memoryPerTrial": "lots"}, "trainingService.memoryPerTrial", "size"),
    ({"cpusPerTrial": 0}, "trainingService.cpusPerTrial", ">= 1"),
    ({"gpusPerTrial": -1}, "trainingService.gpusPerTrial", ">= 0"),
    ({"reuseMode": False, "maxRunners": 2}, "trainingService.maxRunners", "reuse mode"),
    ({"maxRunners": 0}, "trainingService.maxRunners", ">= 1"),
    ({"pythonPath": "venv/bin"}, "trainingService.pythonPath", "absolute"),
    ({"partiton": "gpu"}, "trainingService.partiton", "did you mean 'partition'"),
])
def test_bad_fields_fail_in_one_line(ts, field, words):
    msg = error({"platform": "slurm", **ts})
    assert msg.startswith(field + ":"), msg
    assert words in msg, msg


def test_export_all_with_extra_variables_is_allowed():
    assert canonical({"platform": "slurm", "sbatchArgs": ["--export=ALL,OMP_NUM_THREADS=1"]})["sbatchArgs"] == ["--export=ALL,OMP_NUM_THREADS=1"]


def test_hybrid_with_local_is_accepted():
    services = canonical([{"platform": "local"}, {"platform": "slurm", "partition": "debug"}])
    assert [s["platform"] for s in services] == ["local", "slurm"]


def test_registered_by_entry_point():
    assert "slurm" in registry.list_names("training_service")
    assert registry.load_class("training_service", "slurm") is SlurmTrainingService
    assert SlurmTrainingService.config_class is SlurmConfig


def test_loader_finds_the_config_class_without_importing_the_package_first(tmp_path):
    # A fresh process, as nnictl: `platform: slurm` must be checked by SlurmConfig, found
    # through the service class the entry point names.
    code = textwrap.dedent("""
        import sys
        from nni.experiment.config import ExperimentConfig
        from nni.experiment.config.base import ConfigError
        assert "nni.training_services.slurm" not in sys.modules
        try:
            ExperimentConfig(trial_command="t", trial_concurrency=1, search_space={}, tuner={"name": "Random"},
                             training_service={"platform": "slurm", "sbatchArgs": ["--array=1-3"]}).json()
        except ConfigError as err:
            print(err)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("trainingService.sbatchArgs[0]: '--array=1-3' is not allowed"), out.stdout + out.stderr
