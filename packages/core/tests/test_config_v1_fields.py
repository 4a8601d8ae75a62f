"""Every field of the v1 (legacy) config reference (docs L16608-17501) is accepted: converted
when it has a v2 meaning, otherwise dropped with exactly one warning line naming it.

The table walks the reference in its order; each row adds one field to a minimal v1 config of
the platform the field belongs to, converts it, checks the v2 value (or the warning), and
validates the converted config as v2."""
from __future__ import annotations

import copy
import logging

import pytest

from nni.experiment.config import ConfigError, ExperimentConfig, convert_v1, is_v1

TUNER = {"builtinTunerName": "TPE", "classArgs": {"optimize_mode": "maximize"}}
LOCAL = {"authorName": "test", "experimentName": "e", "trialConcurrency": 1, "trainingServicePlatform": "local",
         "searchSpacePath": "space.json", "tuner": TUNER, "trial": {"command": "python3 t.py", "codeDir": ".", "gpuNum": 0}}
REMOTE = {**LOCAL, "trainingServicePlatform": "remote", "machineList": [{"ip": "10.0.0.1", "username": "u", "passwd": "p"}]}
PAI = {**LOCAL, "trainingServicePlatform": "pai",
       "trial": {"command": "python3 t.py", "codeDir": ".", "gpuNum": 0, "cpuNum": 1, "memoryMB": 1024, "image": "img",
                 "paiStorageConfigName": "s", "nniManagerNFSMountPath": "/mnt", "containerNFSMountPath": "/c"},
       "paiConfig": {"userName": "u", "token": "t", "host": "h"}}
ROLE = {"replicas": 1, "command": "python3 t.py", "gpuNum": 0, "cpuNum": 1, "memoryMB": 1024, "image": "img"}
KUBEFLOW = {**LOCAL, "trainingServicePlatform": "kubeflow", "trial": {"codeDir": ".", "worker": ROLE},
            "kubeflowConfig": {"operator": "tf-operator", "nfs": {"server": "s", "path": "/p"}}}
SHARED = {"storageType": "NFS", "localMountPoint": "/tmp/s", "remoteMountPoint": "s", "localMounted": "nnimount",
          "nfsServer": "n", "exportedDirectory": "/e"}
CUSTOM = {"codeDir": "/algos", "classFileName": "my_algo.py", "className": "MyAlgo", "classArgs": {"a": 1}}
WARN = object()

