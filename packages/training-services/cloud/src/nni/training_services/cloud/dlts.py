"""``platform: dlts``: trials in DLTS (Deep Learning Training Service / DLWorkspace) jobs.

As the DLTS docs describe, the manager itself runs in a DLTS job on the cluster, in the user's
cluster working directory, which every job of the user mounts at the same path: trials run the
experiment's own folders (no copy), and only the runner's job is submitted.

The cluster dashboard's REST API (``dashboard`` of the config) is used:

* ``POST <dashboard>/api/clusters/<cluster>/jobs`` with the job parameters (``jobName``,
  ``image`` = ``dockerImage``, ``cmd``, ``resourcegpu`` = ``trialGpuNumber``, ``vcName``/``team``,
  ``jobtrainingtype: RegularJob``, ``env``) -> ``{"jobId": ...}``;
* ``GET .../jobs/<jobId>`` -> ``{"jobStatus": ..., "errorMsg": ...}``;
* ``PUT .../jobs/<jobId>/status`` ``{"status": "killing"}``.

The docs give only ``dashboard``; the rest comes from the environment of the manager's DLTS job:
``DLTS_CLUSTER`` (cluster id), ``DLTS_TEAM`` (virtual cluster; else ``DLWS_VC_NAME``),
``DLTS_EMAIL`` (else ``DLWS_USER_EMAIL``) and ``DLTS_PASSWORD`` (the dashboard's API token),
sent as the ``email`` / ``password`` query parameters the dashboard authenticates with.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote, urlencode

from nni.runtime.training_service import ExperimentContext

from .base import CloudApiError, CloudTrainingService, JobState
from .http import HttpClient

__all__ = ["DltsTrainingService", "dlts_settings"]

_STATES = {"unapproved": "waiting", "queued": "waiting", "scheduling": "waiting", "pausing": "waiting", "paused": "waiting",
           "running": "running", "killing": "running", "finished": "succeeded", "failed": "failed", "error": "failed",
           "killed": "stopped"}

_SETTINGS = (("cluster", ("DLTS_CLUSTER",)), ("team", ("DLTS_TEAM", "DLWS_VC_NAME")), ("email", ("DLTS_EMAIL", "DLWS_USER_EMAIL")),
             ("password", ("DLTS_PASSWORD",)))


def dlts_settings(environ: Optional[dict] = None) -> dict:
    """The DLTS account settings from the environment; one-line error naming what is missing."""
    environ = os.environ if environ is None else environ
    out = {}
    for key, names in _SETTINGS:
        value = next((environ[n] for n in names if environ.get(n)), None)
        if value is None:
            raise ValueError(f"trainingService (platform dlts): environment variable {names[0]} is not set; the DLTS platform "
                             f"needs DLTS_CLUSTER, DLTS_TEAM, DLTS_EMAIL and DLTS_PASSWORD (the dashboard's API token)")
        out[key] = value
    return out


class DltsTrainingService(CloudTrainingService):
    """Runs trials in DLTS jobs (``platform: dlts``; see the module docstring)."""

    platform = "dlts"
    display_name = "DLTS"

    def __init__(self, config: dict, context: ExperimentContext, **kwargs: Any) -> None:
        super().__init__(config, context, **kwargs)
        dashboard = str(self.config.get("dashboard") or "").rstrip("/")
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", dashboard):
            from nni.experiment.config.base import ConfigError

            raise ConfigError("trainingService.dashboard", f"expected the cluster dashboard URL (http://... or https://...), got {dashboard!r}")
        self.dashboard = dashboard
        self.settings = dlts_settings()
        self.http = HttpClient("DLTS", secrets=(self.settings["password"],))

    def _url(self, path: str) -> str:
        auth = urlencode({"email": self.settings["email"], "password": self.settings["password"]})
        return f"{self.dashboard}/api/clusters/{quote(self.settings['cluster'], safe='')}/jobs{path}?{auth}"

    async def _submit_job(self, env_id: str, command: str, env_vars: dict, gpu_number: Optional[int]) -> str:
        name = f"nni_exp_{self.context.experiment_id}_env_{env_id.rsplit('-', 1)[-1]}"
        body = {
            "jobName": name,
            "image": self.config.get("dockerImage") or "msranni/nni:latest",
            "cmd": command,
            "resourcegpu": int(gpu_number or 0),
            "vcName": self.settings["team"],
            "team": self.settings["team"],
            "userName": self.settings["email"],
            "jobtrainingtype": "RegularJob",
            "preemptionAllowed": False,
            "workPath": "./",
            "enableworkpath": True,
            "env": [{"name": k, "value": v} for k, v in env_vars.items()],
        }
        answer = await self.http.request("POST", self._url(""), json_body=body, what=f"submit job {name}")
        job_id = answer.get("jobId") if isinstance(answer, dict) else None
        if not job_id:
            raise CloudApiError(f"DLTS: submit job {name}: the answer has no jobId: {str(answer)[:200]}")
        return str(job_id)

    async def _job_state(self, job_id: str) -> JobState:
        answer = await self.http.request("GET", self._url(f"/{quote(job_id, safe='')}"), what=f"job {job_id}")
        answer = answer if isinstance(answer, dict) else {}
        status = str(answer.get("jobStatus") or "queued").lower()
        why = answer.get("errorMsg") or ""
        return JobState(_STATES.get(status, "waiting"), status + (f": {' '.join(str(why).split())[:300]}" if why else ""))

    async def _cancel_job(self, job_id: str) -> None:
        await self.http.request("PUT", self._url(f"/{quote(job_id, safe='')}/status"), json_body={"status": "killing"},
                                what=f"kill job {job_id}")

    async def _close(self) -> None:
        await self.http.close()

    def _job_context(self, env_id: str) -> ExperimentContext:
        return self.context  # the cluster work folder is mounted at the same path in every job

    def _job_workdir(self) -> Optional[str]:
        return self.context.experiment_dir

    def _trial_files_dir(self, trial_id: str) -> Optional[Path]:
        return Path(self.context.experiment_dir) / "trials" / trial_id

    def _job_url(self, job_id: str) -> Optional[str]:
        return f"{self.dashboard}/jobs/{quote(self.settings['cluster'], safe='')}/{quote(job_id, safe='')}"
