"""``platform: openpai`` (alias ``pai``): trials in OpenPAI jobs, through OpenPAI's REST API v2.

* Code and trial folders live on the OpenPAI team storage (NFS ...): the trial code is copied to
  ``<localStorageMountPoint>/nni/<experiment id>/code`` and the jobs see it at
  ``<containerStorageMountPoint>/nni/<experiment id>/code``; trials write their files under
  ``.../nni/<experiment id>/trials/<trial id>`` there, and ``stdout``, ``stderr`` and ``trial.log``
  are copied into the trial's folder of the experiment when it ends.
* Jobs are OpenPAI job protocol v2 documents (YAML), submitted with
  ``POST <host>/rest-server/api/v2/jobs`` (``Authorization: Bearer <token>``), watched with
  ``GET .../jobs/<username>~<job name>`` and stopped with
  ``PUT .../jobs/<username>~<job name>/executionType`` ``{"value": "STOP"}``.
* The job runs the trial runner in its (first) task role; the runner's token is a job
  ``secret`` (``<% $secrets.nni_runner_token %>``), which OpenPAI hides in its web portal.
* ``openpaiConfig`` / ``openpaiConfigFile``: the user's job protocol is the template; its name is
  replaced (``nni_exp_<experiment id>_trial_<trial id>``, ``..._env_<n>`` for a reuse-mode
  environment), the runner is appended to the first task role's ``commands`` (the other task
  roles run their commands as given), and the NNI fields (``dockerImage``, ``trialCpuNumber``,
  ``trialMemorySize``, ``trialGpuNumber``, ``virtualCluster``, ``storageConfigName``) only fill in
  what the template leaves out.
"""
from __future__ import annotations

import asyncio
import copy
import dataclasses
import posixpath
import re
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

from nni.runtime.training_service import ExperimentContext

from .base import CloudApiError, CloudTrainingService, JobState, copy_code
from .http import HttpClient

__all__ = ["OpenpaiTrainingService", "build_job_protocol", "check_job_protocol"]

_STATES = {"WAITING": "waiting", "UNKNOWN": "waiting", "RUNNING": "running", "STOPPING": "running",
           "SUCCEEDED": "succeeded", "FAILED": "failed", "STOPPED": "stopped"}
_TOKEN_SECRET = "nni_runner_token"
_NAME_OK = re.compile(r"^[A-Za-z0-9_-]+$")


def _err(path: str, detail: str) -> ValueError:
    from nni.experiment.config.base import ConfigError

    return ConfigError(path, detail)


def check_job_protocol(job: Any, path: str) -> dict:
    """Check the parts of an OpenPAI job protocol NNI relies on; one-line errors naming the key."""
    if not isinstance(job, dict):
        raise _err(path, f"expected an OpenPAI job protocol mapping (protocolVersion, taskRoles ...), got {type(job).__name__}")
    version = job.get("protocolVersion", 2)
    if str(version) != "2":
        raise _err(f"{path}.protocolVersion", f"must be 2 (OpenPAI job protocol v2), got {version!r}")
    roles = job.get("taskRoles")
    if not isinstance(roles, dict) or not roles:
        raise _err(f"{path}.taskRoles", "required: a mapping of task role name -> {instances, commands, ...}")
    images = {p.get("name") for p in job.get("prerequisites") or [] if isinstance(p, dict) and p.get("type") == "dockerimage"}
    for name, role in roles.items():
        at = f"{path}.taskRoles.{name}"
        if not _NAME_OK.match(str(name)):
            raise _err(at, "task role names may contain letters, digits, '_' and '-' only")
        if not isinstance(role, dict):
            raise _err(at, f"expected a mapping (instances, dockerImage, resourcePerInstance, commands), got {type(role).__name__}")
        instances = role.get("instances", 1)
        if not isinstance(instances, int) or isinstance(instances, bool) or instances < 1:
            raise _err(f"{at}.instances", f"must be a positive integer, got {instances!r}")
        commands = role.get("commands", [])
        if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
            raise _err(f"{at}.commands", "must be a list of shell command strings")
        image = role.get("dockerImage")
        if image is not None and image not in images:
            raise _err(f"{at}.dockerImage", f"{image!r} names no dockerimage prerequisite; defined: {sorted(i for i in images if i) or 'none'}")
        res = role.get("resourcePerInstance")
        if res is not None:
            if not isinstance(res, dict):
                raise _err(f"{at}.resourcePerInstance", "expected a mapping {cpu, memoryMB, gpu}")
            for key in ("cpu", "memoryMB", "gpu"):
                value = res.get(key)
                if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                    raise _err(f"{at}.resourcePerInstance.{key}", f"must be a non-negative integer, got {value!r}")
    return job


