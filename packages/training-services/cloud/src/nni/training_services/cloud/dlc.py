"""``platform: dlc``: trials in Alibaba Cloud PAI-DLC jobs, submitted from a PAI-DSW server.

PAI-DLC's OpenAPI (version 2020-12-03, ROA style) is called directly over HTTPS with the
account's AccessKey (Alibaba Cloud ROA signature, HMAC-SHA1); the PAI-DLC Python SDK the docs
install wraps the same calls, so it is not needed here:

* ``POST /api/v1/jobs`` (CreateJob): ``DisplayName``, ``JobType`` (``jobType``), ``JobSpecs``
  (``type``, ``image``, ``podCount``, ``ecsSpec``), ``UserCommand`` (the trial runner),
  ``DataSources`` (``nasDataSourceId``) and ``Envs`` (the runner's token);
* ``GET /api/v1/jobs/<JobId>`` (GetJob): ``Status``, ``ReasonCode``, ``ReasonMessage``;
* ``POST /api/v1/jobs/<JobId>/stop`` (StopJob).

The endpoint is ``https://pai-dlc.<region>.aliyuncs.com``; the environment variable
``NNI_DLC_ENDPOINT`` replaces it (a VPC endpoint, or a stand-in in tests).

DSW and DLC mount the same NAS: the code is copied to
``<localStorageMountPoint>/nni/<experiment id>/code`` and the jobs see it under
``<containerStorageMountPoint>``; trial files are read back from the NAS as with OpenPAI.
"""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import email.utils
import hashlib
import hmac
import json
import os
import posixpath
import re
import uuid
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote, urlsplit

from nni.runtime.training_service import ExperimentContext

from .base import CloudApiError, CloudTrainingService, JobState, copy_code
from .http import HttpClient

__all__ = ["DlcTrainingService", "roa_signature", "check_config", "API_VERSION"]

API_VERSION = "2020-12-03"

_STATES = {
    "Creating": "waiting", "Queuing": "waiting", "Bidding": "waiting", "EnvPreparing": "waiting",
    "SanityChecking": "waiting", "Running": "running", "Restarting": "running", "Stopping": "running",
    "Succeeded": "succeeded", "SucceededReserving": "succeeded", "Failed": "failed", "FailedReserving": "failed",
    "Stopped": "stopped",
}


