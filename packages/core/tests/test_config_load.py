"""Loading experiment configs: the docs' v2 and v1 examples, Python-built configs, defaults,
paths, durations and sizes, the canonical form and its round trip."""
from __future__ import annotations

import json
import logging
import os
import textwrap
from pathlib import Path

import pytest

from nni.experiment import (
    AlgorithmConfig,
    AmlConfig,
    AzureBlobConfig,
    ConfigError,
    CustomAlgorithmConfig,
    DlcConfig,
    ExperimentConfig,
    FrameworkControllerConfig,
    KubeflowConfig,
    LocalConfig,
    NfsConfig,
    OpenpaiConfig,
    RemoteConfig,
    RemoteMachineConfig,
)
from nni.experiment.config import parse_duration, parse_gpu_indices, parse_size
from nni.runtime import registry

ALGOS = '''
from nni.utils import ClassArgsValidator

class FakeTuner:
    pass

class FakeAssessor:
    pass

class FakeAdvisor:
    pass

class ModeValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs):
        self.check(kwargs, optional={
            'optimize_mode': self.choices('optimize_mode', 'maximize', 'minimize'),
            'seed': self.range('seed', int, 0, None),
            'start_step': self.range('start_step', int, 0, 9999),
        })
'''


@pytest.fixture(autouse=True)
def fake_registry(tmp_path, monkeypatch):
    """Only user-registered algorithms (TPE, Random, Medianstop, BOHB, Hyperband) exist."""
    monkeypatch.setenv("NNI_CONFIG_DIR", str(tmp_path / "nni-config"))
    monkeypatch.setattr(registry, "_builtin_entries", lambda kind: [])
    code = tmp_path / "algos"
    code.mkdir()
    (code / "nni_cfg_test_algos.py").write_text(ALGOS)
    algos = [{"algoType": kind, "builtinName": name, "className": f"nni_cfg_test_algos.{cls}",
               "classArgsValidator": "nni_cfg_test_algos.ModeValidator", "codeDir": str(code)}
             for kind, name, cls in [("tuner", "TPE", "FakeTuner"), ("tuner", "Random", "FakeTuner"),
                                     ("assessor", "Medianstop", "FakeAssessor"), ("advisor", "BOHB", "FakeAdvisor"),
                                     ("advisor", "Hyperband", "FakeAdvisor")]]
    registry.user_registry_path().parent.mkdir(parents=True)
    registry.user_registry_path().write_text(json.dumps({"algorithms": algos}))  # JSON is YAML


SEARCH_SPACE = {"batch_size": {"_type": "choice", "_value": [16, 32, 64]},
                "learning_rate": {"_type": "loguniform", "_value": [0.0001, 0.1]}}


def write(folder: Path, text: str, name: str = "config.yml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def project(tmp_path):
    """A folder with search_space.json, like the docs' examples expect."""
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "search_space.json").write_text(json.dumps(SEARCH_SPACE))
    (folder / "mnist.py").write_text("print('trial')\n")
    return folder


# -- docs v2 examples ---------------------------------------------------------------------------

LOCAL_V2 = """\
experimentName: MNIST
searchSpaceFile: search_space.json
trialCommand: python mnist.py
trialCodeDirectory: .
trialGpuNumber: 1
trialConcurrency: 2
maxExperimentDuration: 24h
maxTrialNumber: 100
tuner:
  name: TPE
  classArgs:
    optimize_mode: maximize
trainingService:
  platform: local
  useActiveGpu: True
"""


def test_docs_local_example(project):
    config = ExperimentConfig.load(write(project, LOCAL_V2))
    assert config.experiment_name == "MNIST"
    assert config.trial_concurrency == 2
    assert isinstance(config.training_service, LocalConfig)
    assert config.training_service.use_active_gpu is True
    assert config.tuner.name == "TPE" and config.tuner.class_args == {"optimize_mode": "maximize"}
    # paths are absolute right after loading, relative to the YAML file's folder
    assert config.search_space_file == str(project / "search_space.json")
    assert config.trial_code_directory == str(project)

    canon = config.json()
    assert canon["searchSpace"] == SEARCH_SPACE and canon["searchSpaceFile"] is None
    assert canon["maxExperimentDuration"] == 86400
    assert canon["maxTrialNumber"] == 100
    assert canon["trialGpuNumber"] == 1
    assert canon["logLevel"] == "info"
    assert canon["trainingService"] == [{"platform": "local", "useActiveGpu": True, "maxTrialNumberPerGpu": 1, "gpuIndices": None}]
    assert canon["tuner"] == {"name": "TPE", "className": None, "codeDirectory": None, "classArgs": {"optimize_mode": "maximize"}}
    assert canon["assessor"] is None and canon["advisor"] is None


