"""A corpus of malformed experiment configs: each must fail with one line naming the field path."""
from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import yaml

from nni.experiment import ConfigError, ExperimentConfig
from nni.runtime import registry

ALGOS = '''
from nni.utils import ClassArgsValidator

class Fake:
    pass

class ModeValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs):
        self.check(kwargs, optional={'optimize_mode': self.choices('optimize_mode', 'maximize', 'minimize')})
'''


@pytest.fixture(autouse=True)
def fake_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_CONFIG_DIR", str(tmp_path / "nni-config"))
    monkeypatch.setattr(registry, "_builtin_entries", lambda kind: [])
    code = tmp_path / "algos"
    code.mkdir()
    (code / "nni_cfg_err_algos.py").write_text(ALGOS)
    algos = [{"algoType": kind, "builtinName": name, "className": "nni_cfg_err_algos.Fake",
               "classArgsValidator": "nni_cfg_err_algos.ModeValidator", "codeDir": str(code)}
             for kind, name in [("tuner", "TPE"), ("tuner", "Random"), ("assessor", "Medianstop"), ("advisor", "BOHB")]]
    registry.user_registry_path().parent.mkdir(parents=True)
    registry.user_registry_path().write_text(json.dumps({"algorithms": algos}))  # JSON is YAML
    # Serve them as installed (built-in) algorithms: only those get the standard search-space check.
    user_entries = registry._user_entries
    monkeypatch.setattr(registry, "_builtin_entries", lambda kind: [dataclasses.replace(e, source="builtin") for e in user_entries(kind)])
    monkeypatch.setattr(registry, "_user_entries", lambda kind: [])


BASE = {
    "searchSpace": {"x": {"_type": "choice", "_value": [1, 2]}},
    "trialCommand": "python3 t.py",
    "trialConcurrency": 1,
    "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}},
    "trainingService": {"platform": "local"},
}
REMOTE = {"platform": "remote", "machineList": [{"host": "a", "user": "u", "password": "p"}, {"host": "b", "user": "u", "password": "p"}]}
OPENPAI = {"platform": "openpai", "host": "h", "username": "u", "token": "t", "trialCpuNumber": 1, "trialMemorySize": "1gb",
           "storageConfigName": "s", "localStorageMountPoint": "/mnt", "containerStorageMountPoint": "/c"}
AML = {"platform": "aml", "subscriptionId": "s", "resourceGroup": "r", "workspaceName": "w", "computeTarget": "c"}
DLC = {"platform": "dlc", "image": "i", "podCount": 1, "ecsSpec": "e", "region": "r", "nasDataSourceId": "n",
       "accessKeyId": "a", "accessKeySecret": "s"}
ROLE = {"command": "python3 t.py", "cpuNumber": 1, "memorySize": "1g"}
KUBEFLOW = {"platform": "kubeflow", "operator": "tf-operator", "worker": ROLE,
            "storage": {"storageType": "nfs", "server": "s", "path": "/p"}}
FC = {"platform": "frameworkcontroller", "taskRoles": [{"name": "worker", **ROLE}],
      "storage": {"storageType": "nfs", "server": "s", "path": "/p"}}
NFS = {"storageType": "NFS", "localMountPoint": "/tmp/shared", "remoteMountPoint": "shared", "localMounted": "nnimount",
       "nfsServer": "n", "exportedDirectory": "/e"}
DROP = object()


def cfg(**changes):
    """BASE with top-level changes; ``key=DROP`` removes a key; ``a__b`` edits a nested key."""
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        *parents, last = key.split("__")
        target = data
        for p in parents:
            target = target[p]
        if value is DROP:
            target.pop(last, None)
        else:
            target[last] = copy.deepcopy(value)
    return yaml.safe_dump(data, sort_keys=False)


def ts(base, **changes):
    data = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DROP:
            data.pop(key, None)
        else:
            data[key] = value
    return data


V1_BASE = """\
authorName: test
experimentName: test_experiment
trialConcurrency: 1
trainingServicePlatform: {platform}
searchSpacePath: space.json
tuner:
  builtinTunerName: TPE
trial:
  command: python3 mnist.py
  codeDir: .
  gpuNum: 0
"""