def load_job_template(config: dict) -> Optional[dict]:
    """The user's job protocol (``openpaiConfig`` or the YAML of ``openpaiConfigFile``), checked."""
    if config.get("openpaiConfig") is not None:
        return check_job_protocol(copy.deepcopy(config["openpaiConfig"]), "trainingService.openpaiConfig")
    path = config.get("openpaiConfigFile")
    if path is None:
        return None
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise _err("trainingService.openpaiConfigFile", f"cannot read {path}: {err.strerror or err}") from None
    try:
        job = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise _err("trainingService.openpaiConfigFile", f"{path} is not valid YAML: {' '.join(str(err).split())[:200]}") from None
    return check_job_protocol(job, "trainingService.openpaiConfigFile")


def build_job_protocol(config: dict, name: str, command: str, token: str, gpu_number: Optional[int],
                       template: Optional[dict] = None) -> dict:
    """The OpenPAI job protocol v2 document of one job running ``command``."""
    job = copy.deepcopy(template) if template else {}
    job["protocolVersion"] = 2
    job["name"] = name
    job["type"] = "job"
    job.setdefault("jobRetryCount", 0)
    prerequisites = job.setdefault("prerequisites", [])
    images = [p for p in prerequisites if isinstance(p, dict) and p.get("type") == "dockerimage"]
    if not images:
        images = [{"type": "dockerimage", "uri": config.get("dockerImage") or "msranni/nni:latest", "name": "nni_image"}]
        prerequisites.append(images[0])
    roles = job.setdefault("taskRoles", {})
    if not roles:
        roles["trialrunner"] = {}
    secrets = job.get("secrets") if isinstance(job.get("secrets"), dict) else {}
    secrets[_TOKEN_SECRET] = token
    job["secrets"] = secrets
    runner = f"export NNI_RUNNER_TOKEN=<% $secrets.{_TOKEN_SECRET} %> && {command}"
    for index, (role_name, role) in enumerate(roles.items()):
        role.setdefault("instances", 1)
        role.setdefault("dockerImage", images[0]["name"])
        res = role.setdefault("resourcePerInstance", {})
        if config.get("trialCpuNumber") is not None:
            res.setdefault("cpu", config["trialCpuNumber"])
        if config.get("trialMemorySize") is not None:
            res.setdefault("memoryMB", int(config["trialMemorySize"]))
        res.setdefault("gpu", int(gpu_number or 0))
        if index == 0:
            role["commands"] = list(role.get("commands") or []) + [runner]
            role.setdefault("completion", {"minFailedInstances": 1})
    defaults = job.setdefault("defaults", {})
    if config.get("virtualCluster"):
        defaults.setdefault("virtualCluster", config["virtualCluster"])
    defaults.setdefault("virtualCluster", "default")
    if config.get("storageConfigName"):
        extras = job.setdefault("extras", {})
        plugins = extras.setdefault("com.microsoft.pai.runtimeplugin", [])
        if not any(isinstance(p, dict) and p.get("plugin") == "teamwise_storage" for p in plugins):
            plugins.append({"plugin": "teamwise_storage", "parameters": {"storageConfigNames": [config["storageConfigName"]]}})
    return job