def test_docs_inline_search_space_example(project):
    config = ExperimentConfig.load(write(project, """\
        searchSpace:
          batch_size:
            _type: choice
            _value: [16, 32, 64]
          learning_rate:
            _type: loguniform
            _value: [0.0001, 0.1]
        trialCommand: python mnist.py
        trialGpuNumber: 1
        trialConcurrency: 2
        tuner:
          name: TPE
          classArgs:
            optimize_mode: maximize
        trainingService:
          platform: local
          useActiveGpu: True
        """))
    assert config.search_space == SEARCH_SPACE
    canon = config.json()
    assert canon["searchSpace"] == SEARCH_SPACE
    assert canon["trialCodeDirectory"] == str(project)  # default "." next to the YAML file
    assert canon["maxExperimentDuration"] is None and canon["maxTrialNumber"] is None


def test_docs_remote_example(project):
    config = ExperimentConfig.load(write(project, """\
        experimentName: MNIST
        searchSpaceFile: search_space.json
        trialCommand: python mnist.py
        trialCodeDirectory: .
        trialGpuNumber: 1
        trialConcurrency: 2
        maxExperimentDuration: 24h
        maxTrialNumber: 100
        tuner:
          name: TPE
          classArgs:
            optimize_mode: maximize
        trainingService:
          platform: remote
          machineList:
            - host: 11.22.33.44
              user: alice
              password: xxxxx
            - host: my.domain.com
              user: bob
              sshKeyFile: ~/.ssh/id_rsa
        """))
    ts = config.training_service
    assert isinstance(ts, RemoteConfig) and all(isinstance(m, RemoteMachineConfig) for m in ts.machine_list)
    canon = config.json()["trainingService"][0]
    assert canon["reuseMode"] is True
    m0, m1 = canon["machineList"]
    assert m0 == {"host": "11.22.33.44", "port": 22, "user": "alice", "password": "xxxxx", "sshKeyFile": None,
                  "sshPassphrase": None, "useActiveGpu": False, "maxTrialNumberPerGpu": 1, "gpuIndices": None, "pythonPath": None}
    assert m1["sshKeyFile"] == os.path.join(os.path.expanduser("~"), ".ssh", "id_rsa")


def test_remote_page_example_snake_case_key(project):
    # The remote page writes ``ssh_key_file``; snake_case keys are accepted in YAML too.
    config = ExperimentConfig.load(write(project, """\
        searchSpaceFile: search_space.json
        trialCommand: python3 mnist.py
        trialCodeDirectory: .  # default value, can be omitted
        trialGpuNumber: 0
        trialConcurrency: 4
        maxTrialNumber: 20
        tuner:
          name: TPE
          classArgs:
            optimize_mode: maximize
        trainingService:
          platform: remote
          machineList:
            - host: 192.0.2.1
              user: alice
              ssh_key_file: ~/.ssh/id_rsa
            - host: 192.0.2.2
              port: 10022
              user: bob
              password: bob123
              pythonPath: /usr/bin
        """))
    machines = config.json()["trainingService"][0]["machineList"]
    assert machines[0]["sshKeyFile"].endswith("/.ssh/id_rsa")
    assert machines[1]["port"] == 10022 and machines[1]["pythonPath"] == "/usr/bin"


def test_docs_hybrid_example(project):
    config = ExperimentConfig.load(write(project, """\
        experimentName: MNIST
        searchSpaceFile: search_space.json
        trialCommand: python3 mnist.py
        trialCodeDirectory: .
        trialConcurrency: 2
        trialGpuNumber: 0
        maxExperimentDuration: 24h
        maxTrialNumber: 100
        tuner:
          name: TPE
          classArgs:
            optimize_mode: maximize
        trainingService:
          - platform: remote
            machineList:
              - host: 127.0.0.1
                user: bob
                password: bob
          - platform: local
        """))
    assert [type(t) for t in config.training_service] == [RemoteConfig, LocalConfig]
    assert [t["platform"] for t in config.json()["trainingService"]] == ["remote", "local"]


def test_docs_openpai_example(project):
    config = ExperimentConfig.load(write(project, """\
        searchSpaceFile: search_space.json
        trialCommand: python3 mnist.py
        trialGpuNumber: 0
        trialConcurrency: 1
        maxTrialNumber: 10
        tuner:
          name: TPE
          classArgs:
            optimize_mode: maximize
        trainingService:
          platform: openpai
          host: http://123.123.123.123
          username: alice
          token: abc
          dockerImage: msranni/nni
          trialCpuNumber: 1
          trialMemorySize: 8GB
          storageConfigName: confignfs-data
          localStorageMountPoint: /local/mnt
          containerStorageMountPoint: /mnt/confignfs-data
        """))
    assert isinstance(config.training_service, OpenpaiConfig)
    ts = config.json()["trainingService"][0]
    assert ts["trialMemorySize"] == 8192 and ts["host"] == "http://123.123.123.123" and ts["reuseMode"] is True
    assert ts["virtualCluster"] is None