CASES = [
    # (id, yaml text, field path, fragment of the message)
    ("typo-top-level", cfg(trailConcurrency=2), "trailConcurrency", "did you mean 'trialConcurrency'?"),
    ("concurrency-zero", cfg(trialConcurrency=0), "trialConcurrency", "integer >= 1"),
    ("concurrency-str", cfg(trialConcurrency="two"), "trialConcurrency", "got str 'two'"),
    ("concurrency-bool", cfg(trialConcurrency=True), "trialConcurrency", "got bool"),
    ("concurrency-missing", cfg(trialConcurrency=DROP), "trialConcurrency", "required"),
    ("command-missing", cfg(trialCommand=DROP), "trialCommand", "required"),
    ("command-number", cfg(trialCommand=5), "trialCommand", "expected a string"),
    ("command-empty", cfg(trialCommand="  "), "trialCommand", "must not be empty"),
    ("duration-unit", cfg(maxExperimentDuration="10x"), "maxExperimentDuration", "'30s', '10m'"),
    ("duration-negative", cfg(maxExperimentDuration=-5), "maxExperimentDuration", "positive"),
    ("trial-duration-word", cfg(maxTrialDuration="forever"), "maxTrialDuration", "duration"),
    ("max-trial-number-zero", cfg(maxTrialNumber=0), "maxTrialNumber", ">= 1"),
    ("gpu-number-negative", cfg(trialGpuNumber=-1), "trialGpuNumber", ">= 0"),
    ("log-level", cfg(logLevel="verbose"), "logLevel", "trace, debug, info, warning, error, fatal"),
    ("debug-str", cfg(debug="yes please"), "debug", "true or false"),
    ("experiment-name-list", cfg(experimentName=["a"]), "experimentName", "expected a string"),
    ("manager-ip-number", cfg(nniManagerIp=10), "nniManagerIp", "expected a string"),
    ("snake-and-camel-twice", cfg(trial_command="python3 u.py"), "trial_command", "given twice"),
    ("annotation-with-space", cfg(useAnnotation=True), "searchSpace", "useAnnotation"),
    ("space-and-file", cfg(searchSpaceFile="space.json"), "searchSpaceFile", "not allowed together with searchSpace"),
    ("no-search-space", cfg(searchSpace=DROP), "searchSpace", "searchSpaceFile"),
    ("space-is-list", cfg(searchSpace=[1, 2]), "searchSpace", "JSON object"),
    ("space-bad-range", cfg(searchSpace={"lr": {"_type": "loguniform", "_value": [0, 1]}}), "searchSpace.lr", "loguniform"),
    ("space-unknown-type", cfg(searchSpace={"lr": {"_type": "gaussian", "_value": [0, 1]}}), "searchSpace.lr", "allowed types"),
    ("space-file-missing", cfg(searchSpace=DROP, searchSpaceFile="missing.json"), "searchSpaceFile", "file not found"),
    ("space-file-bad-json", cfg(searchSpace=DROP, searchSpaceFile="bad.json"), "searchSpaceFile", "invalid"),
    ("space-file-bad-range", cfg(searchSpace=DROP, searchSpaceFile="badrange.json"), "searchSpaceFile", "'lr'"),
    ("code-dir-missing", cfg(trialCodeDirectory="nowhere"), "trialCodeDirectory", "directory not found"),
    ("tuner-missing", cfg(tuner=DROP), "tuner", "tuner (e.g. {name: TPE}) or an advisor"),
    ("tuner-unknown", cfg(tuner__name="TPEE"), "tuner.name", "Unknown tuner 'TPEE'. Did you mean 'TPE'?"),
    ("tuner-bad-class-arg", cfg(tuner__classArgs={"optimize_mode": "max"}), "tuner.classArgs.optimize_mode", "'maximize', 'minimize'"),
    ("tuner-unknown-class-arg", cfg(tuner__classArgs={"optimise_mode": "maximize"}), "tuner.classArgs.optimise_mode", "allowed: optimize_mode"),
    ("tuner-name-and-class", cfg(tuner__className="my.Tuner"), "tuner.className", "not allowed together with name"),
    ("tuner-class-unqualified", cfg(tuner={"className": "MyTuner", "codeDirectory": "."}), "tuner.className", "qualified class name"),
    ("tuner-no-name", cfg(tuner={"classArgs": {"optimize_mode": "maximize"}}), "tuner.name", "required"),
    ("tuner-string", cfg(tuner="TPE"), "tuner", "expected a mapping"),
    ("tuner-args-list", cfg(tuner__classArgs=[1]), "tuner.classArgs", "expected a mapping"),
    ("tuner-unknown-key", cfg(tuner__builtinTunerName="TPE"), "tuner.builtinTunerName", "unknown field"),
    ("custom-code-dir-missing", cfg(tuner={"className": "my.Tuner", "codeDirectory": "nowhere"}), "tuner.codeDirectory", "directory not found"),
    ("advisor-and-tuner", cfg(advisor={"name": "BOHB"}), "tuner", "not allowed together with advisor"),
    ("assessor-unknown", cfg(assessor={"name": "Curvefit"}), "assessor.name", "Unknown assessor 'Curvefit'"),
    ("advisor-class-arg", cfg(tuner=DROP, advisor={"name": "BOHB", "classArgs": {"optimize_mode": 1}}), "advisor.classArgs.optimize_mode", "got 1"),
    ("ts-missing", cfg(trainingService=DROP), "trainingService", "required"),
    ("ts-empty-list", cfg(trainingService=[]), "trainingService", "empty list"),
    ("ts-platform-typo", cfg(trainingService__platform="lokal"), "trainingService.platform", "unknown platform 'lokal' (did you mean 'local'?); allowed: adl, aml, dlc"),
    ("ts-platform-missing", cfg(trainingService={"useActiveGpu": True}), "trainingService.platform", "required"),
    ("gpu-indices-negative", cfg(trainingService__gpuIndices=[0, -1]), "trainingService.gpuIndices[1]", "non-negative"),
    ("gpu-indices-string", cfg(trainingService__gpuIndices="0,a"), "trainingService.gpuIndices[1]", "'a'"),
    ("gpu-indices-repeat", cfg(trainingService__gpuIndices=[1, 1]), "trainingService.gpuIndices", "repeat"),
    ("gpu-without-active-flag", cfg(trialGpuNumber=1), "trainingService.useActiveGpu", "must be set"),
    ("gpu-more-than-indices", cfg(trialGpuNumber=3, trainingService__gpuIndices=[0, 1], trainingService__useActiveGpu=False), "trialGpuNumber", "lists only 2"),
    ("per-gpu-zero", cfg(trainingService__maxTrialNumberPerGpu=0), "trainingService.maxTrialNumberPerGpu", ">= 1"),
    ("active-gpu-str", cfg(trainingService__useActiveGpu="true"), "trainingService.useActiveGpu", "true or false"),
    ("local-typo", cfg(trainingService__gpuIndex=0), "trainingService.gpuIndex", "did you mean 'gpuIndices'?"),
    ("remote-no-machines", cfg(trainingService={"platform": "remote", "machineList": []}), "trainingService.machineList", "at least one"),
    ("remote-no-user", cfg(trainingService=ts(REMOTE, machineList=[{"host": "a"}])), "trainingService.machineList[0].user", "required"),
    ("remote-bad-port", cfg(trainingService=ts(REMOTE, machineList=[{"host": "a", "user": "u"}, {"host": "b", "user": "u", "port": 70000}])),
     "trainingService.machineList[1].port", "<= 65535"),
    ("remote-v1-key", cfg(trainingService=ts(REMOTE, machineList=[{"host": "a", "user": "u", "passwd": "p"}])),
     "trainingService.machineList[0].passwd", "did you mean 'password'?"),
    ("remote-gpu-index", cfg(trainingService=ts(REMOTE, machineList=[{"host": "a", "user": "u", "gpuIndices": [0, "x"]}])),
     "trainingService.machineList[0].gpuIndices[1]", "'x'"),
    ("hybrid-dlc", cfg(trainingService=[{"platform": "local"}, DLC]), "trainingService[1].platform", "allowed: local, remote, openpai, aml"),
    ("hybrid-member-field", cfg(trainingService=[ts(REMOTE, machineList=[{"host": 1, "user": "u"}]), {"platform": "local"}]),
     "trainingService[0].machineList[0].host", "expected a string"),
    ("openpai-no-token", cfg(trainingService=ts(OPENPAI, token=DROP)), "trainingService.token", "required"),
    ("openpai-memory", cfg(trainingService=ts(OPENPAI, trialMemorySize="lots")), "trainingService.trialMemorySize", "'512mb', '8gb'"),
    ("openpai-relative-mount", cfg(trainingService=ts(OPENPAI, containerStorageMountPoint="data")), "trainingService.containerStorageMountPoint", "absolute"),
    ("openpai-no-cpu", cfg(trainingService=ts(OPENPAI, trialCpuNumber=DROP)), "trainingService.trialCpuNumber", "openpaiConfig"),
    ("openpai-both-configs", cfg(trainingService=ts(OPENPAI, openpaiConfig={}, openpaiConfigFile="pai.yml")), "trainingService.openpaiConfigFile", "not both"),
    ("aml-no-target", cfg(trainingService=ts(AML, computeTarget=DROP)), "trainingService.computeTarget", "required"),
    ("dlc-job-type", cfg(trainingService=ts(DLC, jobType="MXJob")), "trainingService.jobType", "TFJob, PyTorchJob"),
    ("dlc-pod-count", cfg(trainingService=ts(DLC, podCount="many")), "trainingService.podCount", "positive integer"),
    ("kubeflow-operator", cfg(trainingService=ts(KUBEFLOW, operator="mx-operator")), "trainingService.operator", "tf-operator, pytorch-operator"),
    ("kubeflow-storage-type", cfg(trainingService=ts(KUBEFLOW, storage={"storageType": "s3"})), "trainingService.storage.storageType", "nfs, azureStorage, pvc"),
    ("kubeflow-no-worker", cfg(trainingService=ts(KUBEFLOW, worker=DROP)), "trainingService.worker", "required for operator tf-operator"),
    ("kubeflow-role-memory", cfg(trainingService=ts(KUBEFLOW, worker={**ROLE, "memorySize": "big"})), "trainingService.worker.memorySize", "size"),
    ("fc-role-command", cfg(trainingService=ts(FC, taskRoles=[{"name": "w", "cpuNumber": 1, "memorySize": 1}])), "trainingService.taskRoles[0].command", "required"),
    ("fc-duplicate-role", cfg(trainingService=ts(FC, taskRoles=[{"name": "w", **ROLE}, {"name": "w", **ROLE}])), "trainingService.taskRoles[1].name", "duplicate"),
    ("storage-type", cfg(sharedStorage=ts(NFS, storageType="S3")), "sharedStorage.storageType", "NFS, AzureBlob"),
    ("storage-mounted", cfg(sharedStorage=ts(NFS, localMounted="automount")), "sharedStorage.localMounted", "usermount, nnimount, nomount"),
    ("storage-nfs-server", cfg(sharedStorage=ts(NFS, nfsServer=DROP)), "sharedStorage.nfsServer", "required"),
    ("storage-blob-key", cfg(sharedStorage={"storageType": "AzureBlob", "localMountPoint": "/tmp/s", "remoteMountPoint": "s",
                                            "localMounted": "nnimount", "storageAccountName": "a", "containerName": "c"}),
     "sharedStorage.storageAccountKey", "resourceGroupName"),
    ("storage-needs-reuse", cfg(sharedStorage=NFS, trainingService=ts(REMOTE, reuseMode=False)), "trainingService.reuseMode", "reuse mode"),
    ("storage-inside-code", cfg(sharedStorage=ts(NFS, localMountPoint="shared")), "sharedStorage.localMountPoint", "outside trialCodeDirectory"),
    ("tuner-gpu-indices", cfg(tunerGpuIndices="x"), "tunerGpuIndices[0]", "'x'"),
    ("v1-typo", V1_BASE.format(platform="local") + "trail:\n  command: x\n", "trail", "did you mean 'trial'?"),
    ("v1-platform", V1_BASE.format(platform="paiYarn"), "trainingServicePlatform", "supported v1 platforms"),
    ("v1-dlts-no-dashboard", V1_BASE.format(platform="dlts"), "dltsConfig", "dashboard"),
    ("adl-memory", cfg(trainingService={"platform": "adl", "dockerImage": "i", "memorySize": "lots"}), "trainingService.memorySize", "8Gi"),
    ("v1-machine-no-ip", V1_BASE.format(platform="remote") + "machineList:\n  - username: u\n    passwd: p\n", "machineList[0].ip", "required"),
    ("v1-machine-typo", V1_BASE.format(platform="remote") + "machineList:\n  - ip: a\n    user: u\n", "machineList[0].user", "did you mean 'username'?"),
    ("v1-pai-password", V1_BASE.format(platform="pai") + "paiConfig:\n  userName: u\n  passWord: p\n  host: h\n", "paiConfig.passWord", "token"),
    ("v1-local-config-on-remote", V1_BASE.format(platform="remote") + "localConfig:\n  useActiveGpu: true\n", "localConfig", "only allowed"),
    ("v1-tuner-two-ways", V1_BASE.format(platform="local").replace("  builtinTunerName: TPE\n", "  builtinTunerName: TPE\n  className: X\n"),
     "tuner.className", "exactly one way"),
    ("v1-gpu-num", V1_BASE.format(platform="local").replace("gpuNum: 0", "gpuNum: -2"), "trialGpuNumber", ">= 0"),
]


