"""Convert a v1 (legacy) experiment config mapping to v2.

Mapping (docs' two references side by side): ``authorName`` dropped; ``maxExecDuration`` ->
``maxExperimentDuration``; ``maxTrialNum`` -> ``maxTrialNumber``; ``searchSpacePath`` ->
``searchSpaceFile``; ``logDir`` -> ``experimentWorkingDirectory``; ``trial.command/codeDir/gpuNum``
-> ``trialCommand/trialCodeDirectory/trialGpuNumber`` (v1 ``gpuNum`` defaults to 0);
``builtinTunerName`` -> ``name``; ``codeDir + classFileName + className`` -> ``codeDirectory`` +
``className: module.Class``; ``tuner.gpuIndices`` -> ``tunerGpuIndices``;
``trainingServicePlatform`` + its section -> ``trainingService`` (``pai`` -> ``openpai``; v1
``reuse`` defaults to false, so converted configs say ``reuseMode: false``). v1 ``maxExecDuration``
/ ``maxTrialNum`` defaults (999d / 99999) become "unlimited". ``advisor`` with ``tuner`` keeps the
advisor (v1: tuner settings are bypassed). ``adl`` and ``dlts`` (v1-only in the docs) become
:class:`~nni.experiment.config.AdlConfig` / :class:`~nni.experiment.config.DltsConfig`; ``aml`` +
``amlConfig``, ``dlc`` + ``dlcConfig`` and ``hybrid`` + ``hybridConfig.trainingServicePlatforms``
become the v2 training services of the same names (a list for hybrid). ``multiPhase: true`` is kept
as ``multiPhase`` (every ``nni.get_next_parameter()`` call of a trial asks the tuner for a new set).

Every field of the v1 reference is accepted. A field with no v2 meaning (``versionCheck``,
``multiThread``, ``logCollection``, ``multiPhase: false``, ``includeIntermediateResults``, a ``trial`` key
the chosen platform does not use, ...) is logged once as a one-line warning naming it and
dropped; a misspelt field is still an error with a suggestion.
Errors found while converting name the v1 field (``machineList[0].ip``); errors found later, when
the converted config is checked, name the v2 field (``trialGpuNumber``).
"""
from __future__ import annotations

import contextvars
import logging
from typing import Any

from .base import ConfigError, join, norm_key, short_repr, suggest

__all__ = ["is_v1", "convert_v1"]

_logger = logging.getLogger("nni.experiment.config")

_V1_MARKERS = {"authorname", "trainingserviceplatform", "trial", "searchspacepath", "maxexecduration", "maxtrialnum",
               "logdir", "localconfig", "machinelist", "paiconfig", "kubeflowconfig", "frameworkcontrollerconfig",
               "remoteconfig", "versioncheck", "multithread", "logcollection", "multiphase", "amlconfig", "dlcconfig",
               "hybridconfig", "dltsconfig"}
_V2_MARKERS = {"trainingservice", "trialcommand", "searchspacefile", "maxtrialnumber", "maxexperimentduration"}

_TOP = {
    "authorName": None, "experimentName": "experimentName", "trialConcurrency": "trialConcurrency",
    "maxExecDuration": "maxExperimentDuration", "maxTrialNum": "maxTrialNumber", "maxTrialDuration": "maxTrialDuration",
    "searchSpacePath": "searchSpaceFile", "useAnnotation": "useAnnotation", "nniManagerIp": "nniManagerIp",
    "logDir": "experimentWorkingDirectory", "logLevel": "logLevel", "debug": "debug",
    "versionCheck": None, "multiThread": None, "logCollection": None, "multiPhase": "",
    # handled separately
    "trainingServicePlatform": "", "trial": "", "tuner": "", "assessor": "", "advisor": "",
    "localConfig": "", "machineList": "", "remoteConfig": "", "paiConfig": "", "kubeflowConfig": "",
    "frameworkcontrollerConfig": "", "dltsConfig": "", "amlConfig": "", "dlcConfig": "", "hybridConfig": "",
    "sharedStorage": "",
}

# Why each top-level field without a v2 counterpart is dropped (shown in its warning).
_NO_V2 = {
    "versionCheck": "v2 has no such setting (debug: true still loosens checks)",
    "multiThread": "v2 has no such setting",
    "logCollection": "v2 has no such setting",
    "multiPhase": "false is the default: each trial gets one set of parameters (nni.get_next_parameter() returns None after the first call)",
}