def test_openpai_platform_alias_pai_and_https_default(project):
    config = ExperimentConfig.load(write(project, """\
        searchSpace: {}
        trialCommand: python3 mnist.py
        trialConcurrency: 1
        tuner: {name: TPE}
        trainingService:
          platform: pai
          host: 10.10.5.1
          username: alice
          token: abc
          localStorageMountPoint: mnt
          containerStorageMountPoint: /mnt/data
          openpaiConfig: {taskRoles: {}}
        """))
    ts = config.json()["trainingService"][0]
    assert ts["platform"] == "openpai" and ts["host"] == "https://10.10.5.1"
    assert ts["localStorageMountPoint"] == str(project / "mnt")
    assert ts["trialCpuNumber"] is None  # given by openpaiConfig


def test_docs_aml_example(project):
    config = ExperimentConfig.load(write(project, """\
        searchSpaceFile: search_space.json
        trialCommand: python3 mnist.py
        trialConcurrency: 1
        maxTrialNumber: 10
        tuner:
          name: TPE
          classArgs:
            optimize_mode: maximize
        trainingService:
          platform: aml
          dockerImage: msranni/nni
          subscriptionId: sub
          resourceGroup: group
          workspaceName: ws
          computeTarget: gpu-cluster
        """))
    assert isinstance(config.training_service, AmlConfig)
    ts = config.json()["trainingService"][0]
    assert ts["maxTrialNumberPerGpu"] == 1 and ts["useActiveGpu"] is False and ts["dockerImage"] == "msranni/nni"


def test_docs_dlc_example_with_int_pod_count(project):
    # The docs' example repeats nasDataSourceId (a YAML duplicate key: the last one wins).
    config = ExperimentConfig.load(write(project, """\
        experimentWorkingDirectory: /home/admin/workspace/exp
        searchSpaceFile: search_space.json
        trialCommand: python mnist.py --data_dir /root/data/mnist
        trialConcurrency: 1  # NOTE: please provide number <= 3 due to DLC system limit.
        maxTrialNumber: 10
        tuner:
          name: TPE
          classArgs:
            optimize_mode: maximize
        trainingService:
          platform: dlc
          type: Worker
          image: registry-vpc.cn-beijing.aliyuncs.com/pai-dlc/pytorch-training:1.6.0-gpu-py37-cu101-ubuntu18.04
          jobType: PyTorchJob                             # choices: [TFJob, PyTorchJob]
          podCount: 1
          ecsSpec: ecs.c6.large
          region: cn-hangzhou
          nasDataSourceId: datat56by9n1xt0a
          accessKeyId: ak
          accessKeySecret: secret
          localStorageMountPoint: /home/admin/workspace/  # default NAS path on DSW
          containerStorageMountPoint: /root/data/         # default NAS path on DLC container
        """))
    assert isinstance(config.training_service, DlcConfig)
    ts = config.json()["trainingService"][0]
    assert ts["podCount"] == 1 and ts["jobType"] == "PyTorchJob" and ts["localStorageMountPoint"] == "/home/admin/workspace"


def test_docs_kubeflow_reuse_example(project):
    config = ExperimentConfig.load(write(project, """\
        searchSpaceFile: search_space.json
        trialCommand: python3 mnist.py
        trialGpuNumber: 0
        trialConcurrency: 4
        maxTrialNumber: 20
        tuner:
          name: TPE
          classArgs:
            optimize_mode: maximize
        trainingService:
          reuseMode: true
          platform: kubeflow
          worker:
            command: python3 mnist.py
            code_directory: .
            dockerImage: msranni/nni
            cpuNumber: 1
            gpuNumber: 0
            memorySize: 8192
            replicas: 1
          operator: tf-operator
          storage:
            storageType: azureStorage
            azureAccount: account
            azureShare: share
            keyVaultName: vault
            keyVaultKey: key
          apiVersion: v1
        """))
    assert isinstance(config.training_service, KubeflowConfig)
    ts = config.json()["trainingService"][0]
    assert ts["worker"]["memorySize"] == 8192 and ts["worker"]["codeDirectory"] == str(project)
    assert ts["storage"]["storageType"] == "azureStorage" and ts["ps"] is None