class OpenpaiTrainingService(CloudTrainingService):
    """Runs trials in OpenPAI jobs (``platform: openpai``; see the module docstring)."""

    platform = "openpai"
    display_name = "OpenPAI"

    def __init__(self, config: dict, context: ExperimentContext, **kwargs: Any) -> None:
        super().__init__(config, context, **kwargs)
        self.reuse = self.config.get("reuseMode", True) is not False
        host = str(self.config.get("host") or "").rstrip("/")
        if "://" not in host:
            host = "https://" + host  # the documented default protocol
        self.host = host
        self.username = str(self.config.get("username") or "")
        self.template = load_job_template(self.config)
        self.local_root = Path(self.config["localStorageMountPoint"]) / "nni" / context.experiment_id
        self.container_root = posixpath.join(self.config["containerStorageMountPoint"], "nni", context.experiment_id)
        self.http = HttpClient("OpenPAI", secrets=(str(self.config.get("token") or ""),))
        self._names: dict[str, str] = {}  # env id -> job name

    # ----- REST -----

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.config.get('token')}"}

    def _job_path(self, name: str) -> str:
        return f"{self.host}/rest-server/api/v2/jobs/{quote(self.username, safe='')}~{quote(name, safe='')}"

    async def _prepare(self) -> None:
        def copy() -> int:
            (self.local_root / "trials").mkdir(parents=True, exist_ok=True)
            return copy_code(self.context.trial_code_directory, self.local_root / "code")

        try:
            await asyncio.get_running_loop().run_in_executor(None, copy)
        except OSError as err:
            raise CloudApiError(f"trainingService.localStorageMountPoint: cannot write the trial code to {self.local_root} "
                                f"({err.strerror or err}); is the OpenPAI storage mounted there?") from None

    def _job_name(self, env_id: str) -> str:
        env = self._envs.get(env_id)
        if env is not None and env.single and env.trial:
            return f"nni_exp_{self.context.experiment_id}_trial_{env.trial}"
        return f"nni_exp_{self.context.experiment_id}_env_{env_id.rsplit('-', 1)[-1]}"

    async def _submit_job(self, env_id: str, command: str, env_vars: dict, gpu_number: Optional[int]) -> str:
        import yaml

        name = self._job_name(env_id)
        job = build_job_protocol(self.config, name, command, env_vars["NNI_RUNNER_TOKEN"], gpu_number, self.template)
        headers = dict(self._headers(), **{"Content-Type": "text/yaml"})
        await self.http.request("POST", f"{self.host}/rest-server/api/v2/jobs", headers=headers,
                                data=yaml.safe_dump(job, sort_keys=False).encode(), what=f"submit job {name}")
        self._names[env_id] = name
        return name

    async def _job_state(self, job_id: str) -> JobState:
        answer = await self.http.request("GET", self._job_path(job_id), headers=self._headers(), what=f"job {job_id}")
        status = (answer or {}).get("jobStatus") or {} if isinstance(answer, dict) else {}
        state = str(status.get("state") or "UNKNOWN").upper()
        why = status.get("appExitDiagnostics") or status.get("exitDiagnostics") or status.get("appExitType") or ""
        code = status.get("appExitCode", status.get("exitCode"))
        message = state + (f" (exit code {code})" if code not in (None, 0) else "") + (f": {' '.join(str(why).split())[:300]}" if why else "")
        return JobState(_STATES.get(state, "waiting"), message)

    async def _cancel_job(self, job_id: str) -> None:
        await self.http.request("PUT", f"{self._job_path(job_id)}/executionType", headers=self._headers(),
                                json_body={"value": "STOP"}, what=f"stop job {job_id}")

    async def _close(self) -> None:
        await self.http.close()

    # ----- paths -----

    def _job_context(self, env_id: str) -> ExperimentContext:
        return dataclasses.replace(self.context, experiment_dir=self.container_root,
                                   trial_code_directory=posixpath.join(self.container_root, "code"), shared_storage=None)

    def _job_workdir(self) -> Optional[str]:
        return self.container_root

    def _trial_files_dir(self, trial_id: str) -> Optional[Path]:
        return self.local_root / "trials" / trial_id

    def _job_url(self, job_id: str) -> Optional[str]:
        return f"{self.host}/job-detail.html?username={quote(self.username)}&jobName={quote(job_id)}"
