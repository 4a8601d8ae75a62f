"""Experiment config v2 (YAML or Python), v1 conversion, validation and the canonical JSON form.

Public names (``from nni.experiment.config import ...``): :class:`ExperimentConfig`,
:class:`AlgorithmConfig`, :class:`CustomAlgorithmConfig`, one class per training service
(:class:`LocalConfig`, :class:`RemoteConfig` + :class:`RemoteMachineConfig`,
:class:`OpenpaiConfig`, :class:`AmlConfig`, :class:`DlcConfig`, :class:`KubeflowConfig` +
:class:`KubeflowRoleConfig`, :class:`FrameworkControllerConfig` +
:class:`FrameworkControllerRoleConfig`, :class:`AdlConfig`, :class:`DltsConfig`), shared storage (:class:`NfsConfig`,
:class:`AzureBlobConfig`), and :class:`ConfigError` (a one-line ``ValueError``).
"""
from .adl import AdlCheckpointConfig, AdlConfig, AdlImagePullSecret, AdlNfsConfig, DltsConfig
from .algorithm import AlgorithmConfig, CustomAlgorithmConfig
from .aml import AmlConfig
from .base import ConfigBase, ConfigError, parse_duration, parse_gpu_indices, parse_size
from .convert import convert_v1, is_v1
from .dlc import DlcConfig
from .experiment_config import ExperimentConfig
from .frameworkcontroller import FrameworkAttemptCompletionPolicy, FrameworkControllerConfig, FrameworkControllerRoleConfig
from .kubeflow import KubeflowConfig, KubeflowRoleConfig
from .kubernetes import KubernetesAzureStorageConfig, KubernetesNfsConfig, KubernetesPvcConfig, KubernetesStorageConfig
from .local import LocalConfig
from .openpai import OpenpaiConfig
from .remote import RemoteConfig, RemoteMachineConfig
from .shared_storage import AzureBlobConfig, NfsConfig, SharedStorageConfig
from .training_service import CustomTrainingServiceConfig, TrainingServiceConfig

__all__ = [
    "ExperimentConfig", "AlgorithmConfig", "CustomAlgorithmConfig", "TrainingServiceConfig",
    "LocalConfig", "RemoteConfig", "RemoteMachineConfig", "OpenpaiConfig", "AmlConfig", "DlcConfig",
    "KubeflowConfig", "KubeflowRoleConfig", "FrameworkControllerConfig", "FrameworkControllerRoleConfig",
    "FrameworkAttemptCompletionPolicy", "KubernetesStorageConfig", "KubernetesNfsConfig",
    "KubernetesAzureStorageConfig", "KubernetesPvcConfig", "CustomTrainingServiceConfig",
    "AdlConfig", "AdlNfsConfig", "AdlCheckpointConfig", "AdlImagePullSecret", "DltsConfig",
    "SharedStorageConfig", "NfsConfig", "AzureBlobConfig", "ConfigBase", "ConfigError",
    "parse_duration", "parse_size", "parse_gpu_indices", "is_v1", "convert_v1",
]
