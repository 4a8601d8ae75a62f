"""``platform: aml``: trials in Azure Machine Learning runs (always reuse mode, as the docs say).

Everything AML-specific goes through :class:`AmlAdapter`, a thin layer over the documented
``azureml.core`` (v1 SDK) interface, imported lazily (``pip install azureml azureml-sdk``):

* ``Workspace(subscription_id, resource_group, workspace_name)`` and
  ``ComputeTarget(workspace, name)`` (``computeTarget``);
* ``Environment(name)`` with ``docker.base_image`` = ``dockerImage``,
  ``python.user_managed_dependencies = True`` and ``environment_variables`` (the runner's token);
* ``ScriptRunConfig(source_directory=trialCodeDirectory, command=..., compute_target=...,
  environment=...)`` submitted with ``Experiment(workspace, "nni_exp_<id>").submit(...)``;
* ``run.get_status()`` / ``run.get_details()["error"]`` / ``run.cancel()`` / ``run.get_portal_url()``.

AML uploads the code folder as the run's snapshot and starts the command in it; the command
links that folder as ``/tmp/nni-aml/<experiment id>-<random>/<environment>/code`` and puts the trial folders
in the run's ``outputs/trials`` (uploaded by AML and shown in the studio under *Outputs + logs*),
so the runner gets absolute paths. Trial files are therefore not copied back to this machine.
"""
from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import shlex
from typing import Any, Optional

from nni.runtime.training_service import ExperimentContext

from .base import CloudApiError, CloudTrainingService, JobState

__all__ = ["AmlTrainingService", "AmlAdapter", "import_azureml", "check_config"]

_STATES = {"NotStarted": "waiting", "Queued": "waiting", "Preparing": "waiting", "Starting": "waiting", "Provisioning": "waiting",
           "Running": "running", "Finalizing": "running", "CancelRequested": "running", "Completed": "succeeded",
           "Failed": "failed", "Canceled": "stopped", "NotResponding": "running"}

INSTALL_HINT = "the AML platform needs the Azure ML SDK: python3 -m pip install azureml azureml-sdk (then az login)"


def import_azureml() -> Any:
    """The ``azureml.core`` module, or a one-line error with the install hint."""
    try:
        import azureml.core as core  # noqa: PLC0415 - optional, heavy
    except ImportError as err:
        raise CloudApiError(f"trainingService.platform: aml: cannot import azureml.core ({err}); {INSTALL_HINT}") from None
    return core


class AmlAdapter:
    """The AML calls the training service makes (blocking; the service runs them in threads).

    Args:
        core: the ``azureml.core`` module (or an object with the same names).
        config: the canonical ``aml`` training-service mapping.
        experiment_name: the AML experiment the runs go to.
    """

    def __init__(self, core: Any, config: dict, experiment_name: str) -> None:
        self.core = core
        self.config = config
        self.experiment_name = experiment_name
        self.workspace = None
        self.compute = None
        self.experiment = None
        self.runs: dict[str, Any] = {}

    def connect(self) -> None:
        c = self.config
        try:
            self.workspace = self.core.Workspace(subscription_id=c["subscriptionId"], resource_group=c["resourceGroup"],
                                                 workspace_name=c["workspaceName"])
        except Exception as err:  # noqa: BLE001 - the SDK raises its own types
            raise CloudApiError(f"trainingService.workspaceName: cannot open AML workspace {c['workspaceName']!r} "
                                f"(subscription {c['subscriptionId']}, resource group {c['resourceGroup']}): {_one_line(err)}") from None
        try:
            self.compute = self._compute_target_class()(workspace=self.workspace, name=c["computeTarget"])
        except Exception as err:  # noqa: BLE001
            raise CloudApiError(f"trainingService.computeTarget: AML compute target {c['computeTarget']!r} not found in "
                                f"workspace {c['workspaceName']!r}: {_one_line(err)}") from None
        self.experiment = self.core.Experiment(workspace=self.workspace, name=self.experiment_name)

    def _compute_target_class(self) -> Any:
        target = getattr(self.core, "ComputeTarget", None)
        if target is None:
            import importlib

            target = importlib.import_module(self.core.__name__ + ".compute").ComputeTarget
        return target

    def submit(self, name: str, source_directory: str, command: str, env_vars: dict) -> str:
        env = self.core.Environment(name=name)
        env.docker.base_image = self.config.get("dockerImage") or "msranni/nni:latest"
        env.python.user_managed_dependencies = True
        env.environment_variables = dict(env_vars)
        src = self.core.ScriptRunConfig(source_directory=source_directory, command=["bash", "-c", command],
                                        compute_target=self.compute, environment=env)
        run = self.experiment.submit(src, tags={"nni_environment": name})
        self.runs[run.id] = run
        return run.id

    def status(self, run_id: str) -> tuple[str, str]:
        run = self.runs[run_id]
        status = str(run.get_status())
        message = ""
        if status == "Failed":
            error = (run.get_details() or {}).get("error") or {}
            inner = error.get("error", error) if isinstance(error, dict) else {}
            message = (inner.get("message") if isinstance(inner, dict) else None) or str(error)
        return status, _one_line(message)

    def cancel(self, run_id: str) -> None:
        self.runs[run_id].cancel()

    def url(self, run_id: str) -> Optional[str]:
        try:
            return self.runs[run_id].get_portal_url()
        except Exception:  # noqa: BLE001 - only a link
            return None