def test_frameworkcontroller_reuse_example_filled_in(project):
    config = ExperimentConfig.load(write(project, """\
        searchSpaceFile: search_space.json
        trialCommand: python3 mnist.py
        trialConcurrency: 4
        tuner:
          name: TPE
        trainingService:
          reuseMode: true
          platform: frameworkcontroller
          taskRoles:
            - name: worker
              dockerImage: 'msranni/nni:latest'
              taskNumber: 1
              command: python3 mnist.py
              gpuNumber: 0
              cpuNumber: 1
              memorySize: 8g
              frameworkAttemptCompletionPolicy:
                minFailedTaskCount: 1
                minSucceedTaskCount: 1
          storage:
            storageType: nfs
            server: 10.10.10.10
            path: /var/nfs/general
        """))
    assert isinstance(config.training_service, FrameworkControllerConfig)
    role = config.json()["trainingService"][0]["taskRoles"][0]
    assert role["memorySize"] == 8192 and role["frameworkAttemptCompletionPolicy"] == {"minFailedTaskCount": 1, "minSucceedTaskCount": 1}


def test_shared_storage_examples(project, tmp_path):
    base = LOCAL_V2.replace("platform: local\n  useActiveGpu: True", "platform: remote\n  machineList: [{host: h, user: u, password: p}]")
    nfs = ExperimentConfig.load(write(project, base + """\
sharedStorage:
  storageType: NFS
  localMountPoint: /tmp/nni-shared-storage
  remoteMountPoint: ./nni-shared-storage
  localMounted: nnimount
  nfsServer: 10.10.10.10
  exportedDirectory: /exported
"""))
    assert isinstance(nfs.shared_storage, NfsConfig)
    ss = nfs.json()["sharedStorage"]
    assert ss["remoteMountPoint"] == "./nni-shared-storage"  # a path on the remote machine: kept
    assert ss["storageType"] == "NFS" and ss["localMounted"] == "nnimount"
    blob = ExperimentConfig.load(write(project, base + """\
sharedStorage:
  storageType: AzureBlob
  localMountPoint: /tmp/nni-shared-storage
  remoteMountPoint: ./nni-shared-storage
  localMounted: usermount
  storageAccountName: account
  storageAccountKey: key
  containerName: container
"""))
    assert isinstance(blob.shared_storage, AzureBlobConfig)
    assert blob.json()["sharedStorage"]["resourceGroupName"] is None


# -- v1 examples --------------------------------------------------------------------------------

V1_LOCAL_ANNOTATION = """\
authorName: test
experimentName: test_experiment
trialConcurrency: 3
maxExecDuration: 1h
maxTrialNum: 10
#choice: local, remote, pai, kubeflow
trainingServicePlatform: local
#choice: true, false
useAnnotation: true
tuner:
  #choice: TPE, Random, Anneal, Evolution
  builtinTunerName: TPE
  classArgs:
    #choice: maximize, minimize
    optimize_mode: maximize
trial:
  command: python3 mnist.py
  codeDir: /nni/mnist
  gpuNum: 0
"""

V1_LOCAL_ASSESSOR = """\
authorName: test
experimentName: test_experiment
trialConcurrency: 3
maxExecDuration: 1h
maxTrialNum: 10
#choice: local, remote, pai, kubeflow
trainingServicePlatform: local
searchSpacePath: /nni/search_space.json
#choice: true, false
useAnnotation: false
tuner:
  #choice: TPE, Random, Anneal, Evolution
  builtinTunerName: TPE
  classArgs:
    #choice: maximize, minimize
    optimize_mode: maximize
assessor:
  #choice: Medianstop
  builtinAssessorName: Medianstop
  classArgs:
    #choice: maximize, minimize
    optimize_mode: maximize
trial:
  command: python3 mnist.py
  codeDir: /nni/mnist
  gpuNum: 0
"""

V1_CUSTOM = """\
authorName: test
experimentName: test_experiment
trialConcurrency: 3
maxExecDuration: 1h
maxTrialNum: 10
#choice: local, remote, pai, kubeflow
trainingServicePlatform: local
searchSpacePath: /nni/search_space.json
#choice: true, false
useAnnotation: false
tuner:
  codeDir: /nni/tuner
  classFileName: mytuner.py
  className: MyTuner
  classArgs:
    #choice: maximize, minimize
    optimize_mode: maximize
assessor:
  codeDir: /nni/assessor
  classFileName: myassessor.py
  className: MyAssessor
  classArgs:
    #choice: maximize, minimize
    optimize_mode: maximize
trial:
  command: python3 mnist.py
  codeDir: /nni/mnist
  gpuNum: 0
"""

