"""``trainingService: {platform: slurm, ...}``: the SLURM platform's config class.

Registered as the ``slurm`` platform when imported (the service class names it as its
``config_class``, which is how the config loader finds it).
"""
from __future__ import annotations

import re
import shlex
from typing import Any

from nni.experiment.config.base import ConfigError, Context, Field, join, short_repr, type_name
from nni.experiment.config.training_service import TrainingServiceConfig

__all__ = ["SlurmConfig", "FORBIDDEN_SBATCH_OPTIONS"]

#: sbatch options the service sets itself (or that would break how it follows its jobs):
#: option -> why, for the one-line error.
FORBIDDEN_SBATCH_OPTIONS = {
    "--wrap": "the service writes the batch script itself",
    "--array": "each runner is its own job (array jobs are not used)",
    "-a": "each runner is its own job (array jobs are not used)",
    "--wait": "the service follows its jobs with squeue",
    "-W": "the service follows its jobs with squeue",
    "--test-only": "the job would never run",
    "--parsable": "the service sets it",
    "--hold": "a held runner job never starts",
    "-H": "a held runner job never starts",
    "--job-name": "the service names its jobs nni-<experiment id>-<runner> to find them",
    "-J": "the service names its jobs nni-<experiment id>-<runner> to find them",
    "--output": "the service collects the job's output into the trial folders",
    "-o": "the service collects the job's output into the trial folders",
    "--error": "the service collects the job's output into the trial folders",
    "-e": "the service collects the job's output into the trial folders",
    "--requeue": "the service re-queues the trials of a lost job itself (SLURM's requeue would restart a runner the manager no longer expects)",
    "--export": "the runner's token reaches the job through the exported environment; use --export=ALL,NAME=value to add variables",
}

_NAME_RE = re.compile(r"^[A-Za-z0-9_.,:+@%-]+$")


def _check_sbatch_args(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        try:
            items = shlex.split(value)
        except ValueError as err:
            raise ConfigError(path, f"cannot split {short_repr(value)} into sbatch options ({err}); give a list of strings") from None
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(path, f"expected a list of sbatch options like ['--constraint=v100'] or one string, got {type_name(value)} {short_repr(value)}")
    for i, item in enumerate(items):
        at = join(path, i) if not isinstance(value, str) else path
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(at, f"expected a non-empty string (an sbatch option), got {type_name(item)} {short_repr(item)}")
        if i == 0 and not item.startswith("-"):
            raise ConfigError(at, f"expected an sbatch option starting with '-' (e.g. '--constraint=v100'), got {short_repr(item)}")
        if not item.startswith("-"):
            continue  # the value of the option before it ("-C", "v100")
        name, _, rest = item.partition("=")
        if name.startswith("-") and not name.startswith("--") and len(name) > 2:
            name = name[:2]  # "-pdebug" is "-p debug"
        why = FORBIDDEN_SBATCH_OPTIONS.get(name)
        if name == "--export" and rest.upper().startswith("ALL"):
            why = None
        if why:
            raise ConfigError(at, f"{item!r} is not allowed: {why}")
    return items


class SlurmConfig(TrainingServiceConfig):
    """Run trials on a SLURM cluster, each in a job submitted with ``sbatch``.

    The manager runs where ``sbatch`` works (a login node); the jobs must see the trial code
    and the experiment folder at the same paths (a shared file system, as on every SLURM
    cluster) and must reach the manager at ``nniManagerIp``.

    Args:
        partition / account / qos: ``--partition`` / ``--account`` / ``--qos`` of every job.
        time_limit: ``--time`` of every job (duration: ``'30m'``, ``'2h'``, ``'1d'``).
        gpus_per_trial: GPUs per job (``--gres=gpu:N``); default ``trialGpuNumber`` (0: none).
        cpus_per_trial: ``--cpus-per-task`` (default 1).
        memory_per_trial: ``--mem`` (size: ``'4gb'``, ``'512mb'``).
        sbatch_args: extra sbatch options, a list (``['--constraint=v100', '--nice=10']``) or one
            string; options the service sets itself (``--output``, ``--job-name`` ...) are refused.
        setup_script: shell lines run in the job before the runner (``module load ...``,
            ``source venv/bin/activate``); the job fails with their output if one fails.
        reuse_mode: true (default): a runner job runs one trial after another, so a trial does
            not wait for SLURM to start a job; false: one job per trial.
        max_runners: reuse mode: the most runner jobs at once (default: one per running trial,
            i.e. up to ``trialConcurrency``).
        python_path: a folder put at the front of ``PATH`` in the job; the runner then runs
            with its ``python3``. Default: the manager's own interpreter (shared file system).
        nni_manager_ip: the address jobs connect back to; default the experiment's
            ``nniManagerIp``, else 127.0.0.1 (a single-machine cluster).
    """

    platform_name = "slurm"
    _fields = {
        "platform": Field("str", default="slurm"),
        "partition": Field("str"),
        "account": Field("str"),
        "qos": Field("str"),
        "time_limit": Field("duration"),
        "gpus_per_trial": Field("int", min=0, max=1024),
        "cpus_per_trial": Field("int", default=1, min=1, max=100000),
        "memory_per_trial": Field("size"),
        "sbatch_args": Field("json", default=[]),
        "setup_script": Field("str"),
        "reuse_mode": Field("bool", default=True),
        "max_runners": Field("int", min=1, max=100000),
        "python_path": Field("str"),
        "nni_manager_ip": Field("str"),
    }

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        for key in ("partition", "account", "qos"):
            value = canon[key]
            if value is not None and not _NAME_RE.match(value):
                raise ConfigError(join(path, key), f"expected a SLURM {key} name (letters, digits, '_.-', comma-separated for several), got {short_repr(value)}")
        canon["sbatchArgs"] = _check_sbatch_args(canon["sbatchArgs"] if canon["sbatchArgs"] is not None else [], join(path, "sbatchArgs"))
        trial_gpus = ctx.experiment.get("trialGpuNumber")
        if canon["gpusPerTrial"] is None:
            canon["gpusPerTrial"] = trial_gpus or 0
        elif trial_gpus is not None and trial_gpus != canon["gpusPerTrial"]:
            raise ConfigError(join(path, "gpusPerTrial"), f"{canon['gpusPerTrial']} differs from trialGpuNumber {trial_gpus}; give one of them (gpusPerTrial wins on SLURM) or make them equal")
        if canon["maxRunners"] is not None and not canon["reuseMode"]:
            raise ConfigError(join(path, "maxRunners"), "only applies in reuse mode (reuseMode: true); without it every trial is its own job and trialConcurrency bounds them")
        if canon["pythonPath"] is not None and not canon["pythonPath"].startswith("/"):
            raise ConfigError(join(path, "pythonPath"), f"expected an absolute folder on the compute nodes (e.g. /opt/venv/bin), got {short_repr(canon['pythonPath'])}")
        if canon["nniManagerIp"] is None:
            canon["nniManagerIp"] = ctx.experiment.get("nniManagerIp")
        if canon["nniManagerIp"] is not None and not canon["nniManagerIp"].strip():
            raise ConfigError(join(path, "nniManagerIp"), "must not be empty; give the login node's address the jobs can reach")