@pytest.mark.parametrize("text, field, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_config(tmp_path, text, field, fragment):
    (tmp_path / "space.json").write_text('{"x": {"_type": "choice", "_value": [1]}}')
    (tmp_path / "bad.json").write_text('{"x": {"_type": "choice",, }}')
    (tmp_path / "badrange.json").write_text('{"lr": {"_type": "uniform", "_value": [2, 1]}}')
    (tmp_path / "shared").mkdir()
    path = tmp_path / "config.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.load(path).json()  # .json() reads the files the config names
    message = str(info.value)
    assert "\n" not in message
    assert info.value.field == field, message
    assert message.startswith(field + ": "), message
    assert fragment in message, message
    assert isinstance(info.value, ValueError)


def test_corpus_is_large():
    assert len(CASES) >= 40


@pytest.mark.parametrize("text, fragment", [
    ("- a\n- b\n", "expected a mapping of config fields at the top level, got list"),
    ("trialCommand: [unclosed\n", "config.yml: invalid YAML at line"),
    ("", "config.yml: the config file is empty"),
])
def test_malformed_files_without_field(tmp_path, text, fragment):
    path = tmp_path / "config.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.load(path)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"^config file not found: .*nope\.yml$"):
        ExperimentConfig.load(tmp_path / "nope.yml")


def test_algorithm_checks_can_be_skipped(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(cfg(tuner__name="NotInstalled", tuner__classArgs={"anything": 1}))
    config = ExperimentConfig.load(path, check_algorithms=False)
    config.validate(check_algorithms=False)
    assert config.to_canonical_dict(check_algorithms=False)["tuner"]["name"] == "NotInstalled"
    with pytest.raises(ConfigError, match=r"^tuner\.name: Unknown tuner 'NotInstalled'\."):
        config.validate()


def test_registered_name_is_normalised(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(cfg(tuner__name="tpe"))
    assert ExperimentConfig.load(path).json()["tuner"]["name"] == "TPE"


def test_python_errors_are_config_errors_too():
    config = ExperimentConfig("local")
    config.trial_command = "python3 t.py"
    config.trial_concurrency = 1
    config.search_space = {}
    config.tuner.name = "TPE"
    config.training_service.gpu_indices = [0, "1"]
    with pytest.raises(ConfigError, match=r"^trainingService\.gpuIndices\[1\]: "):
        config.validate()
    config.training_service.gpu_indices = "0,1"
    config.validate()
    config.max_experiment_duration = "1 week"
    with pytest.raises(ConfigError, match=r"^maxExperimentDuration: "):
        config.validate()