def _one_line(err: Any) -> str:
    return " ".join(str(err).split())[:300]


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def check_config(config: dict) -> None:
    """What core's AmlConfig leaves open: Azure's own naming rules (values from ``config.json``)."""
    from nni.experiment.config.base import ConfigError

    sub = str(config.get("subscriptionId") or "")
    if not _GUID.fullmatch(sub):
        raise ConfigError("trainingService.subscriptionId", f"expected an Azure subscription id (a GUID like "
                          f"'01234567-89ab-cdef-0123-456789abcdef', from the workspace's config.json), got {sub!r}")
    group = str(config.get("resourceGroup") or "")
    if not re.fullmatch(r"[-\w.()]{1,90}", group) or group.endswith("."):
        raise ConfigError("trainingService.resourceGroup", f"expected 1-90 letters, digits, '-', '_', '.', '(' or ')' (not ending with '.'), got {group!r}")
    workspace = str(config.get("workspaceName") or "")
    if not re.fullmatch(r"[A-Za-z0-9][-\w]{2,32}", workspace):
        raise ConfigError("trainingService.workspaceName", f"expected 3-33 letters, digits, '-' or '_' starting with a letter or digit, got {workspace!r}")
    target = str(config.get("computeTarget") or "")
    if not re.fullmatch(r"[A-Za-z][-A-Za-z0-9]{1,31}", target):
        raise ConfigError("trainingService.computeTarget", f"expected an AML compute cluster name (2-32 letters, digits and '-', "
                          f"starting with a letter), got {target!r}")


class AmlTrainingService(CloudTrainingService):
    """Runs trials in AML runs (``platform: aml``; see the module docstring).

    ``adapter``: an :class:`AmlAdapter` to use instead of one over ``azureml.core`` (tests)."""

    platform = "aml"
    display_name = "AML"

    def __init__(self, config: dict, context: ExperimentContext, adapter: Optional[AmlAdapter] = None, **kwargs: Any) -> None:
        super().__init__(config, context, **kwargs)
        check_config(self.config)
        self.adapter = adapter
        # unique per service: two experiments' runs may share a node (and tests share this machine)
        self.base = f"/tmp/nni-aml/{context.experiment_id}-{secrets.token_hex(3)}"

    async def _thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def _open(self) -> None:
        if self.adapter is None:
            self.adapter = AmlAdapter(import_azureml(), self.config, f"nni_exp_{self.context.experiment_id}")
        await self._thread(self.adapter.connect)

    def _env_dir(self, env_id: str) -> str:
        return f"{self.base}/{env_id.rsplit('-', 1)[-1]}"

    async def _submit_job(self, env_id: str, command: str, env_vars: dict, gpu_number: Optional[int]) -> str:
        assert self.adapter is not None
        q = shlex.quote
        d = self._env_dir(env_id)
        # absolute paths for the runner: the snapshot (the run's start folder) as code/, its outputs/trials as trials/
        prefix = (f'mkdir -p outputs/trials {q(d)} && ln -sfn "$PWD" {q(d + "/code")} && '
                  f'ln -sfn "$PWD/outputs/trials" {q(d + "/trials")} && ')
        name = f"nni_exp_{self.context.experiment_id}_env_{env_id.rsplit('-', 1)[-1]}"
        try:
            return await self._thread(self.adapter.submit, name, self.context.trial_code_directory, prefix + command, env_vars)
        except CloudApiError:
            raise
        except Exception as err:  # noqa: BLE001 - the SDK's own errors (quota, snapshot too large ...)
            raise CloudApiError(f"AML: submit {name}: {type(err).__name__}: {_one_line(err)}") from None

    async def _job_state(self, job_id: str) -> JobState:
        assert self.adapter is not None
        try:
            status, message = await self._thread(self.adapter.status, job_id)
        except Exception as err:  # noqa: BLE001
            raise CloudApiError(f"AML: run {job_id}: status unknown: {_one_line(err)}", retryable=True) from None
        return JobState(_STATES.get(status, "waiting"), status + (f": {message}" if message else ""))

    async def _cancel_job(self, job_id: str) -> None:
        assert self.adapter is not None
        await self._thread(self.adapter.cancel, job_id)

    def _job_context(self, env_id: str) -> ExperimentContext:
        d = self._env_dir(env_id)
        return dataclasses.replace(self.context, experiment_dir=d, trial_code_directory=f"{d}/code", shared_storage=None)

    def _runner_config(self) -> dict:
        return {"maxTrialNumberPerGpu": self.config.get("maxTrialNumberPerGpu", 1),
                "useActiveGpu": bool(self.config.get("useActiveGpu", False))}

    def _job_url(self, job_id: str) -> Optional[str]:
        return self.adapter.url(job_id) if self.adapter is not None else None
