"""HTTP trial channel: the trial runs elsewhere and talks to the manager's REST server.

Selected when ``NNI_MANAGER_URL`` is set. ``NNI_MANAGER_URL`` is the API root, e.g.
``http://10.0.0.5:8080/api/v1/nni``. The manager's access token is sent as
``Authorization: Bearer <token>``: ``NNI_MANAGER_TOKEN`` when set, else the token file of the
experiment the trial folder (``NNI_SYS_DIR``) belongs to (:mod:`nni.runtime.access`). Routes (``<exp>`` = ``NNI_EXP_ID``, ``<trial>`` =
``NNI_TRIAL_JOB_ID``):

* ``GET  {root}/trial-channel/<exp>/<trial>/parameter/<index>`` -> 200 with the parameter
  record ``{"parameter_id", "parameter_source", "parameters", "parameter_index"}``, or 204 /
  404 when that index has no parameters yet;
* ``POST {root}/trial-channel/<exp>/<trial>/metrics`` with one metric record (JSON, the dict of
  :mod:`nni.runtime.trial_metrics`) -> 2xx. A REQUEST_PARAMETER record asks for the next index.

Requests use :mod:`urllib` and are retried a few times on connection errors.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

from ..env_vars import TrialEnv

ROUTE_PREFIX = "trial-channel"


def parameter_route(exp_id: str, trial_job_id: str, index: int) -> str:
    return f"/{ROUTE_PREFIX}/{urllib.parse.quote(exp_id)}/{urllib.parse.quote(trial_job_id)}/parameter/{index}"


def metrics_route(exp_id: str, trial_job_id: str) -> str:
    return f"/{ROUTE_PREFIX}/{urllib.parse.quote(exp_id)}/{urllib.parse.quote(trial_job_id)}/metrics"


class HttpChannel:
    poll_interval = 0.5
    retries = 5
    timeout = 30.0

    def __init__(self, env: TrialEnv):
        self.env = env
        self.root = (env.manager_url or "").rstrip("/")
        self.exp_id = env.exp_id or ""
        self.trial_job_id = env.trial_job_id or ""
        self.token = env.manager_token
        if not self.token:
            from ..access import token_near

            self.token = token_near(env.sys_dir)

    def _request(self, method: str, route: str, body: dict | None = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        last: Exception | None = None
        for attempt in range(self.retries):
            req = urllib.request.Request(self.root + route, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as err:
                if err.code in (404, 204):
                    return err.code, b""
                if err.code < 500:
                    raise RuntimeError(f"NNI manager refused {method} {route}: HTTP {err.code}") from None
                last = err
            except (urllib.error.URLError, OSError) as err:
                last = err
            time.sleep(min(0.2 * 2**attempt, 2.0))
        raise RuntimeError(f"cannot reach the NNI manager at {self.root}: {last}")

    def get_parameter(self, index: int, wait: bool = False) -> dict | None:
        while True:
            status, body = self._request("GET", parameter_route(self.exp_id, self.trial_job_id, index))
            if status == 200 and body:
                return json.loads(body.decode("utf-8"))
            if not wait:
                return None
            time.sleep(self.poll_interval)

    def request_parameter(self, index: int) -> None:
        from ..trial_metrics import make_metric_record

        self.send_metric(make_metric_record(None, self.trial_job_id, "REQUEST_PARAMETER", 0, "", parameter_index=index))

    def send_metric(self, record: dict) -> None:
        self._request("POST", metrics_route(self.exp_id, self.trial_job_id), record)