V1_REMOTE = """\
authorName: test
experimentName: test_experiment
trialConcurrency: 3
maxExecDuration: 1h
maxTrialNum: 10
#choice: local, remote, pai, kubeflow
trainingServicePlatform: remote
searchSpacePath: /nni/search_space.json
#choice: true, false
useAnnotation: false
tuner:
  #choice: TPE, Random, Anneal, Evolution
  builtinTunerName: TPE
  classArgs:
    #choice: maximize, minimize
    optimize_mode: maximize
trial:
  command: python3 mnist.py
  codeDir: /nni/mnist
  gpuNum: 0
#machineList can be empty if the platform is local
machineList:
  - ip: 10.10.10.10
    port: 22
    username: test
    passwd: test
  - ip: 10.10.10.11
    port: 22
    username: test
    passwd: test
  - ip: 10.10.10.12
    port: 22
    username: test
    sshKeyPath: /nni/sshkey
    passphrase: qwert
    # Below is an example of specifying python environment.
    pythonPath: ${replace_to_python_environment_path_in_your_remote_machine}
"""


def test_v1_local_annotation_example_converts(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="nni.experiment.config"):
        config = ExperimentConfig.load(write(tmp_path, V1_LOCAL_ANNOTATION))
    assert any("v1" in r.getMessage() for r in caplog.records)
    assert config.use_annotation is True
    assert config.trial_command == "python3 mnist.py" and config.trial_code_directory == "/nni/mnist"
    assert config.trial_gpu_number == 0 and config.max_experiment_duration == "1h" and config.max_trial_number == 10
    assert config.tuner.name == "TPE"
    assert isinstance(config.training_service, LocalConfig) and config.training_service.use_active_gpu is False
    canon = config.to_canonical_dict(check_files=False)
    assert canon["maxExperimentDuration"] == 3600 and canon["searchSpace"] is None


def test_v1_local_with_assessor_converts(tmp_path):
    config = ExperimentConfig.load(write(tmp_path, V1_LOCAL_ASSESSOR))
    assert config.search_space_file == "/nni/search_space.json"
    assert config.assessor.name == "Medianstop" and config.assessor.class_args == {"optimize_mode": "maximize"}


def test_v1_custom_algorithms_convert(tmp_path):
    config = ExperimentConfig.load(write(tmp_path, V1_CUSTOM))
    assert isinstance(config.tuner, CustomAlgorithmConfig)
    assert config.tuner.class_name == "mytuner.MyTuner" and config.tuner.code_directory == "/nni/tuner"
    assert config.assessor.class_name == "myassessor.MyAssessor"
    canon = config.to_canonical_dict(check_files=False)
    assert canon["tuner"] == {"name": None, "className": "mytuner.MyTuner", "codeDirectory": "/nni/tuner",
                              "classArgs": {"optimize_mode": "maximize"}}


def test_v1_remote_example_converts(tmp_path):
    config = ExperimentConfig.load(write(tmp_path, V1_REMOTE))
    ts = config.to_canonical_dict(check_files=False)["trainingService"][0]
    assert ts["platform"] == "remote" and ts["reuseMode"] is False  # v1 ``reuse`` defaults to false
    hosts = [(m["host"], m["user"], m["password"]) for m in ts["machineList"]]
    assert hosts == [("10.10.10.10", "test", "test"), ("10.10.10.11", "test", "test"), ("10.10.10.12", "test", None)]
    assert ts["machineList"][2]["sshKeyFile"] == "/nni/sshkey" and ts["machineList"][2]["sshPassphrase"] == "qwert"


def test_v1_local_config_and_tuner_gpu_indices(project):
    config = ExperimentConfig.load(write(project, """\
        authorName: a
        experimentName: e
        trialConcurrency: 1
        trainingServicePlatform: local
        searchSpacePath: search_space.json
        logDir: logs
        tuner:
          builtinTunerName: TPE
          gpuIndices: "0,1"
        trial:
          command: python3 mnist.py
          codeDir: .
          gpuNum: 2
        localConfig:
          gpuIndices: "1,2,3"
          maxTrialNumPerGpu: 2
          useActiveGpu: true
        """))
    canon = config.json()
    assert canon["tunerGpuIndices"] == [0, 1]
    assert canon["experimentWorkingDirectory"] == str(project / "logs")
    assert canon["trainingService"][0] == {"platform": "local", "useActiveGpu": True, "maxTrialNumberPerGpu": 2, "gpuIndices": [1, 2, 3]}
    assert canon["trialGpuNumber"] == 2