# The sections made during one conversion, so that fields nobody read can be reported.
_SECTIONS: contextvars.ContextVar[list] = contextvars.ContextVar("nni_v1_sections")


def is_v1(data: dict) -> bool:
    """A mapping is v1 when it has v1-only keys and no v2-only keys."""
    keys = {norm_key(k) for k in data}
    return bool(keys & _V1_MARKERS) and not (keys & _V2_MARKERS)


class _Section:
    """A v1 mapping whose keys are taken one by one; leftovers are unknown fields."""

    def __init__(self, data: Any, path: str, known: list[str]):
        if not isinstance(data, dict):
            raise ConfigError(path, f"expected a mapping, got {short_repr(data)}")
        self.path = path
        self.known = known
        table = {norm_key(k): k for k in known}
        self.values: dict[str, Any] = {}
        self.used: set[str] = set()
        self.spelled: dict[str, str] = {}  # canonical name -> the user's spelling, for messages
        sections = _SECTIONS.get(None)
        if sections is not None:
            sections.append(self)
        for key, value in data.items():
            name = table.get(norm_key(key))
            if name is None:
                raise ConfigError(join(path, str(key)), f"unknown v1 field {str(key)!r}{suggest(str(key), known)}")
            self.values[name] = value
            self.spelled[name] = str(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        value = self.values.get(key)
        return default if value is None else value

    def has(self, key: str) -> bool:
        return self.values.get(key) is not None

    def drop(self, key: str, why: str) -> None:
        """Accept a field that has no v2 meaning (or only its default): one warning line naming it."""
        self.used.add(key)
        if self.has(key):
            _logger.warning("v1 field %s is ignored: %s", join(self.path, self.spelled[key]), why)

    def unused(self) -> list[str]:
        return [self.spelled[k] for k, v in self.values.items() if v is not None and k not in self.used]


def _put(out: dict, key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _mb(value: Any) -> Any:
    return f"{value}mb" if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _algorithm(data: Any, path: str, kind: str, out: dict) -> dict:
    builtin = {"tuner": "builtinTunerName", "assessor": "builtinAssessorName", "advisor": "builtinAdvisorName"}[kind]
    known = [builtin, "codeDir", "classFileName", "className", "classArgs", "gpuIndices", "includeIntermediateResults", "gpuNum"]
    s = _Section(data, path, known)
    algo: dict[str, Any] = {}
    if s.has(builtin):
        algo["name"] = s.get(builtin)
    if s.has("className") or s.has("classFileName") or s.has("codeDir"):
        if s.has(builtin):
            raise ConfigError(join(path, "className"), f"not allowed together with {builtin}; users must choose exactly one way")
        for key in ("codeDir", "classFileName", "className"):
            if not s.has(key):
                raise ConfigError(join(path, key), "required field is missing for a customized algorithm (codeDir, classFileName, className)")
        module = str(s.get("classFileName"))
        if module.endswith(".py"):
            module = module[:-3]
        module = module.replace("\\", "/").strip("/").replace("/", ".")
        algo["className"] = f"{module}.{s.get('className')}"
        algo["codeDirectory"] = s.get("codeDir")
    if s.has("classArgs"):
        algo["classArgs"] = s.get("classArgs")
    if s.has("gpuIndices"):
        out["tunerGpuIndices"] = s.get("gpuIndices")
    s.drop("includeIntermediateResults", "the tuner receives final results only")
    s.drop("gpuNum", "use tuner.gpuIndices (tunerGpuIndices in v2)")
    return algo


def _local(platform_cfg: Any, trial: _Section) -> dict:
    ts: dict[str, Any] = {"platform": "local"}
    if platform_cfg is not None:
        s = _Section(platform_cfg, "localConfig", ["gpuIndices", "maxTrialNumPerGpu", "useActiveGpu"])
        _put(ts, "gpuIndices", s.get("gpuIndices"))
        _put(ts, "maxTrialNumberPerGpu", s.get("maxTrialNumPerGpu"))
        _put(ts, "useActiveGpu", s.get("useActiveGpu"))
    ts.setdefault("useActiveGpu", False)  # v1 default; v2 insists on an explicit value with GPUs
    return ts


def _remote(machines: Any, remote_cfg: Any) -> dict:
    ts: dict[str, Any] = {"platform": "remote", "reuseMode": False}
    if remote_cfg is not None:
        s = _Section(remote_cfg, "remoteConfig", ["reuse"])
        _put(ts, "reuseMode", s.get("reuse"))
    if not isinstance(machines, list) or not machines:
        raise ConfigError("machineList", "required in remote mode: a list of machines (ip, username, passwd or sshKeyPath)")
    keys = {"ip": "host", "port": "port", "username": "user", "passwd": "password", "sshKeyPath": "sshKeyFile",
            "passphrase": "sshPassphrase", "gpuIndices": "gpuIndices", "maxTrialNumPerGpu": "maxTrialNumberPerGpu",
            "useActiveGpu": "useActiveGpu", "pythonPath": "pythonPath", "preCommand": None}
    ts["machineList"] = []
    for i, m in enumerate(machines):
        s = _Section(m, join("machineList", i), list(keys))
        item: dict[str, Any] = {}
        for old, new in keys.items():
            if new is None:
                s.drop(old, "use pythonPath")
            elif s.has(old):
                item[new] = s.get(old)
        if "host" not in item:
            raise ConfigError(join(join("machineList", i), "ip"), "required field is missing")
        ts["machineList"].append(item)
    return ts


def _pai(pai_cfg: Any, trial: _Section, top: dict) -> dict:
    if pai_cfg is None:
        raise ConfigError("paiConfig", "required in pai mode (userName, token, host)")
    s = _Section(pai_cfg, "paiConfig", ["userName", "password", "passWord", "token", "host", "reuse"])
    if not s.has("token"):
        which = "passWord" if s.has("passWord") else "password" if s.has("password") else "token"
        raise ConfigError(join("paiConfig", which), "password authentication has no v2 equivalent; give token (OpenPAI web portal: My profile -> copy JWT token)")
    for key in ("password", "passWord"):
        s.drop(key, "v2 authenticates with token")
    ts: dict[str, Any] = {"platform": "openpai", "host": s.get("host"), "username": s.get("userName"),
                          "token": s.get("token"), "reuseMode": bool(s.get("reuse", False))}
    _put(ts, "trialCpuNumber", trial.get("cpuNum"))
    _put(ts, "trialMemorySize", _mb(trial.get("memoryMB")))
    _put(ts, "dockerImage", trial.get("image"))
    _put(ts, "storageConfigName", trial.get("paiStorageConfigName"))
    _put(ts, "localStorageMountPoint", trial.get("nniManagerNFSMountPath"))
    _put(ts, "containerStorageMountPoint", trial.get("containerNFSMountPath"))
    _put(ts, "virtualCluster", trial.get("virtualCluster"))
    _put(ts, "openpaiConfigFile", trial.get("paiConfigPath"))
    for key in ("authFile", "shmMB", "portList"):
        trial.drop(key, "put it in openpaiConfigFile")
    return ts


def _k8s_storage(cfg: _Section, path: str) -> dict:
    default = "azureStorage" if cfg.has("azureStorage") and not cfg.has("nfs") else "pvc" if cfg.has("pvc") and not cfg.has("nfs") else "nfs"
    storage = str(cfg.get("storage", default))
    if storage == "nfs":
        nfs = _Section(cfg.get("nfs", {}), join(path, "nfs"), ["server", "path"])
        return {"storageType": "nfs", "server": nfs.get("server"), "path": nfs.get("path")}
    if storage == "azureStorage":
        kv = _Section(cfg.get("keyVault", {}), join(path, "keyVault"), ["vaultName", "name"])
        az = _Section(cfg.get("azureStorage", {}), join(path, "azureStorage"), ["accountName", "azureShare"])
        out = {"storageType": "azureStorage", "azureAccount": az.get("accountName"), "azureShare": az.get("azureShare"),
               "keyVaultName": kv.get("vaultName"), "keyVaultKey": kv.get("name")}
        _put(out, "uploadRetryCount", cfg.get("uploadRetryCount"))
        return out
    if storage == "pvc":
        pvc = _Section(cfg.get("pvc", {}), join(path, "pvc"), ["path"])
        return {"storageType": "pvc", "path": pvc.get("path")}
    raise ConfigError(join(path, "storage"), f"expected nfs, azureStorage or pvc, got {short_repr(storage)}")


_ROLE_KEYS = ["replicas", "command", "gpuNum", "cpuNum", "memoryMB", "image", "privateRegistryAuthPath"]


def _kubeflow(cfg: Any, trial: _Section, top: dict) -> dict:
    if cfg is None:
        raise ConfigError("kubeflowConfig", "required in kubeflow mode (operator, storage)")
    s = _Section(cfg, "kubeflowConfig", ["operator", "apiVersion", "storage", "nfs", "keyVault", "azureStorage", "uploadRetryCount"])
    ts: dict[str, Any] = {"platform": "kubeflow", "reuseMode": False, "operator": s.get("operator"),
                          "storage": _k8s_storage(s, "kubeflowConfig")}
    _put(ts, "apiVersion", s.get("apiVersion"))
    for role in ("ps", "worker", "master"):
        if trial.has(role):
            r = _Section(trial.get(role), join("trial", role), _ROLE_KEYS)
            item: dict[str, Any] = {"codeDirectory": trial.get("codeDir", ".")}
            for old, new in (("replicas", "replicas"), ("command", "command"), ("gpuNum", "gpuNumber"), ("cpuNum", "cpuNumber"),
                             ("image", "dockerImage"), ("privateRegistryAuthPath", "privateRegistryAuthPath")):
                _put(item, new, r.get(old))
            _put(item, "memorySize", _mb(r.get("memoryMB")))
            ts[role] = item
    main = ts.get("worker") or ts.get("master") or {}
    if "command" in main:
        top.setdefault("trialCommand", main["command"])
    return ts


def _frameworkcontroller(cfg: Any, trial: _Section, top: dict) -> dict:
    if cfg is None:
        raise ConfigError("frameworkcontrollerConfig", "required in frameworkcontroller mode (storage)")
    s = _Section(cfg, "frameworkcontrollerConfig", ["storage", "nfs", "keyVault", "azureStorage", "uploadRetryCount",
                                                     "serviceAccountName", "configPath", "namespace", "pvc"])
    ts: dict[str, Any] = {"platform": "frameworkcontroller", "reuseMode": False, "storage": _k8s_storage(s, "frameworkcontrollerConfig")}
    _put(ts, "serviceAccountName", s.get("serviceAccountName"))
    _put(ts, "configPath", s.get("configPath"))
    _put(ts, "namespace", s.get("namespace"))
    roles = trial.get("taskRoles", [])
    if not isinstance(roles, list):
        raise ConfigError("trial.taskRoles", f"expected a list of task roles, got {short_repr(roles)}")
    ts["taskRoles"] = []
    for i, role in enumerate(roles):
        path = join("trial.taskRoles", i)
        r = _Section(role, path, ["name", "taskNum", "command", "gpuNum", "cpuNum", "memoryMB", "image", "frameworkAttemptCompletionPolicy"])
        item: dict[str, Any] = {}
        for old, new in (("name", "name"), ("taskNum", "taskNumber"), ("command", "command"), ("gpuNum", "gpuNumber"),
                         ("cpuNum", "cpuNumber"), ("image", "dockerImage")):
            _put(item, new, r.get(old))
        _put(item, "memorySize", _mb(r.get("memoryMB")))
        if r.has("frameworkAttemptCompletionPolicy"):
            p = _Section(r.get("frameworkAttemptCompletionPolicy"), join(path, "frameworkAttemptCompletionPolicy"),
                         ["minFailedTaskCount", "minSucceededTaskCount", "minSucceedTaskCount"])
            policy: dict[str, Any] = {}
            _put(policy, "minFailedTaskCount", p.get("minFailedTaskCount"))
            _put(policy, "minSucceedTaskCount", p.get("minSucceededTaskCount", p.get("minSucceedTaskCount")))
            item["frameworkAttemptCompletionPolicy"] = policy
        ts["taskRoles"].append(item)
    if ts["taskRoles"] and "command" in ts["taskRoles"][0]:
        top.setdefault("trialCommand", ts["taskRoles"][0]["command"])
    return ts


def _adl(trial: _Section) -> dict:
    ts: dict[str, Any] = {"platform": "adl", "dockerImage": trial.get("image"), "codeDirectory": trial.get("codeDir", ".")}
    for old, new in (("namespace", "namespace"), ("adaptive", "adaptive"), ("cpuNum", "cpuNumber"), ("memorySize", "memorySize"),
                     ("nfs", "nfs"), ("checkpoint", "checkpoint")):
        _put(ts, new, trial.get(old))
    _put(ts, "imagePullSecrets", trial.get("imagePullSecrets", trial.get("imagePullSecret")))
    return ts


def _dlts(cfg: Any, trial: _Section) -> dict:
    if cfg is None:
        raise ConfigError("dltsConfig", "required in dlts mode (dashboard: the cluster dashboard URL)")
    s = _Section(cfg, "dltsConfig", ["dashboard"])
    ts: dict[str, Any] = {"platform": "dlts", "dashboard": s.get("dashboard")}
    _put(ts, "dockerImage", trial.get("image"))
    return ts


def _aml(cfg: Any, trial: _Section) -> dict:
    if cfg is None:
        raise ConfigError("amlConfig", "required in aml mode (subscriptionId, resourceGroup, workspaceName, computeTarget)")
    s = _Section(cfg, "amlConfig", ["subscriptionId", "resourceGroup", "workspaceName", "computeTarget",
                                    "maxTrialNumPerGpu", "maxTrialNumberPerGpu", "useActiveGpu"])
    ts: dict[str, Any] = {"platform": "aml"}
    for key in ("subscriptionId", "resourceGroup", "workspaceName", "computeTarget", "useActiveGpu"):
        _put(ts, key, s.get(key))
    _put(ts, "maxTrialNumberPerGpu", s.get("maxTrialNumberPerGpu", s.get("maxTrialNumPerGpu")))
    _put(ts, "dockerImage", trial.get("image"))
    return ts


_DLC_KEYS = ["type", "image", "jobType", "podCount", "ecsSpec", "region", "nasDataSourceId", "accessKeyId",
             "accessKeySecret", "localStorageMountPoint", "containerStorageMountPoint"]


def _dlc(cfg: Any, trial: _Section) -> dict:
    if cfg is None:
        raise ConfigError("dlcConfig", f"required in dlc mode ({', '.join(_DLC_KEYS)})")
    s = _Section(cfg, "dlcConfig", _DLC_KEYS)
    ts: dict[str, Any] = {"platform": "dlc"}
    for key in _DLC_KEYS:
        _put(ts, key, s.get(key))
    if "image" not in ts:
        _put(ts, "image", trial.get("image"))
    return ts


_TRIAL_KEYS = ["command", "codeDir", "gpuNum", "cpuNum", "memoryMB", "image", "authFile", "shmMB", "portList",
               "virtualCluster", "paiStorageConfigName", "nniManagerNFSMountPath", "containerNFSMountPath", "paiConfigPath",
               "ps", "worker", "master", "taskRoles",
               "namespace", "adaptive", "imagePullSecrets", "imagePullSecret", "memorySize", "nfs", "checkpoint"]
_PLATFORMS_V1 = ("local", "remote", "pai", "kubeflow", "frameworkcontroller", "adl", "dlts", "aml", "dlc", "hybrid")
_HYBRID_V1 = ("local", "remote", "pai", "aml")


def convert_v1(data: dict) -> dict:
    """Return the v2 mapping (camelCase keys) equivalent to a v1 config mapping."""
    token = _SECTIONS.set([])
    try:
        out = _convert(data)
        for section in _SECTIONS.get():
            for key in section.unused():
                _logger.warning("v1 field %s is not used by this config and is ignored", join(section.path, key))
        return out
    finally:
        _SECTIONS.reset(token)


def _convert(data: dict) -> dict:
    top = _Section(data, "", list(_TOP))
    out: dict[str, Any] = {}
    for old, new in _TOP.items():
        if new and top.has(old):
            out[new] = top.get(old)
        elif new is None and old != "authorName":
            top.drop(old, _NO_V2[old])
    top.used.add("authorName")
    if top.has("multiPhase") and top.get("multiPhase") is not False:
        out["multiPhase"] = top.get("multiPhase")  # kept: the manager and the trial API support multi-phase trials
    else:
        top.drop("multiPhase", _NO_V2["multiPhase"])

    platform = top.get("trainingServicePlatform")
    if platform is None:
        raise ConfigError("trainingServicePlatform", f"required field is missing; allowed: {', '.join(_PLATFORMS_V1)}")
    if platform not in _PLATFORMS_V1:
        raise ConfigError("trainingServicePlatform", f"{platform!r} cannot be converted to a v2 config; supported v1 platforms: {', '.join(_PLATFORMS_V1)}")
    platforms = [platform]
    if platform == "hybrid":
        if not top.has("hybridConfig"):
            raise ConfigError("hybridConfig", f"required in hybrid mode (trainingServicePlatforms: a list of {', '.join(_HYBRID_V1)})")
        h = _Section(top.get("hybridConfig"), "hybridConfig", ["trainingServicePlatforms"])
        platforms = h.get("trainingServicePlatforms")
        if not isinstance(platforms, list) or not platforms or any(p not in _HYBRID_V1 for p in platforms):
            raise ConfigError("hybridConfig.trainingServicePlatforms", f"expected a non-empty list of {', '.join(_HYBRID_V1)}, got {short_repr(platforms)}")
    elif top.has("hybridConfig"):
        raise ConfigError("hybridConfig", f"only allowed when trainingServicePlatform is hybrid, got {platform}")
    if not top.has("trial"):
        raise ConfigError("trial", "required field is missing (command, codeDir, gpuNum)")
    trial = _Section(top.get("trial"), "trial", _TRIAL_KEYS)
    _put(out, "trialCommand", trial.get("command"))
    _put(out, "trialCodeDirectory", trial.get("codeDir"))
    if any(p in ("local", "remote", "pai", "adl", "dlts", "aml", "dlc") for p in platforms):
        out["trialGpuNumber"] = trial.get("gpuNum", 0)
    if platform == "adl":
        out.pop("trialCodeDirectory", None)  # codeDir is a folder inside the container

    for kind in ("tuner", "assessor", "advisor"):
        if top.has(kind):
            out[kind] = _algorithm(top.get(kind), kind, kind, out)
    if "advisor" in out and ("tuner" in out or "assessor" in out):
        _logger.warning("advisor is set: the tuner and assessor settings are bypassed (v1 behaviour)")
        out.pop("tuner", None)
        out.pop("assessor", None)

    sections = {"local": "localConfig", "remote": "machineList", "pai": "paiConfig", "kubeflow": "kubeflowConfig",
                "frameworkcontroller": "frameworkcontrollerConfig", "dlts": "dltsConfig", "aml": "amlConfig", "dlc": "dlcConfig"}
    for p, section in sections.items():
        if p not in platforms and top.has(section) and not (section == "machineList" and not top.get(section)):
            raise ConfigError(section, f"only allowed when trainingServicePlatform is {p}, got {platform}")
    if top.has("remoteConfig") and "remote" not in platforms:
        raise ConfigError("remoteConfig", f"only allowed when trainingServicePlatform is remote, got {platform}")

    services = []
    for p in platforms:
        if p == "local":
            services.append(_local(top.get("localConfig"), trial))
        elif p == "remote":
            services.append(_remote(top.get("machineList"), top.get("remoteConfig")))
        elif p == "pai":
            services.append(_pai(top.get("paiConfig"), trial, out))
        elif p == "kubeflow":
            services.append(_kubeflow(top.get("kubeflowConfig"), trial, out))
        elif p == "frameworkcontroller":
            services.append(_frameworkcontroller(top.get("frameworkcontrollerConfig"), trial, out))
        elif p == "adl":
            services.append(_adl(trial))
        elif p == "aml":
            services.append(_aml(top.get("amlConfig"), trial))
        elif p == "dlc":
            services.append(_dlc(top.get("dlcConfig"), trial))
        else:
            services.append(_dlts(top.get("dltsConfig"), trial))
    out["trainingService"] = services if platform == "hybrid" else services[0]
    top.used.update(sections.values())  # a section of an unused platform was rejected above
    top.used.add("machineList")

    if top.has("sharedStorage"):
        out["sharedStorage"] = top.get("sharedStorage")
    return out
