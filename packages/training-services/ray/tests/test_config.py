"""RayConfig: every field checked, one-line errors naming the field; found through the registry."""
from __future__ import annotations

import subprocess
import sys

import pytest

from nni.experiment.config import ExperimentConfig
from nni.experiment.config.base import ConfigError
from nni.runtime import registry
from nni.training_services.ray import RayConfig, RayTrainingService


def canonical(ts, **top):
    fields = dict(trial_command="python3 trial.py", trial_concurrency=2, search_space={}, tuner={"name": "Random"})
    fields.update(top)
    out = ExperimentConfig(training_service=ts, **fields).json()
    services = out["trainingService"]
    return services if isinstance(services, list) and len(services) > 1 else (services[0] if isinstance(services, list) else services)


def error(ts, **top) -> str:
    with pytest.raises(ConfigError) as info:
        canonical(ts, **top)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_defaults():
    c = canonical({"platform": "ray"})
    assert c == {"platform": "ray", "address": None, "numCpusPerTrial": 1, "numGpusPerTrial": 0, "resources": {},
                 "localClusterCpus": None, "localClusterGpus": None, "reuseMode": True, "nniManagerIp": None}


def test_values_are_kept_and_gpus_and_manager_ip_come_from_the_experiment():
    c = canonical({"platform": "ray", "address": "head-1:6379", "numCpusPerTrial": 0.5, "resources": {"accelerator_type:A100": 1, "ssd": 0.25}},
                  trial_gpu_number=1, nni_manager_ip="10.0.0.5")
    assert c["address"] == "head-1:6379" and c["numCpusPerTrial"] == 0.5 and c["numGpusPerTrial"] == 1
    assert c["resources"] == {"accelerator_type:A100": 1, "ssd": 0.25} and c["nniManagerIp"] == "10.0.0.5"
    assert canonical({"platform": "ray", "address": "auto"})["address"] == "auto"
    assert canonical({"platform": "ray", "address": "ray://10.1.2.3:10001"})["address"] == "ray://10.1.2.3:10001"
    assert canonical({"platform": "ray", "localClusterCpus": 4, "reuseMode": False})["localClusterCpus"] == 4


@pytest.mark.parametrize("ts, top, field, words", [
    ({"address": "not an address"}, {}, "address", "'HOST:PORT'"),
    ({"address": "h:1", "localClusterCpus": 2}, {}, "localClusterCpus", "local cluster"),
    ({"numCpusPerTrial": -1}, {}, "numCpusPerTrial", ">= 0"),
    ({"numCpusPerTrial": "two"}, {}, "numCpusPerTrial", "got str"),
    ({"numCpusPerTrial": 1.5}, {}, "numCpusPerTrial", "fraction below 1 or a whole number"),
    ({"numGpusPerTrial": 1}, {"trial_gpu_number": 2}, "numGpusPerTrial", "trialGpuNumber 2"),
    ({"numGpusPerTrial": True}, {}, "numGpusPerTrial", "got bool"),
    ({"resources": [1]}, {}, "resources", "mapping"),
    ({"resources": {"CPU": 2}}, {}, "resources['CPU']", "numCpusPerTrial"),
    ({"resources": {"memory": 2}}, {}, "resources['memory']", "not a per-trial resource"),
    ({"resources": {"ssd": 0}}, {}, "resources['ssd']", "> 0"),
    ({"resources": {"bad name!": 1}}, {}, "resources['bad name!']", "resource name"),
    ({"localClusterCpus": 0}, {}, "localClusterCpus", ""),
    ({"nniManagerIp": " "}, {}, "nniManagerIp", "must not be empty"),
    ({"numCpuPerTrial": 1}, {}, "numCpuPerTrial", "numCpusPerTrial"),
])
def test_bad_values_are_one_line_naming_the_field(ts, top, field, words):
    msg = error({"platform": "ray", **ts}, **top)
    assert msg.startswith(f"trainingService.{field}:"), msg
    assert words in msg


def test_hybrid_with_local_is_accepted():
    services = canonical([{"platform": "local"}, {"platform": "ray", "numCpusPerTrial": 2}])
    assert [s["platform"] for s in services] == ["local", "ray"] and services[1]["numCpusPerTrial"] == 2


def test_registered_by_entry_point_with_its_config_class():
    assert "ray" in registry.list_names("training_service")
    assert registry.load_class("training_service", "ray") is RayTrainingService
    assert RayTrainingService.config_class is RayConfig and RayConfig.platform_name == "ray"


def test_importing_the_package_or_validating_a_config_does_not_import_ray():
    code = ("import sys\nfrom nni.experiment.config import ExperimentConfig\n"
            "ExperimentConfig(training_service={'platform': 'ray'}, trial_command='t', trial_concurrency=1, search_space={},"
            " tuner={'name': 'Random'}).json()\nimport nni.training_services.ray\nassert 'ray' not in sys.modules, 'ray imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
