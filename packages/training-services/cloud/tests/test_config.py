"""Config validation of the four cloud platforms: every documented field, one-line errors.

Core's config classes (nni.experiment.config: OpenpaiConfig, AmlConfig, DlcConfig, DltsConfig)
check types, required fields and ranges when nnictl loads the config; the services add the
checks that need the platform's rules (job protocol, Azure names, DLC region ...), raised when
the manager creates the service."""
from __future__ import annotations

import re

import pytest

from nni.experiment.config import ExperimentConfig
from nni.experiment.config.base import ConfigError
from nni.runtime.training_service import ExperimentContext
from nni.training_services.cloud.aml import AmlTrainingService
from nni.training_services.cloud.dlc import DlcTrainingService
from nni.training_services.cloud.dlts import DltsTrainingService
from nni.training_services.cloud.openpai import OpenpaiTrainingService, build_job_protocol

PAI = dict(platform="openpai", host="10.1.1.1", username="alice", token="t0k", trialCpuNumber=1, trialMemorySize="8gb",
           storageConfigName="confignfs-data", localStorageMountPoint="/tmp", containerStorageMountPoint="/mnt/confignfs-data")
AML = dict(platform="aml", subscriptionId="01234567-89ab-cdef-0123-456789abcdef", resourceGroup="rg-1", workspaceName="ws-1",
           computeTarget="cpu-cluster")
DLC = dict(platform="dlc", image="registry-vpc.cn-beijing.aliyuncs.com/pai-dlc/pytorch-training:1.6.0", jobType="PyTorchJob", podCount=1,
           ecsSpec="ecs.c6.large", region="cn-hangzhou", nasDataSourceId="datat56by9n1xt0a", accessKeyId="ak", accessKeySecret="sk")
DLTS = dict(platform="dlts", dashboard="http://dlts.example.com/")


def canonical(ts: dict) -> dict:
    config = ExperimentConfig(trialCommand="python3 trial.py", trialCodeDirectory="/tmp", trialConcurrency=1,
                              searchSpace={}, tuner={"name": "Random"}, trainingService=ts)
    out = config.to_canonical_dict(check_algorithms=False)["trainingService"]
    return out[0] if isinstance(out, list) else out


def one_line_error(ts: dict) -> str:
    with pytest.raises(ConfigError) as info:
        canonical(ts)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("ts, expected", [
    (dict(PAI, token=""), r"^trainingService\.token: must not be empty"),
    (dict(PAI, host="ftp://x"), r"^trainingService\.host: expected a host name"),
    (dict(PAI, trialCpuNumber=0), r"^trainingService\.trialCpuNumber: expected an integer >= 1"),
    (dict(PAI, trialMemorySize="8 bananas"), r"^trainingService\.trialMemorySize: expected a size"),
    (dict(PAI, containerStorageMountPoint="mnt/x"), r"^trainingService\.containerStorageMountPoint: must be an absolute path"),
    (dict(PAI, storageConfigName=None), r"^trainingService\.storageConfigName: required field is missing"),
    (dict(PAI, reuseMode="maybe"), r"^trainingService\.reuseMode: "),
    (dict(PAI, openpaiConfigFile="/no/such/pai.yml"), r"^trainingService\.openpaiConfigFile: "),
    (dict(PAI, virtualClster="vc1"), r"^trainingService\.virtualClster: unknown field .*virtualCluster"),
    ({k: v for k, v in AML.items() if k != "computeTarget"}, r"^trainingService\.computeTarget: required field is missing"),
    (dict(AML, maxTrialNumberPerGpu=0), r"^trainingService\.maxTrialNumberPerGpu: expected an integer >= 1"),
    (dict(AML, useActiveGpu="yes please"), r"^trainingService\.useActiveGpu: "),
    (dict(DLC, jobType="MPI"), r"^trainingService\.jobType: expected one of TFJob, PyTorchJob"),
    (dict(DLC, podCount="zero"), r"^trainingService\.podCount: expected a positive integer"),
    (dict(DLC, accessKeySecret=""), r"^trainingService\.accessKeySecret: must not be empty"),
    ({k: v for k, v in DLTS.items() if k != "dashboard"}, r"^trainingService\.dashboard: required field is missing"),
])
def test_core_checks_every_field(ts, expected):
    assert re.search(expected, one_line_error(ts))


def test_documented_examples_are_valid():
    pai = canonical(PAI)
    assert pai["host"] == "https://10.1.1.1" and pai["trialMemorySize"] == 8192 and pai["reuseMode"] is True
    assert canonical(dict(PAI, platform="pai"))["platform"] == "openpai"
    assert canonical(AML)["dockerImage"] == "msranni/nni:latest"
    assert canonical(dict(DLC, podCount="2"))["podCount"] == 2
    assert canonical(DLTS)["dashboard"] == "http://dlts.example.com/"


def _ctx(tmp_path):
    return ExperimentContext("cfgexp01", str(tmp_path / "exp"), "python3 trial.py", str(tmp_path))


