"""``trainingService: {platform: ray, ...}``: the Ray platform's config class.

Registered as the ``ray`` platform when imported (the service class names it as its
``config_class``, which is how the config loader finds it). Importing it never imports Ray.
"""
from __future__ import annotations

import math
import re
from typing import Any

from nni.experiment.config.base import ConfigError, Context, Field, join, short_repr, type_name
from nni.experiment.config.training_service import TrainingServiceConfig

__all__ = ["RayConfig"]

# "host:port", "[v6]:port", "ray://host:port" (Ray Client) or "auto"
_ADDRESS_RE = re.compile(r"^(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")
_RESOURCE_NAME_RE = re.compile(r"^[A-Za-z0-9_.:/-]+$")
#: Resources Ray names itself; the per-trial fields set them.
_RESERVED = {"CPU": "numCpusPerTrial", "GPU": "numGpusPerTrial", "memory": None, "object_store_memory": None}


def _number(value: Any, path: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(path, f"expected {what}, got {type_name(value)} {short_repr(value)}")
    if value < 0:
        raise ConfigError(path, f"expected {what}, got {value!r}")
    return int(value) if float(value).is_integer() else float(value)


def _fraction_ok(value: float, path: str) -> None:
    # Ray accepts fractions below 1 and whole numbers above (a trial shares a unit or takes whole ones).
    if value > 1 and not float(value).is_integer():
        raise ConfigError(path, f"{value!r}: Ray allows a fraction below 1 or a whole number; use e.g. 0.5 or 2")


class RayConfig(TrainingServiceConfig):
    """Run trials on a Ray cluster: an existing one (``address``) or a local one the experiment starts.

    Each trial runs in a trial runner started as a Ray task that holds the trial's resources
    (``numCpusPerTrial``, ``numGpusPerTrial``, ``resources``), so Ray decides where trials run and
    how many fit at once; Ray also sets ``CUDA_VISIBLE_DEVICES`` for the GPUs it gave the task.

    Args:
        address: the cluster to join: ``'auto'`` (``$RAY_ADDRESS`` or the cluster ``ray start``
            made on this machine), ``'HOST:PORT'`` of a head node's GCS, or ``'ray://HOST:PORT'``
            (Ray Client). Default: start a private local cluster, bound to 127.0.0.1, that stops
            with the experiment.
        num_cpus_per_trial: CPUs Ray reserves per trial (``num_cpus``); default 1; 0 allowed.
        num_gpus_per_trial: GPUs per trial (``num_gpus``, a fraction below 1 shares a GPU);
            default ``trialGpuNumber``, else 0.
        resources: custom Ray resources per trial, e.g. ``{'accelerator_type:A100': 1}``.
        local_cluster_cpus / local_cluster_gpus: CPUs / GPUs of the local cluster (without
            ``address``); default what Ray detects.
        reuse_mode: true (default): a runner task runs one trial after another (no task start
            per trial); false: one Ray task per trial.
        nni_manager_ip: the address runner tasks connect back to; default the experiment's
            ``nniManagerIp``, else 127.0.0.1 (enough for a local cluster).
    """

    platform_name = "ray"
    _fields = {
        "platform": Field("str", default="ray"),
        "address": Field("str"),
        "num_cpus_per_trial": Field("json", default=1),
        "num_gpus_per_trial": Field("json"),
        "resources": Field("json", default={}),
        "local_cluster_cpus": Field("int", min=1, max=1_000_000),
        "local_cluster_gpus": Field("int", min=0, max=100_000),
        "reuse_mode": Field("bool", default=True),
        "nni_manager_ip": Field("str"),
    }

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        address = canon["address"]
        if address is not None:
            address = address.strip()
            if address != "auto" and not _ADDRESS_RE.match(address):
                raise ConfigError(join(path, "address"), f"expected 'auto', 'HOST:PORT' or 'ray://HOST:PORT' of a Ray cluster, got {short_repr(canon['address'])}; leave it out to start a local cluster")
            canon["address"] = address
            for key in ("localClusterCpus", "localClusterGpus"):
                if canon[key] is not None:
                    raise ConfigError(join(path, key), "only applies to the local cluster the experiment starts (no address); the cluster at address has its own resources")

        cpus = _number(canon["numCpusPerTrial"] if canon["numCpusPerTrial"] is not None else 1, join(path, "numCpusPerTrial"), "a number of CPUs >= 0 (e.g. 1 or 0.5)")
        _fraction_ok(cpus, join(path, "numCpusPerTrial"))
        canon["numCpusPerTrial"] = cpus

        trial_gpus = ctx.experiment.get("trialGpuNumber")
        if canon["numGpusPerTrial"] is None:
            canon["numGpusPerTrial"] = trial_gpus or 0
        else:
            gpus = _number(canon["numGpusPerTrial"], join(path, "numGpusPerTrial"), "a number of GPUs >= 0 (e.g. 1 or 0.5)")
            _fraction_ok(gpus, join(path, "numGpusPerTrial"))
            if trial_gpus is not None and trial_gpus != gpus:
                raise ConfigError(join(path, "numGpusPerTrial"), f"{gpus} differs from trialGpuNumber {trial_gpus}; give one of them or make them equal")
            canon["numGpusPerTrial"] = gpus

        resources = canon["resources"] if canon["resources"] is not None else {}
        if not isinstance(resources, dict):
            raise ConfigError(join(path, "resources"), f"expected a mapping of Ray resource name to amount (e.g. {{'accelerator_type:A100': 1}}), got {type_name(resources)} {short_repr(resources)}")
        checked = {}
        for name, amount in resources.items():
            at = join(path, "resources") + f"[{name!r}]"
            if not isinstance(name, str) or not _RESOURCE_NAME_RE.match(name):
                raise ConfigError(at, "expected a Ray resource name (letters, digits, '_.:/-')")
            if name in _RESERVED:
                use = _RESERVED[name]
                raise ConfigError(at, f"{name!r} is set by {use}" if use else f"{name!r} is not a per-trial resource here; the Ray platform does not reserve it")
            value = _number(amount, at, "an amount > 0 (e.g. 1 or 0.5)")
            if value == 0:
                raise ConfigError(at, "expected an amount > 0; leave the resource out to not ask for it")
            _fraction_ok(value, at)
            checked[name] = value
        canon["resources"] = checked

        if canon["nniManagerIp"] is None:
            canon["nniManagerIp"] = ctx.experiment.get("nniManagerIp")
        if canon["nniManagerIp"] is not None and not canon["nniManagerIp"].strip():
            raise ConfigError(join(path, "nniManagerIp"), "must not be empty; give an address of this machine that the Ray nodes can reach")