def test_v1_kubeflow_and_frameworkcontroller_examples(project):
    kubeflow = ExperimentConfig.load(write(project, """\
        authorName: default
        experimentName: example_mni
        trialConcurrency: 1
        maxExecDuration: 1h
        maxTrialNum: 1
        trainingServicePlatform: kubeflow
        searchSpacePath: search_space.json
        useAnnotation: false
        tuner:
          builtinTunerName: TPE
          classArgs:
            optimize_mode: maximize
        assessor:
          builtinAssessorName: Medianstop
          classArgs:
            optimize_mode: maximize
        trial:
          codeDir: .
          worker:
            replicas: 1
            command: python3 mnist.py
            gpuNum: 0
            cpuNum: 1
            memoryMB: 4096
            image: msranni/nni:latest
        kubeflowConfig:
          operator: tf-operator
          keyVault:
            vaultName: Contoso-Vault
            name: AzureStorageAccountKey
          azureStorage:
            accountName: storage
            azureShare: share01
        """))
    ts = kubeflow.json()["trainingService"][0]
    assert ts["reuseMode"] is False and ts["worker"]["memorySize"] == 4096
    assert ts["storage"] == {"storageType": "azureStorage", "azureAccount": "storage", "azureShare": "share01",
                             "keyVaultName": "Contoso-Vault", "keyVaultKey": "AzureStorageAccountKey", "uploadRetryCount": None}
    assert kubeflow.trial_command == "python3 mnist.py"

    fc = ExperimentConfig.load(write(project, """\
        authorName: default
        experimentName: example_mnist
        trialConcurrency: 1
        maxExecDuration: 10h
        maxTrialNum: 100
        trainingServicePlatform: frameworkcontroller
        searchSpacePath: search_space.json
        tuner:
          builtinTunerName: TPE
        trial:
          codeDir: .
          taskRoles:
            - name: worker
              taskNum: 1
              command: python3 mnist.py
              gpuNum: 1
              cpuNum: 1
              memoryMB: 8192
              image: msranni/nni:latest
              frameworkAttemptCompletionPolicy:
                minFailedTaskCount: 1
                minSucceededTaskCount: 1
        frameworkcontrollerConfig:
          storage: nfs
          nfs:
            server: 10.0.0.1
            path: /exported
        """, "fc.yml"))
    ts = fc.json()["trainingService"][0]
    assert ts["taskRoles"][0]["taskNumber"] == 1 and ts["taskRoles"][0]["gpuNumber"] == 1
    assert ts["storage"] == {"storageType": "nfs", "server": "10.0.0.1", "path": "/exported"}


# -- Python-built configs ----------------------------------------------------------------------


def test_python_built_config_like_the_docs(project, monkeypatch):
    monkeypatch.chdir(project)
    config = ExperimentConfig("local")
    config.experiment_name = "MNIST"
    config.trial_command = "python3 mnist.py"
    config.trial_code_directory = Path(".")
    config.search_space = SEARCH_SPACE
    config.trial_concurrency = 2
    config.max_trial_number = 10
    config.tuner.name = "TPE"
    config.tuner.class_args["optimize_mode"] = "maximize"
    config.training_service.use_active_gpu = True
    config.validate()
    canon = config.json()
    assert canon["trialCodeDirectory"] == str(project)  # relative to the current folder
    assert canon["tuner"]["classArgs"] == {"optimize_mode": "maximize"}
    assert canon["assessor"] is None and canon["advisor"] is None  # unfilled placeholders


def test_python_keyword_construction_and_classes():
    config = ExperimentConfig(
        trial_command="python3 t.py", trialConcurrency=1, search_space={},
        tuner=AlgorithmConfig(name="Random"),
        training_service=[LocalConfig(), RemoteConfig(machine_list=[RemoteMachineConfig(host="h", user="u", password="p")])],
    )
    canon = config.to_canonical_dict(check_files=False)
    assert [t["platform"] for t in canon["trainingService"]] == ["local", "remote"]
    assert canon["tuner"]["name"] == "Random"


def test_python_hybrid_platform_list_and_unknown_attribute():
    config = ExperimentConfig(["local", "remote"])
    assert isinstance(config.training_service[1], RemoteConfig)
    with pytest.raises(AttributeError, match="trial_concurrency"):
        config.trail_concurrency = 3