def roa_signature(secret: str, method: str, path: str, query: dict, headers: dict) -> str:
    """Alibaba Cloud ROA signature: base64(HMAC-SHA1(secret, string to sign)), where the string is
    ``METHOD\\nAccept\\nContent-MD5\\nContent-Type\\nDate\\n`` + the ``x-acs-*`` headers (lower
    case, sorted, ``name:value\\n``) + the path with its sorted query."""
    lower = {k.lower(): str(v) for k, v in headers.items()}
    parts = [method.upper(), lower.get("accept", ""), lower.get("content-md5", ""), lower.get("content-type", ""), lower.get("date", "")]
    acs = "".join(f"{k}:{lower[k]}\n" for k in sorted(lower) if k.startswith("x-acs-"))
    resource = path
    if query:
        resource += "?" + "&".join(f"{k}={v}" if v not in (None, "") else k for k, v in sorted(query.items()))
    to_sign = "\n".join(parts) + "\n" + acs + resource
    return base64.b64encode(hmac.new(secret.encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


def check_config(config: dict) -> None:
    """What core's DlcConfig leaves open: the values must be usable in PAI-DLC's API."""
    from nni.experiment.config.base import ConfigError

    region = str(config.get("region") or "")
    if not re.fullmatch(r"[a-z]{2,}(-[a-z0-9]+)+", region):
        raise ConfigError("trainingService.region", f"expected an Alibaba Cloud region id like 'cn-hangzhou', got {region!r}")
    kind = config.get("type") or ""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(kind)):
        raise ConfigError("trainingService.type", f"expected a PAI-DLC job spec type such as 'Worker', 'PS', 'Master' or 'Chief', got {kind!r}")
    for key in ("image", "ecsSpec", "nasDataSourceId", "accessKeyId"):
        value = str(config.get(key) or "")
        if not value or any(c.isspace() for c in value):
            raise ConfigError(f"trainingService.{key}", f"must be a non-empty value without spaces, got {value!r}")
    if not posixpath.isabs(str(config.get("containerStorageMountPoint") or "/root/data/")):
        raise ConfigError("trainingService.containerStorageMountPoint",
                          f"must be an absolute path in the DLC container, got {config.get('containerStorageMountPoint')!r}")


class DlcTrainingService(CloudTrainingService):
    """Runs trials in PAI-DLC jobs (``platform: dlc``; see the module docstring)."""

    platform = "dlc"
    display_name = "PAI-DLC"

    def __init__(self, config: dict, context: ExperimentContext, **kwargs: Any) -> None:
        super().__init__(config, context, **kwargs)
        check_config(self.config)
        self.endpoint = (os.environ.get("NNI_DLC_ENDPOINT") or f"https://pai-dlc.{self.config['region']}.aliyuncs.com").rstrip("/")
        self.local_root = Path(self.config.get("localStorageMountPoint") or "/home/admin/workspace/") / "nni" / context.experiment_id
        self.container_root = posixpath.join(self.config.get("containerStorageMountPoint") or "/root/data/", "nni", context.experiment_id)
        self.http = HttpClient("PAI-DLC", secrets=(str(self.config.get("accessKeySecret") or ""),))

    async def _call(self, method: str, path: str, body: Optional[dict] = None, what: str = "") -> Any:
        data = json.dumps(body).encode() if body is not None else b""
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Date": email.utils.formatdate(usegmt=True),
            "Host": urlsplit(self.endpoint).netloc,
            "x-acs-signature-method": "HMAC-SHA1",
            "x-acs-signature-nonce": uuid.uuid4().hex,
            "x-acs-signature-version": "1.0",
            "x-acs-version": API_VERSION,
        }
        if data:
            headers["Content-MD5"] = base64.b64encode(hashlib.md5(data).digest()).decode()
        signature = roa_signature(str(self.config["accessKeySecret"]), method, path, {}, headers)
        headers["Authorization"] = f"acs {self.config['accessKeyId']}:{signature}"
        return await self.http.request(method, self.endpoint + path, headers=headers, data=data or None, what=what)

    async def _prepare(self) -> None:
        def copy() -> int:
            (self.local_root / "trials").mkdir(parents=True, exist_ok=True)
            return copy_code(self.context.trial_code_directory, self.local_root / "code")

        try:
            await asyncio.get_running_loop().run_in_executor(None, copy)
        except OSError as err:
            raise CloudApiError(f"trainingService.localStorageMountPoint: cannot write the trial code to {self.local_root} "
                                f"({err.strerror or err}); is the NAS mounted there?") from None

    async def _submit_job(self, env_id: str, command: str, env_vars: dict, gpu_number: Optional[int]) -> str:
        name = f"nni_exp_{self.context.experiment_id}_env_{env_id.rsplit('-', 1)[-1]}"
        body = {
            "DisplayName": name,
            "JobType": self.config.get("jobType") or "TFJob",
            "JobSpecs": [{
                "Type": self.config.get("type") or "Worker",
                "Image": self.config["image"],
                "PodCount": int(self.config["podCount"]),
                "EcsSpec": self.config["ecsSpec"],
            }],
            "UserCommand": command,
            "DataSources": [{"DataSourceId": self.config["nasDataSourceId"]}],
            "Envs": dict(env_vars),
        }
        answer = await self._call("POST", "/api/v1/jobs", body, what=f"CreateJob {name}")
        job_id = answer.get("JobId") if isinstance(answer, dict) else None
        if not job_id:
            raise CloudApiError(f"PAI-DLC: CreateJob {name}: the answer has no JobId: {str(answer)[:200]}")
        return str(job_id)

    async def _job_state(self, job_id: str) -> JobState:
        answer = await self._call("GET", f"/api/v1/jobs/{quote(job_id, safe='')}", what=f"GetJob {job_id}")
        answer = answer if isinstance(answer, dict) else {}
        status = str(answer.get("Status") or "Creating")
        reason = " ".join(x for x in (answer.get("ReasonCode"), answer.get("ReasonMessage")) if x)
        return JobState(_STATES.get(status, "waiting"), status + (f": {reason}" if reason else ""))

    async def _cancel_job(self, job_id: str) -> None:
        await self._call("POST", f"/api/v1/jobs/{quote(job_id, safe='')}/stop", what=f"StopJob {job_id}")

    async def _close(self) -> None:
        await self.http.close()

    def _job_context(self, env_id: str) -> ExperimentContext:
        return dataclasses.replace(self.context, experiment_dir=self.container_root,
                                   trial_code_directory=posixpath.join(self.container_root, "code"), shared_storage=None)

    def _job_workdir(self) -> Optional[str]:
        return self.container_root

    def _trial_files_dir(self, trial_id: str) -> Optional[Path]:
        return self.local_root / "trials" / trial_id

    def _job_url(self, job_id: str) -> Optional[str]:
        return f"https://pai-dlc.console.aliyun.com/#/jobs/detail?jobId={quote(job_id)}&regionId={quote(str(self.config.get('region')))}"