@pytest.mark.parametrize("cls, ts, expected", [
    (AmlTrainingService, dict(AML, subscriptionId="my-subscription"), r"^trainingService\.subscriptionId: expected an Azure subscription id"),
    (AmlTrainingService, dict(AML, resourceGroup="rg."), r"^trainingService\.resourceGroup: "),
    (AmlTrainingService, dict(AML, workspaceName="w"), r"^trainingService\.workspaceName: expected 3-33"),
    (AmlTrainingService, dict(AML, computeTarget="cpu cluster"), r"^trainingService\.computeTarget: expected an AML compute cluster name"),
    (DlcTrainingService, dict(DLC, region="cn hangzhou"), r"^trainingService\.region: expected an Alibaba Cloud region id"),
    (DlcTrainingService, dict(DLC, type=""), r"^trainingService\.type: expected a PAI-DLC job spec type"),
    (DlcTrainingService, dict(DLC, ecsSpec="ecs c6"), r"^trainingService\.ecsSpec: must be a non-empty value without spaces"),
    (DlcTrainingService, dict(DLC, containerStorageMountPoint="root/data"), r"^trainingService\.containerStorageMountPoint: must be an absolute"),
    (DltsTrainingService, dict(DLTS, dashboard="dlts.example.com"), r"^trainingService\.dashboard: expected the cluster dashboard URL"),
    (OpenpaiTrainingService, dict(PAI, openpaiConfig={"taskRoles": 3}), r"^trainingService\.openpaiConfig\.taskRoles: required: a mapping"),
    (OpenpaiTrainingService, dict(PAI, openpaiConfig={"protocolVersion": 1, "taskRoles": {"a": {}}}),
     r"^trainingService\.openpaiConfig\.protocolVersion: must be 2"),
    (OpenpaiTrainingService, dict(PAI, openpaiConfig={"taskRoles": {"worker": {"instances": 0}}}),
     r"^trainingService\.openpaiConfig\.taskRoles\.worker\.instances: must be a positive integer"),
    (OpenpaiTrainingService, dict(PAI, openpaiConfig={"taskRoles": {"worker": {"dockerImage": "img"}}}),
     r"^trainingService\.openpaiConfig\.taskRoles\.worker\.dockerImage: 'img' names no dockerimage prerequisite"),
    (OpenpaiTrainingService, dict(PAI, openpaiConfig={"taskRoles": {"worker": {"resourcePerInstance": {"gpu": -1}}}}),
     r"^trainingService\.openpaiConfig\.taskRoles\.worker\.resourcePerInstance\.gpu: must be a non-negative integer"),
])
def test_platform_rules_checked_when_the_service_is_made(tmp_path, monkeypatch, cls, ts, expected):
    import re

    for key in ("DLTS_CLUSTER", "DLTS_TEAM", "DLTS_EMAIL", "DLTS_PASSWORD"):
        monkeypatch.setenv(key, "x")
    with pytest.raises(ConfigError) as info:
        cls(canonical(ts) if cls is not OpenpaiTrainingService else dict(canonical(PAI), **{k: v for k, v in ts.items() if k == "openpaiConfig"}),
            _ctx(tmp_path))
    assert re.search(expected, str(info.value)) and "\n" not in str(info.value)


def test_openpai_config_file_is_checked_and_used_as_the_template(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("taskRoles: [1, 2\n")
    with pytest.raises(ConfigError, match=r"^trainingService\.openpaiConfigFile: .* is not valid YAML"):
        OpenpaiTrainingService(dict(canonical(PAI), openpaiConfigFile=str(bad)), _ctx(tmp_path))
    good = tmp_path / "pai.yml"
    good.write_text("protocolVersion: 2\nname: mine\ntype: job\nprerequisites:\n  - {type: dockerimage, uri: 'custom/image:1', name: img}\n"
                    "taskRoles:\n  main:\n    instances: 1\n    dockerImage: img\n    resourcePerInstance: {cpu: 4, memoryMB: 16384, gpu: 1}\n"
                    "    commands: [pip install -r requirements.txt]\n  ps:\n    instances: 1\n    dockerImage: img\n    commands: [sleep 1]\n"
                    "defaults: {virtualCluster: vc2}\n")
    ts = OpenpaiTrainingService(dict(canonical(PAI), openpaiConfigFile=str(good), trialCpuNumber=1), _ctx(tmp_path))
    job = build_job_protocol(ts.config, "nni_exp_x_trial_y", "python3 -m runner", "tok", 0, ts.template)
    assert job["name"] == "nni_exp_x_trial_y"  # the job name is replaced
    main, ps = job["taskRoles"]["main"], job["taskRoles"]["ps"]
    assert main["resourcePerInstance"] == {"cpu": 4, "memoryMB": 16384, "gpu": 1}  # the file's values win
    assert main["commands"][0] == "pip install -r requirements.txt" and "python3 -m runner" in main["commands"][-1]
    assert ps["commands"] == ["sleep 1"] and job["defaults"]["virtualCluster"] == "vc2"
    assert job["prerequisites"] == [{"type": "dockerimage", "uri": "custom/image:1", "name": "img"}]


def test_entry_points_and_the_pai_alias():
    from nni.experiment.config.training_service import training_service_config_class
    from nni.runtime import registry

    for name, cls in (("openpai", OpenpaiTrainingService), ("aml", AmlTrainingService), ("dlc", DlcTrainingService), ("dlts", DltsTrainingService)):
        assert registry.load_class("training_service", name) is cls and cls.platform == name
    assert training_service_config_class("pai").platform_name == "openpai"