# (v1 field path, base config, change {dotted v1 path: value}, {dotted v2 path: value} or WARN)
FIELDS = [
    ("authorName", LOCAL, {"authorName": "someone"}, {}),
    ("experimentName", LOCAL, {"experimentName": "x"}, {"experimentName": "x"}),
    ("trialConcurrency", LOCAL, {"trialConcurrency": 5}, {"trialConcurrency": 5}),
    ("maxExecDuration", LOCAL, {"maxExecDuration": "2h"}, {"maxExperimentDuration": "2h"}),
    ("versionCheck", LOCAL, {"versionCheck": False}, WARN),
    ("debug", LOCAL, {"debug": True}, {"debug": True}),
    ("maxTrialNum", LOCAL, {"maxTrialNum": 7}, {"maxTrialNumber": 7}),
    ("maxTrialDuration", LOCAL, {"maxTrialDuration": "1h"}, {"maxTrialDuration": "1h"}),
    ("trainingServicePlatform", LOCAL, {"trainingServicePlatform": "local"}, {"trainingService.platform": "local"}),
    ("searchSpacePath", LOCAL, {"searchSpacePath": "ss.json"}, {"searchSpaceFile": "ss.json"}),
    ("useAnnotation", LOCAL, {"useAnnotation": True, "searchSpacePath": None}, {"useAnnotation": True}),
    ("multiThread", LOCAL, {"multiThread": True}, WARN),
    ("multiPhase", LOCAL, {"multiPhase": False}, WARN),
    ("nniManagerIp", LOCAL, {"nniManagerIp": "10.1.1.1"}, {"nniManagerIp": "10.1.1.1"}),
    ("logDir", LOCAL, {"logDir": "/tmp/logs"}, {"experimentWorkingDirectory": "/tmp/logs"}),
    ("logLevel", LOCAL, {"logLevel": "debug"}, {"logLevel": "debug"}),
    ("logCollection", LOCAL, {"logCollection": "http"}, WARN),
    # tuner
    ("tuner.builtinTunerName", LOCAL, {"tuner.builtinTunerName": "Random", "tuner.classArgs": None}, {"tuner.name": "Random"}),
    ("tuner.codeDir/classFileName/className", LOCAL, {"tuner": CUSTOM},
     {"tuner.className": "my_algo.MyAlgo", "tuner.codeDirectory": "/algos", "tuner.classArgs": {"a": 1}}),
    ("tuner.classArgs", LOCAL, {"tuner.classArgs": {"optimize_mode": "minimize"}}, {"tuner.classArgs": {"optimize_mode": "minimize"}}),
    ("tuner.gpuIndices", LOCAL, {"tuner.gpuIndices": "0,1"}, {"tunerGpuIndices": "0,1"}),
    ("tuner.includeIntermediateResults", LOCAL, {"tuner.includeIntermediateResults": True}, WARN),
    # assessor
    ("assessor.builtinAssessorName", LOCAL, {"assessor": {"builtinAssessorName": "Medianstop", "classArgs": {"optimize_mode": "maximize"}}},
     {"assessor.name": "Medianstop", "assessor.classArgs": {"optimize_mode": "maximize"}}),
    ("assessor.codeDir/classFileName/className", LOCAL, {"assessor": CUSTOM}, {"assessor.className": "my_algo.MyAlgo", "assessor.codeDirectory": "/algos"}),
    # advisor (replaces tuner and assessor)
    ("advisor.builtinAdvisorName", LOCAL, {"tuner": None, "advisor": {"builtinAdvisorName": "BOHB", "classArgs": {"optimize_mode": "maximize"}}},
     {"advisor.name": "BOHB", "advisor.classArgs": {"optimize_mode": "maximize"}}),
    ("advisor.codeDir/classFileName/className", LOCAL, {"tuner": None, "advisor": CUSTOM}, {"advisor.className": "my_algo.MyAlgo"}),
    ("advisor.gpuIndices", LOCAL, {"tuner": None, "advisor": {"builtinAdvisorName": "BOHB", "gpuIndices": "1"}}, {"tunerGpuIndices": "1"}),
    # trial, local and remote
    ("trial.command", LOCAL, {"trial.command": "python3 other.py"}, {"trialCommand": "python3 other.py"}),
    ("trial.codeDir", LOCAL, {"trial.codeDir": "/code"}, {"trialCodeDirectory": "/code"}),
    ("trial.gpuNum", LOCAL, {"trial.gpuNum": 2, "localConfig": {"useActiveGpu": True}}, {"trialGpuNumber": 2}),
    # trial, PAI
    ("trial.cpuNum", PAI, {"trial.cpuNum": 4}, {"trainingService.trialCpuNumber": 4}),
    ("trial.memoryMB", PAI, {"trial.memoryMB": 2048}, {"trainingService.trialMemorySize": "2048mb"}),
    ("trial.image", PAI, {"trial.image": "msranni/nni:latest"}, {"trainingService.dockerImage": "msranni/nni:latest"}),
    ("trial.authFile", PAI, {"trial.authFile": "/auth"}, WARN),
    ("trial.shmMB", PAI, {"trial.shmMB": 64}, WARN),
    ("trial.portList", PAI, {"trial.portList": [{"label": "a", "beginAt": 1, "portNumber": 2}]}, WARN),
    # trial, Kubeflow
    ("trial.codeDir (kubeflow)", KUBEFLOW, {"trial.codeDir": "/code"}, {"trainingService.worker.codeDirectory": "/code"}),
    *[(f"trial.{role}.{key}", KUBEFLOW, {f"trial.{role}": {**ROLE, key: value}}, {f"trainingService.{role}.{v2}": expected})
      for role in ("ps", "worker")
      for key, value, v2, expected in [("replicas", 2, "replicas", 2), ("command", "python3 x.py", "command", "python3 x.py"),
                                       ("gpuNum", 1, "gpuNumber", 1), ("cpuNum", 2, "cpuNumber", 2),
                                       ("memoryMB", 4096, "memorySize", "4096mb"), ("image", "img2", "dockerImage", "img2")]],
    # localConfig
    ("localConfig.gpuIndices", LOCAL, {"localConfig": {"gpuIndices": "0,1,3"}}, {"trainingService.gpuIndices": "0,1,3"}),
    ("localConfig.maxTrialNumPerGpu", LOCAL, {"localConfig": {"maxTrialNumPerGpu": 2}}, {"trainingService.maxTrialNumberPerGpu": 2}),
    ("localConfig.useActiveGpu", LOCAL, {"localConfig": {"useActiveGpu": True}}, {"trainingService.useActiveGpu": True}),
    # machineList
    *[(f"machineList[0].{key}", REMOTE, {"machineList": [{"ip": "10.0.0.1", "username": "u", "passwd": "p", key: value}]},
       {f"trainingService.machineList.0.{v2}": value})
      for key, value, v2 in [("ip", "h1", "host"), ("port", 2222, "port"), ("username", "bob", "user"), ("passwd", "pw", "password"),
                             ("sshKeyPath", "/k", "sshKeyFile"), ("passphrase", "q", "sshPassphrase"), ("gpuIndices", "0", "gpuIndices"),
                             ("maxTrialNumPerGpu", 2, "maxTrialNumberPerGpu"), ("useActiveGpu", True, "useActiveGpu"),
                             ("pythonPath", "/py/bin", "pythonPath")]],
    ("remoteConfig.reuse", REMOTE, {"remoteConfig": {"reuse": True}}, {"trainingService.reuseMode": True}),
    # kubeflowConfig
    ("kubeflowConfig.operator", KUBEFLOW, {"kubeflowConfig.operator": "pytorch-operator", "trial.master": ROLE, "trial.worker": ROLE},
     {"trainingService.operator": "pytorch-operator"}),
    ("kubeflowConfig.storage/nfs", KUBEFLOW, {"kubeflowConfig": {"operator": "tf-operator", "storage": "nfs", "nfs": {"server": "s2", "path": "/q"}}},
     {"trainingService.storage.storageType": "nfs", "trainingService.storage.server": "s2", "trainingService.storage.path": "/q"}),
    ("kubeflowConfig.keyVault/azureStorage/uploadRetryCount", KUBEFLOW,
     {"kubeflowConfig": {"operator": "tf-operator", "storage": "azureStorage", "keyVault": {"vaultName": "v", "name": "n"},
                         "azureStorage": {"accountName": "a", "azureShare": "s"}, "uploadRetryCount": 3}},
     {"trainingService.storage.keyVaultName": "v", "trainingService.storage.keyVaultKey": "n", "trainingService.storage.azureAccount": "a",
      "trainingService.storage.azureShare": "s", "trainingService.storage.uploadRetryCount": 3}),
    # paiConfig
    ("paiConfig.userName", PAI, {"paiConfig.userName": "alice"}, {"trainingService.username": "alice"}),
    ("paiConfig.password", PAI, {"paiConfig.password": "secret"}, WARN),
    ("paiConfig.token", PAI, {"paiConfig.token": "tok"}, {"trainingService.token": "tok"}),
    ("paiConfig.host", PAI, {"paiConfig.host": "pai.example"}, {"trainingService.host": "pai.example"}),
    ("paiConfig.reuse", PAI, {"paiConfig.reuse": True}, {"trainingService.reuseMode": True}),
    # sharedStorage
    *[(f"sharedStorage.{key}", REMOTE, {"remoteConfig": {"reuse": True}, "sharedStorage": {**SHARED, key: value}}, {f"sharedStorage.{key}": value})
      for key, value in [("storageType", "NFS"), ("localMountPoint", "/tmp/t"), ("remoteMountPoint", "r"), ("localMounted", "usermount"),
                         ("nfsServer", "n2"), ("exportedDirectory", "/x")]],
    *[(f"sharedStorage.{key}", REMOTE, {"remoteConfig": {"reuse": True},
                                        "sharedStorage": {"storageType": "AzureBlob", "localMountPoint": "/tmp/b", "remoteMountPoint": "b",
                                                          "localMounted": "nnimount", "storageAccountName": "a", "storageAccountKey": "k",
                                                          "containerName": "c", key: value}},
       {f"sharedStorage.{key}": value})
      for key, value in [("storageAccountName", "acc"), ("storageAccountKey", "key"), ("containerName", "cont")]],
]