def test_custom_algorithm_in_python(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_tuner.py").write_text("class MyTuner: pass\n")
    config = ExperimentConfig("local", trial_command="x", trial_concurrency=1, search_space={})
    config.tuner = CustomAlgorithmConfig(class_name="my_tuner.MyTuner", class_args={"a": 1})
    canon = config.json()
    assert canon["tuner"] == {"name": None, "className": "my_tuner.MyTuner", "codeDirectory": str(tmp_path), "classArgs": {"a": 1}}


# -- defaults, durations, sizes, paths ------------------------------------------------------------


def test_defaults_of_a_minimal_config(project, monkeypatch):
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(project / "exps"))
    config = ExperimentConfig.load(write(project, """\
        searchSpace: {}
        trialCommand: python3 mnist.py
        trialConcurrency: 1
        tuner: {name: TPE}
        trainingService: {platform: local}
        debug: true
        """))
    canon = config.json()
    assert canon["logLevel"] == "debug"  # debug mode implies debug logging
    assert canon["experimentWorkingDirectory"] == str(project / "exps")
    assert canon["useAnnotation"] is False and canon["trialGpuNumber"] is None
    assert canon["trainingService"][0]["useActiveGpu"] is False
    assert canon["tuner"]["classArgs"] == {}
    monkeypatch.delenv("NNI_EXPERIMENTS_DIR")
    assert config.json()["experimentWorkingDirectory"] == os.path.join(os.path.expanduser("~"), "nni-experiments")


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("10m", 600), ("1h", 3600), ("1d", 86400), ("0.5h", 1800),
                                           ("45", 45), (90, 90), (1.5, 1.5), ("2H", 7200)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text, mb", [("10g", 10240), ("8gb", 8192), ("8GB", 8192), ("512mb", 512), ("1tb", 1048576),
                                      ("8Gi", 8192), ("2048kb", 2), (4096, 4096), ("1.5g", 1536)])
def test_sizes(text, mb):
    assert parse_size(text) == mb


@pytest.mark.parametrize("value, indices", [(0, [0]), ("0,1,3", [0, 1, 3]), ([2, 3], [2, 3]), ("", []), (None, None)])
def test_gpu_indices(value, indices):
    assert parse_gpu_indices(value) == indices


def test_paths_relative_to_yaml_folder_and_tilde(tmp_path):
    sub = tmp_path / "conf"
    (sub / "code").mkdir(parents=True)
    (sub / "space.json").write_text("{}")
    config = ExperimentConfig.load(write(sub, """\
        searchSpaceFile: space.json
        trialCommand: python3 t.py
        trialCodeDirectory: code
        trialConcurrency: 1
        experimentWorkingDirectory: ~/exps
        tuner: {name: TPE}
        trainingService: {platform: local}
        """))
    canon = config.json()
    assert canon["trialCodeDirectory"] == str(sub / "code")
    assert canon["experimentWorkingDirectory"] == os.path.join(os.path.expanduser("~"), "exps")
    assert canon["searchSpace"] == {}


def test_search_space_yaml_float_notation(project):
    config = ExperimentConfig.load(write(project, """\
        searchSpace:
          lr: {_type: loguniform, _value: [1e-5, 1e-1]}
        trialCommand: python3 mnist.py
        trialConcurrency: 1
        tuner: {name: TPE}
        trainingService: {platform: local}
        """))
    assert config.json()["searchSpace"]["lr"]["_value"] == [1e-5, 0.1]


def test_annotation_scans_code_folder(tmp_path, caplog):
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text("import nni\n'''@nni.variable(nni.choice(1, 2), name=x)'''\nx = 1\n")
    config = ExperimentConfig.load(write(tmp_path, """\
        trialCommand: python3 trial.py
        trialCodeDirectory: code
        trialConcurrency: 1
        useAnnotation: true
        tuner: {name: TPE}
        trainingService: {platform: local}
        """))
    assert config.json()["searchSpace"] is None
    (code / "trial.py").write_text("x = 1\n")
    with caplog.at_level("WARNING", logger="nni.experiment.config"):
        config.json()  # no annotation: the folder is used as it is, with a warning
    assert "no search space annotation" in caplog.text


# -- canonical form ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [LOCAL_V2, V1_REMOTE.replace("/nni/search_space.json", "search_space.json").replace("/nni/mnist", ".")])
def test_canonical_round_trip_is_identity(project, text):
    canon = ExperimentConfig.load(write(project, text)).json()
    again = ExperimentConfig.from_dict(json.loads(json.dumps(canon))).json()
    assert again == canon
    # the canonical form is also a loadable YAML file
    reloaded = ExperimentConfig.load(write(project, ExperimentConfig.from_dict(canon).to_yaml(), "canon.yml")).json()
    assert reloaded == canon


