"""The experiment profile (``GET /experiment``): one shape for the manager, nnictl and the SDK.

The manager answers the route with :func:`experiment_profile`; ``nnictl`` and
``Experiment`` build the same dict from the store of a stopped experiment with the same
function, so the shape cannot drift between them (and neither imports the server's handlers).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Union

#: ``PUT /experiment/cluster-metadata`` keeps its keys here, next to the store (``db/``).
CLUSTER_METADATA_FILE = "cluster_metadata.json"

#: Config keys whose values the profile shows as ``"***"`` (remote machines' SSH secrets, the
#: shared storage's Azure key).
SECRET_KEYS = frozenset({"password", "sshPassphrase", "storageAccountKey"})


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` with every :data:`SECRET_KEYS` entry that is set replaced by ``"***"``."""
    if isinstance(value, dict):
        return {k: ("***" if k in SECRET_KEYS and v is not None else mask_secrets(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


#: Next to ``experiment_config.json`` in the experiment folder (mode 0600): the SSH secrets that
#: the config files, the store, exports and REST show as ``"***"`` (resume and clean-up read it).
SECRETS_FILE = "secrets.json"


def _secret_paths(value: Any, at: tuple = ()) -> list:
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            if k in SECRET_KEYS and isinstance(v, str) and v != "***":
                out.append((at + (k,), v))
            else:
                out.extend(_secret_paths(v, at + (k,)))
        return out
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _secret_paths(v, at + (i,))]
    return []


def write_config_file(config: dict, path: Union[str, Path]) -> None:
    """Write ``config`` as JSON to ``path`` with its secrets masked; the secrets go to
    :data:`SECRETS_FILE` in the same folder, readable by the owner only."""
    path = Path(path)
    secrets = _secret_paths(config)
    if secrets:
        import os

        target = path.parent / SECRETS_FILE
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump([[list(at), v] for at, v in secrets], fh)
    path.write_text(json.dumps(mask_secrets(config), indent=2), encoding="utf-8")


def restore_secrets(config: dict, experiment_dir: Union[str, Path]) -> dict:
    """``config`` with the masked secrets put back from the experiment's :data:`SECRETS_FILE`
    (unchanged when there is none)."""
    try:
        saved = json.loads((Path(experiment_dir) / SECRETS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return config
    config = json.loads(json.dumps(config))  # a deep copy
    for at, value in saved:
        node: Any = config
        try:
            for key in at[:-1]:
                node = node[key]
            if node.get(at[-1]) == "***":
                node[at[-1]] = value
        except (KeyError, IndexError, TypeError, AttributeError):
            continue  # the config changed shape: that secret no longer applies
    return config


def read_cluster_metadata(db_dir: Union[str, Path]) -> dict:
    """The metadata set by ``PUT /experiment/cluster-metadata`` ({} if none)."""
    try:
        data = json.loads((Path(db_dir) / CLUSTER_METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _duration_seconds(value: Any) -> Any:
    """``'2h'`` -> 7200 (the profile reports seconds, as NNI's does); None stays None."""
    if value is None:
        return None
    from nni.experiment.config.base import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError:
        return value
    return int(seconds) if float(seconds).is_integer() else seconds


def profile_params(config: dict, cluster_metadata: Optional[dict] = None) -> dict:
    """NNI's v1-style ``params`` of the profile, plus the canonical config under ``config``.

    ``cluster_metadata``: keys set through ``PUT /experiment/cluster-metadata``; each becomes a
    ``clusterMetaData`` entry (a ``trial_config`` key replaces the one derived from the config).
    """
    ts = config.get("trainingService")
    platform = ",".join(t.get("platform", "") for t in ts) if isinstance(ts, list) else (ts or {}).get("platform")
    space = config.get("searchSpace")
    params: dict[str, Any] = {
        "authorName": "default",
        "experimentName": config.get("experimentName"),
        "trialConcurrency": config.get("trialConcurrency"),
        "maxExecDuration": _duration_seconds(config.get("maxExperimentDuration")),  # NNI: seconds
        "maxTrialNum": config.get("maxTrialNumber"),
        "searchSpace": json.dumps(space if space is not None else {}),
        "trainingServicePlatform": platform,
        "versionCheck": True,
        "clusterMetaData": [
            {
                "key": "trial_config",
                "value": {
                    "command": config.get("trialCommand"),
                    "codeDir": config.get("trialCodeDirectory"),
                    "gpuNum": config.get("trialGpuNumber") or 0,
                },
            }
        ],
        "config": mask_secrets(config),  # REST, nnictl and the SDK never show SSH secrets
    }
    entries = params["clusterMetaData"]
    for key, value in (cluster_metadata or {}).items():
        same = [e for e in entries if e["key"] == key]
        if same:
            same[0]["value"] = value
        else:
            entries.append({"key": key, "value": value})
    for kind, key in (("tuner", "builtinTunerName"), ("assessor", "builtinAssessorName"), ("advisor", "builtinAdvisorName")):
        algo = config.get(kind)
        if algo:
            entry = {"classArgs": algo.get("classArgs") or {}}
            if algo.get("name"):
                entry[key] = algo["name"]
            else:
                entry["className"] = algo.get("className")
                entry["codeDir"] = algo.get("codeDirectory")
            if kind != "assessor":
                entry["checkpointDir"] = None
            params[kind] = entry
    return params


def experiment_profile(row: Any, config: dict, cluster_metadata: Optional[dict] = None, exec_duration: Optional[int] = None) -> dict:
    """The ``GET /experiment`` answer (:data:`nni.runtime.rest_api.PROFILE`).

    Args:
        row: the stored experiment (attributes ``id``, ``revision``, ``exec_duration``,
            ``log_dir``, ``next_sequence_id``, ``start_time``, ``end_time``).
        config: the canonical config.
        cluster_metadata: see :func:`read_cluster_metadata`.
        exec_duration: seconds spent RUNNING, when the running manager knows better than ``row``.
    """
    profile = {
        "id": row.id,
        "revision": row.revision,
        "execDuration": row.exec_duration if exec_duration is None else exec_duration,
        "logDir": row.log_dir,
        "nextSequenceId": row.next_sequence_id,
        "params": profile_params(config, cluster_metadata),
        "startTime": row.start_time,
    }
    if row.end_time is not None:
        profile["endTime"] = row.end_time
    return profile