def _apply(base: dict, change: dict) -> dict:
    data = copy.deepcopy(base)
    for path, value in change.items():
        *parents, last = path.split(".")
        target = data
        for p in parents:
            target = target[p]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = copy.deepcopy(value)
    return data


def _at(data, path: str):
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("field, base, change, expected", FIELDS, ids=[f[0] for f in FIELDS])
def test_every_v1_field_is_accepted(field, base, change, expected, caplog):
    data = _apply(base, change)
    assert is_v1(data)
    with caplog.at_level(logging.WARNING, logger="nni.experiment.config"):
        out = convert_v1(data)
    warnings = _warnings(caplog)
    if expected is WARN:
        assert len(warnings) == 1, warnings
        assert f"v1 field {field} " in warnings[0] and "\n" not in warnings[0]
    else:
        assert warnings == [], warnings
        for path, value in expected.items():
            assert _at(out, path) == value, (path, out)
    # the result is a valid v2 config (files and the algorithm registry are not consulted here)
    ExperimentConfig.from_dict(out).validate(check_algorithms=False)


def test_the_table_covers_the_reference():
    covered = {f[0].split(" ")[0] for f in FIELDS}
    reference_top = {"authorName", "experimentName", "trialConcurrency", "maxExecDuration", "versionCheck", "debug", "maxTrialNum",
                     "maxTrialDuration", "trainingServicePlatform", "searchSpacePath", "useAnnotation", "multiThread", "nniManagerIp",
                     "logDir", "logLevel", "logCollection"}
    assert reference_top <= covered
    for section in ("tuner", "assessor", "advisor", "trial", "localConfig", "machineList[0]", "remoteConfig", "kubeflowConfig",
                    "paiConfig", "sharedStorage"):
        assert any(f.startswith(section + ".") for f in covered), section