def test_round_trip_of_every_platform(project):
    config = ExperimentConfig(
        trial_command="python3 mnist.py", trial_concurrency=2, trial_gpu_number=0, search_space=SEARCH_SPACE,
        max_experiment_duration="1.5h", max_trial_duration="10m", tuner_gpu_indices="0",
        advisor={"name": "BOHB", "classArgs": {"optimize_mode": "maximize"}},
        training_service=[
            {"platform": "local", "gpuIndices": [0, 1]},
            {"platform": "remote", "machineList": [{"host": "h", "user": "u", "sshKeyFile": "key"}], "reuseMode": True},
            {"platform": "openpai", "host": "h", "username": "u", "token": "t", "trialCpuNumber": 1,
             "trialMemorySize": "2gb", "storageConfigName": "s", "localStorageMountPoint": "/mnt", "containerStorageMountPoint": "/c"},
            {"platform": "aml", "subscriptionId": "s", "resourceGroup": "r", "workspaceName": "w", "computeTarget": "c"},
        ],
        shared_storage={"storageType": "NFS", "localMountPoint": "/tmp/x", "remoteMountPoint": "x", "localMounted": "usermount",
                        "nfsServer": "n", "exportedDirectory": "/e"},
    )
    config._base_path = project  # as if loaded from a file in ``project``
    canon = config.json()
    assert canon["maxExperimentDuration"] == 5400 and canon["maxTrialDuration"] == 600 and canon["tunerGpuIndices"] == [0]
    assert canon["trainingService"][1]["machineList"][0]["sshKeyFile"] == str(project / "key")
    assert ExperimentConfig.from_dict(canon).json() == canon


def test_third_party_training_service_keeps_its_fields(project, monkeypatch):
    entry = registry.RegistryEntry("training_service", "myplatform", "my_pkg:MyService", "builtin", "my-pkg")
    monkeypatch.setattr(registry, "_builtin_entries", lambda kind: [entry] if kind == "training_service" else [])
    registry.register_user_algorithm({"algoType": "tuner", "builtinName": "TPE", "className": "nni_cfg_test_algos.FakeTuner"})
    config = ExperimentConfig.load(write(project, """\
        searchSpace: {}
        trialCommand: python3 mnist.py
        trialConcurrency: 1
        tuner: {name: TPE}
        trainingService: {platform: myplatform, clusterUrl: 'http://c', workers: 3}
        """))
    assert config.json()["trainingService"] == [{"platform": "myplatform", "clusterUrl": "http://c", "workers": 3}]


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, nni.experiment; print(sorted(m for m in ('yaml', 'numpy', 'torch', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_experiment_is_lazy():
    import nni.experiment as pkg

    if "Experiment" not in pkg.__all__:
        with pytest.raises(AttributeError, match="Experiment"):
            pkg.Experiment  # noqa: B018


def test_v1_adaptdl_and_dlts_examples_convert(project):
    adl = ExperimentConfig.load(write(project, """\
        authorName: default
        experimentName: minimal_adl
        trainingServicePlatform: adl
        nniManagerIp: 10.1.10.11
        logCollection: http
        tuner:
          builtinTunerName: TPE
        searchSpacePath: search_space.json
        trialConcurrency: 2
        maxTrialNum: 2
        trial:
          adaptive: false # optional.
          image: registry/image:tag
          imagePullSecrets:  # optional
            - name: stagingsecret
          codeDir: .
          command: python main.py
          gpuNum: 1
          cpuNum: 1  # optional
          memorySize: 8Gi  # optional
          nfs: # optional
            server: 10.20.41.55
            path: /
            containerMountPath: /nfs
          checkpoint: # optional
            storageClass: dfs
            storageSize: 1Gi
        """))
    canon = adl.json()
    ts = canon["trainingService"][0]
    assert ts["platform"] == "adl" and ts["codeDirectory"] == "." and ts["memorySize"] == "8Gi"
    assert ts["imagePullSecrets"] == [{"name": "stagingsecret"}] and ts["nfs"]["containerMountPath"] == "/nfs"
    assert canon["trialGpuNumber"] == 1 and canon["nniManagerIp"] == "10.1.10.11"

    dlts = ExperimentConfig.load(write(project, """\
        trainingServicePlatform: dlts
        authorName: your_name
        experimentName: auto_mnist
        trialConcurrency: 2
        maxExecDuration: 3h
        maxTrialNum: 100
        searchSpacePath: search_space.json
        useAnnotation: false
        tuner:
          builtinTunerName: TPE
          classArgs:
            optimize_mode: maximize
        trial:
          command: python3 mnist.py
          codeDir: .
          gpuNum: 1
          image: msranni/nni
        dltsConfig:
          dashboard: http://dashboard
        """, "dlts.yml"))
    assert dlts.json()["trainingService"] == [{"platform": "dlts", "dashboard": "http://dashboard", "dockerImage": "msranni/nni"}]