def test_multi_phase(caplog):
    with caplog.at_level(logging.WARNING, logger="nni.experiment.config"):
        out = convert_v1({**LOCAL, "multiPhase": False})
    (message,) = _warnings(caplog)
    assert message.startswith("v1 field multiPhase is ignored: ") and "get_next_parameter() returns None after the first call" in message
    assert "multiPhase" not in out
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nni.experiment.config"):
        out = convert_v1({**LOCAL, "multiPhase": True})
    assert _warnings(caplog) == [] and out["multiPhase"] is True
    assert ExperimentConfig.from_dict(out).to_canonical_dict(check_algorithms=False, check_files=False)["multiPhase"] is True
    with pytest.raises(ConfigError, match="^multiPhase: "):
        ExperimentConfig.from_dict({**LOCAL, "multiPhase": "sometimes"}).validate(check_algorithms=False)


def test_field_of_another_platform_is_reported_not_silently_dropped(caplog):
    with caplog.at_level(logging.WARNING, logger="nni.experiment.config"):
        out = convert_v1(_apply(LOCAL, {"trial.cpuNum": 2, "trial.image": "img"}))
    assert sorted(_warnings(caplog)) == ["v1 field trial.cpuNum is not used by this config and is ignored",
                                         "v1 field trial.image is not used by this config and is ignored"]
    assert out["trainingService"] == {"platform": "local", "useActiveGpu": False}


def test_misspelt_field_is_still_an_error():
    with pytest.raises(ConfigError, match=r"^multiPhases: unknown v1 field 'multiPhases'; did you mean 'multiPhase'\?$"):
        convert_v1({**LOCAL, "multiPhases": False})


def test_aml_dlc_and_hybrid_platforms_convert():
    aml = convert_v1({**LOCAL, "trainingServicePlatform": "aml", "trial": {**LOCAL["trial"], "image": "msranni/nni"},
                      "amlConfig": {"subscriptionId": "s", "resourceGroup": "r", "workspaceName": "w", "computeTarget": "c",
                                    "maxTrialNumPerGpu": 2, "useActiveGpu": True}})
    assert aml["trainingService"] == {"platform": "aml", "subscriptionId": "s", "resourceGroup": "r", "workspaceName": "w",
                                      "computeTarget": "c", "useActiveGpu": True, "maxTrialNumberPerGpu": 2, "dockerImage": "msranni/nni"}
    dlc_fields = {"type": "Worker", "image": "i", "jobType": "PyTorchJob", "podCount": 1, "ecsSpec": "e", "region": "r",
                  "nasDataSourceId": "n", "accessKeyId": "a", "accessKeySecret": "k", "localStorageMountPoint": "/l",
                  "containerStorageMountPoint": "/c"}
    dlc = convert_v1({**LOCAL, "trainingServicePlatform": "dlc", "dlcConfig": dlc_fields})
    assert dlc["trainingService"] == {"platform": "dlc", **dlc_fields}
    hybrid = convert_v1({**REMOTE, "trainingServicePlatform": "hybrid", "hybridConfig": {"trainingServicePlatforms": ["local", "remote"]}})
    assert [ts["platform"] for ts in hybrid["trainingService"]] == ["local", "remote"]
    for out in (aml, dlc, hybrid):
        ExperimentConfig.from_dict(out).validate(check_algorithms=False)
    with pytest.raises(ConfigError, match=r"^hybridConfig.trainingServicePlatforms: expected a non-empty list"):
        convert_v1({**LOCAL, "trainingServicePlatform": "hybrid", "hybridConfig": {"trainingServicePlatforms": ["kubeflow"]}})
