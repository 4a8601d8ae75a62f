"""Stand-ins for the cloud services, for tests (not used by the training services).

Each stand-in is a real HTTP server on 127.0.0.1 (aiohttp, in a background thread) that speaks
the service's REST wire protocol as the training service uses it (paths, methods, auth headers,
request and answer bodies, status codes) and "runs" a submitted job by starting its command as a
local process (``bash -c``, its own process group, ``python3`` = this interpreter). A test can
fail a running job (:meth:`StandIn.fail`), reject submissions, and read every request it got
(:attr:`StandIn.requests`).

* :class:`OpenpaiStandIn`: ``/rest-server/api/v2/jobs`` (job protocol YAML, bearer token,
  ``<% $secrets.x %>`` substitution, ``executionType`` STOP).
* :class:`DlcStandIn`: PAI-DLC 2020-12-03 ``/api/v1/jobs`` (Alibaba Cloud ROA signature checked).
* :class:`DltsStandIn`: the DLTS dashboard's ``/api/clusters/<cluster>/jobs`` API.
* :mod:`.aml` is tested with :class:`FakeAzureml`, an object tree speaking the ``azureml.core``
  interface the adapter uses (no HTTP: the AML SDK is the documented interface).
"""
from __future__ import annotations

import abc
import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

__all__ = ["StandIn", "OpenpaiStandIn", "DlcStandIn", "DltsStandIn", "FakeAzureml", "install_fake_azureml", "LocalJob", "roa_string_to_sign"]


class LocalJob:
    """A job's command running as a local process group."""

    def __init__(self, job_id: str, command: str, env: dict, cwd: Optional[str], log_dir: Path) -> None:
        self.id = job_id
        self.command = command
        self.env = env
        self.state = "RUNNING"
        self.exit_code: Optional[int] = None
        self.diagnostics = ""
        self.stop_requested = False
        self._killed_as: Optional[tuple[str, str]] = None
        self._lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = log_dir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', job_id)}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("NNI_")}
        full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}"
        full_env.update(env)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def refresh(self) -> str:
        with self._lock:
            if self.state == "RUNNING":
                rc = self.proc.poll()
                if rc is not None:
                    self.exit_code = rc
                    if self._killed_as is not None:  # killed on purpose: the state and reason it was killed with
                        self.state, reason = self._killed_as
                        self.diagnostics = reason or self.diagnostics
                    else:
                        self.state = "SUCCEEDED" if rc == 0 else "FAILED"
                        if rc != 0 and not self.diagnostics:
                            self.diagnostics = f"the job's command exited with code {rc}"
            return self.state

    def kill(self, state: str, diagnostics: str = "") -> None:
        with self._lock:
            if self.state != "RUNNING":
                return
            self._killed_as = (state, diagnostics)
            self.stop_requested = state == "STOPPED"
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.refresh()

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


class StandIn(abc.ABC):
    """Base of the HTTP stand-ins: a server thread, the job table, request log, fault injection."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.jobs: dict[str, LocalJob] = {}
        self.requests: list[dict] = []
        self.reject_next: Optional[tuple[int, dict]] = None  # (status, body) answered to the next submission
        self.fail_on_start: int = 0  # the next N jobs fail at once (their command never runs)
        self.cancelled: set[str] = set()  # jobs a stop / kill request named (even when they had ended)
        self.port = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._runner = None
        self._lock = threading.Lock()

    # ----- to implement -----

    @abc.abstractmethod
    def routes(self, web) -> list:
        """The aiohttp route definitions of the service."""

    # ----- server -----

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "StandIn":
        from aiohttp import web

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        started = threading.Event()
        box: dict = {}

        async def serve() -> None:
            app = web.Application(middlewares=[self._record])
            app.add_routes(self.routes(web))
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(serve())
            except BaseException as err:  # surfaced by start()
                box["error"] = err
                started.set()
                return
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        started.wait(30)
        if "error" in box:
            raise box["error"]
        return self

    def stop(self) -> None:
        for job in list(self.jobs.values()):
            job.kill("STOPPED", "stand-in shut down")
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def _record(self):
        from aiohttp import web

        @web.middleware
        async def record(request, handler):
            body = await request.read()
            self.requests.append({"method": request.method, "path": request.path, "query": dict(request.query),
                                  "headers": dict(request.headers), "body": body})
            return await handler(request)

        return record

    # ----- jobs -----

    def launch(self, job_id: str, command: str, env: dict, cwd: Optional[str] = None) -> LocalJob:
        with self._lock:
            if self.fail_on_start > 0:
                self.fail_on_start -= 1
                job = LocalJob(job_id, "exit 7", {}, None, self.workdir / "jobs")
                job.proc.wait(10)
                job.diagnostics = "image pull failed: stand-in fault"
            else:
                job = LocalJob(job_id, command, env, cwd, self.workdir / "jobs")
            self.jobs[job_id] = job
        return job

    def fail(self, job_id: str, reason: str = "node lost (stand-in fault)") -> None:
        """Kill a job's processes and report it FAILED with ``reason``."""
        self.jobs[job_id].kill("FAILED", reason)

    def running(self) -> list[str]:
        return [j for j, job in self.jobs.items() if job.refresh() == "RUNNING"]

    def requests_to(self, method: str, pattern: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and re.search(pattern, r["path"])]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what or predicate}")


# ----- OpenPAI ------------------------------------------------------------------------------


class OpenpaiStandIn(StandIn):
    """OpenPAI's REST server (v2 jobs API) for one user and token.

    Jobs run their first task role's ``commands`` (joined with newlines, secrets substituted)
    in ``container_cwd`` (None: the stand-in's folder); the storage is the local folder (tests
    use the same path for ``localStorageMountPoint`` and ``containerStorageMountPoint``)."""

    def __init__(self, workdir: Path, username: str = "alice", token: str = "pai-token-123",
                 virtual_clusters: tuple = ("default",), storage_configs: tuple = ("confignfs-data",)) -> None:
        super().__init__(workdir)
        self.username = username
        self.token = token
        self.virtual_clusters = set(virtual_clusters)
        self.storage_configs = set(storage_configs)
        self.protocols: dict[str, dict] = {}

    def routes(self, web) -> list:
        return [
            web.post("/rest-server/api/v2/jobs", self._submit),
            web.get("/rest-server/api/v2/jobs/{frame}", self._get),
            web.put("/rest-server/api/v2/jobs/{frame}/executionType", self._execution_type),
        ]

    def _auth(self, request, web) -> None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            raise web.HTTPUnauthorized(text=json.dumps({"code": "UnauthorizedUserError", "message": "Guest is not allowed to do this operation."}),
                                       content_type="application/json")

    @staticmethod
    def _error(web, cls, code: str, message: str):
        return cls(text=json.dumps({"code": code, "message": message}), content_type="application/json")

    async def _submit(self, request):
        from aiohttp import web
        import yaml

        self._auth(request, web)
        if self.reject_next is not None:
            status, body = self.reject_next
            self.reject_next = None
            return web.json_response(body, status=status)
        if "yaml" not in request.headers.get("Content-Type", ""):
            raise self._error(web, web.HTTPBadRequest, "InvalidProtocolError", "Content-Type must be text/yaml")
        try:
            job = yaml.safe_load(await request.text())
        except yaml.YAMLError as err:
            raise self._error(web, web.HTTPBadRequest, "InvalidProtocolError", f"invalid YAML: {err}")
        if not isinstance(job, dict) or job.get("protocolVersion") not in (2, "2") or not job.get("name") or not job.get("taskRoles"):
            raise self._error(web, web.HTTPBadRequest, "InvalidProtocolError", "protocolVersion 2, name and taskRoles are required")
        images = {p["name"]: p for p in job.get("prerequisites", []) if p.get("type") == "dockerimage"}
        for name, role in job["taskRoles"].items():
            if role.get("dockerImage") not in images:
                raise self._error(web, web.HTTPBadRequest, "InvalidProtocolError", f"taskRoles.{name}.dockerImage is not a prerequisite")
        vc = (job.get("defaults") or {}).get("virtualCluster", "default")
        if vc not in self.virtual_clusters:
            raise self._error(web, web.HTTPBadRequest, "NoVirtualClusterError", f"Virtual cluster {vc} is not found.")
        for plugin in (job.get("extras") or {}).get("com.microsoft.pai.runtimeplugin", []):
            if plugin.get("plugin") == "teamwise_storage":
                for sc in plugin.get("parameters", {}).get("storageConfigNames", []):
                    if sc not in self.storage_configs:
                        raise self._error(web, web.HTTPBadRequest, "NoStorageConfigError", f"Storage config {sc} is not found.")
        name = job["name"]
        if name in self.jobs:
            raise self._error(web, web.HTTPConflict, "ConflictJobError", f"Job name {name} already exists.")
        first = next(iter(job["taskRoles"].values()))
        secrets = job.get("secrets") or {}
        command = "\n".join(first.get("commands") or [])
        command = re.sub(r"<%\s*\$secrets\.(\w+)\s*%>", lambda m: str(secrets.get(m.group(1), "")), command)
        self.protocols[name] = job
        self.launch(name, command, {"PAI_JOB_NAME": name, "PAI_USER_NAME": self.username})
        return web.json_response({"message": f"update job {name} successfully"}, status=202)

    def _find(self, request, web) -> LocalJob:
        user, _, name = request.match_info["frame"].partition("~")
        if user != self.username or name not in self.jobs:
            raise self._error(web, web.HTTPNotFound, "NoJobError", f"Job {name} is not found.")
        return self.jobs[name]

    async def _get(self, request):
        from aiohttp import web

        self._auth(request, web)
        job = self._find(request, web)
        state = job.refresh()
        return web.json_response({"name": job.id, "jobStatus": {
            "username": self.username, "state": state, "executionType": "STOP" if job.stop_requested else "START",
            "appExitCode": job.exit_code, "appExitDiagnostics": job.diagnostics if state == "FAILED" else "",
        }})

    async def _execution_type(self, request):
        from aiohttp import web

        self._auth(request, web)
        job = self._find(request, web)
        body = await request.json()
        if body.get("value") != "STOP":
            raise self._error(web, web.HTTPBadRequest, "InvalidParametersError", "value must be STOP or START")
        self.cancelled.add(job.id)
        job.kill("STOPPED", "stopped by the user")
        return web.json_response({"message": f"execute job {job.id} successfully"})


# ----- PAI-DLC ------------------------------------------------------------------------------


def roa_string_to_sign(method: str, path: str, query: dict, headers: dict) -> str:
    """The ROA string to sign, written independently of :func:`.dlc.roa_signature` so that the
    stand-in checks the client rather than agreeing with it by construction."""
    h = {k.lower(): v for k, v in headers.items()}
    lines = [method, h.get("accept", ""), h.get("content-md5", ""), h.get("content-type", ""), h.get("date", "")]
    for name in sorted(k for k in h if k.startswith("x-acs-")):
        lines.append(f"{name}:{h[name]}")
    resource = path
    if query:
        resource += "?" + "&".join(f"{k}={query[k]}" if query[k] else k for k in sorted(query))
    lines.append(resource)
    return "\n".join(lines)


class DlcStandIn(StandIn):
    """PAI-DLC's OpenAPI 2020-12-03 (CreateJob / GetJob / StopJob) for one AccessKey.

    Checks the ROA signature, the API version header, Content-MD5 and the CreateJob body; jobs
    run their ``UserCommand`` with their ``Envs``."""

    def __init__(self, workdir: Path, access_key_id: str = "LTAI-test-id", access_key_secret: str = "dlc-secret-456",
                 data_sources: tuple = ("data-nas-1",)) -> None:
        super().__init__(workdir)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.data_sources = set(data_sources)
        self.bodies: dict[str, dict] = {}
        self._ids = 0

    def routes(self, web) -> list:
        return [web.post("/api/v1/jobs", self._create), web.get("/api/v1/jobs/{id}", self._get),
                web.post("/api/v1/jobs/{id}/stop", self._stop)]

    def _error(self, web, status: int, code: str, message: str):
        return web.json_response({"RequestId": uuid.uuid4().hex, "Code": code, "Message": message}, status=status)

    async def _check(self, request, web):
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("acs ") or ":" not in auth:
            return self._error(web, 400, "MissingAuthorization", "Authorization header is missing")
        key_id, _, signature = auth[4:].partition(":")
        if key_id != self.access_key_id:
            return self._error(web, 404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if request.headers.get("x-acs-version") != "2020-12-03":
            return self._error(web, 400, "InvalidVersion", "x-acs-version must be 2020-12-03")
        body = await request.read()
        if body:
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            if request.headers.get("Content-MD5") != md5:
                return self._error(web, 400, "InvalidContentMD5", "Content-MD5 does not match the body")
        to_sign = roa_string_to_sign(request.method, request.path, dict(request.query), dict(request.headers))
        expected = base64.b64encode(hmac.new(self.access_key_secret.encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(expected, signature):
            return self._error(web, 400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        return None

    async def _create(self, request):
        from aiohttp import web

        bad = await self._check(request, web)
        if bad is not None:
            return bad
        if self.reject_next is not None:
            status, body = self.reject_next
            self.reject_next = None
            return web.json_response(body, status=status)
        body = await request.json()
        for key in ("DisplayName", "JobType", "JobSpecs", "UserCommand"):
            if not body.get(key):
                return self._error(web, 400, "InvalidParameter", f"{key} is required")
        if body["JobType"] not in ("TFJob", "PyTorchJob", "MPIJob", "XGBoostJob"):
            return self._error(web, 400, "InvalidParameter", f"JobType {body['JobType']} is not supported")
        for ds in body.get("DataSources") or []:
            if ds.get("DataSourceId") not in self.data_sources:
                return self._error(web, 400, "InvalidDataSource", f"data source {ds.get('DataSourceId')} not found")
        self._ids += 1
        job_id = f"dlc{self._ids:08d}"
        self.bodies[job_id] = body
        self.launch(job_id, body["UserCommand"], {str(k): str(v) for k, v in (body.get("Envs") or {}).items()})
        return web.json_response({"JobId": job_id, "RequestId": uuid.uuid4().hex})

    async def _get(self, request):
        from aiohttp import web

        bad = await self._check(request, web)
        if bad is not None:
            return bad
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self._error(web, 404, "JobNotFound", f"job {request.match_info['id']} not found")
        status = {"RUNNING": "Running", "SUCCEEDED": "Succeeded", "FAILED": "Failed", "STOPPED": "Stopped"}[job.refresh()]
        return web.json_response({"JobId": job.id, "Status": status, "ReasonCode": "JobFailed" if status == "Failed" else "",
                                  "ReasonMessage": job.diagnostics if status == "Failed" else "", "RequestId": uuid.uuid4().hex})

    async def _stop(self, request):
        from aiohttp import web

        bad = await self._check(request, web)
        if bad is not None:
            return bad
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self._error(web, 404, "JobNotFound", f"job {request.match_info['id']} not found")
        self.cancelled.add(job.id)
        job.kill("STOPPED", "stopped by the user")
        return web.json_response({"JobId": job.id, "RequestId": uuid.uuid4().hex})


# ----- DLTS ---------------------------------------------------------------------------------


class DltsStandIn(StandIn):
    """A DLTS cluster dashboard: ``/api/clusters/<cluster>/jobs`` with email/password auth."""

    def __init__(self, workdir: Path, cluster: str = "cluster1", email: str = "alice@example.com", password: str = "dlts-key-789",
                 teams: tuple = ("platform",)) -> None:
        super().__init__(workdir)
        self.cluster = cluster
        self.email = email
        self.password = password
        self.teams = set(teams)
        self.bodies: dict[str, dict] = {}

    def routes(self, web) -> list:
        return [web.post("/api/clusters/{cluster}/jobs", self._create), web.get("/api/clusters/{cluster}/jobs/{id}", self._get),
                web.put("/api/clusters/{cluster}/jobs/{id}/status", self._status)]

    def _check(self, request, web) -> None:
        if request.query.get("email") != self.email or request.query.get("password") != self.password:
            raise web.HTTPForbidden(text="invalid email or password")
        if request.match_info["cluster"] != self.cluster:
            raise web.HTTPNotFound(text=f"cluster {request.match_info['cluster']} not found")

    async def _create(self, request):
        from aiohttp import web

        self._check(request, web)
        if self.reject_next is not None:
            status, body = self.reject_next
            self.reject_next = None
            return web.json_response(body, status=status)
        body = await request.json()
        for key in ("jobName", "image", "cmd", "vcName", "jobtrainingtype"):
            if body.get(key) in (None, ""):
                return web.json_response({"error": f"{key} is required"}, status=400)
        if body["vcName"] not in self.teams:
            return web.json_response({"error": f"virtual cluster {body['vcName']} not found"}, status=400)
        job_id = uuid.uuid4().hex[:12]
        self.bodies[job_id] = body
        self.launch(job_id, body["cmd"], {e["name"]: e["value"] for e in body.get("env") or []})
        return web.json_response({"jobId": job_id})

    def _job(self, request, web) -> LocalJob:
        self._check(request, web)
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            raise web.HTTPNotFound(text="job not found")
        return job

    async def _get(self, request):
        from aiohttp import web

        job = self._job(request, web)
        status = {"RUNNING": "running", "SUCCEEDED": "finished", "FAILED": "failed", "STOPPED": "killed"}[job.refresh()]
        return web.json_response({"jobId": job.id, "jobStatus": status, "errorMsg": job.diagnostics if status == "failed" else None})

    async def _status(self, request):
        from aiohttp import web

        job = self._job(request, web)
        body = await request.json()
        if body.get("status") != "killing":
            return web.json_response({"error": "status must be killing"}, status=400)
        self.cancelled.add(job.id)
        job.kill("STOPPED", "killed by the user")
        return web.json_response({"message": "job status updated"})


# ----- AML ----------------------------------------------------------------------------------


class FakeAzureml:
    """An object speaking the ``azureml.core`` names :class:`~.aml.AmlAdapter` uses.

    ``Workspace`` accepts only the given subscription / resource group / workspace,
    ``ComputeTarget`` only the given cluster names; ``Experiment.submit`` copies the
    ``source_directory`` (the run's snapshot) and starts the ``ScriptRunConfig`` command there as
    a local process with the ``Environment``'s variables. State lives in ``root`` (JSON files), so
    a manager in another process can use it through :func:`install_fake_azureml`:
    ``root/runs/<run id>.json`` (what was submitted), ``root/cancelled/<run id>``; a test fails a
    run with :meth:`fail` (also from another process)."""

    def __init__(self, root: Path, subscription_id: str = "01234567-89ab-cdef-0123-456789abcdef", resource_group: str = "rg-1", workspace_name: str = "ws-1",
                 compute_targets: tuple = ("cpu-cluster",)) -> None:
        self.root = Path(root)
        for sub in ("runs", "cancelled", "fail", "snapshots", "jobs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        settings = self.root / "settings.json"
        if not settings.exists():
            settings.write_text(json.dumps({"workspace": [subscription_id, resource_group, workspace_name],
                                            "compute_targets": list(compute_targets)}))
        self.settings = json.loads(settings.read_text())
        self.jobs: dict[str, LocalJob] = {}
        self.Workspace, self.ComputeTarget, self.Experiment, self.Environment, self.ScriptRunConfig = self._classes()
        self.__name__ = "azureml.core"

    # ----- what tests read / do -----

    def submitted(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted((self.root / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)]

    def cancelled(self) -> list[str]:
        return sorted(p.name for p in (self.root / "cancelled").iterdir())

    def fail(self, run_id: str, reason: str = "node preempted (stand-in fault)") -> None:
        (self.root / "fail" / run_id).write_text(reason)
        job = self.jobs.get(run_id)
        if job is not None:
            job.kill("FAILED", reason)

    def running(self) -> list[str]:
        """Runs whose process is alive (only those started by this object)."""
        return [r for r, job in self.jobs.items() if job.refresh() == "RUNNING"]

    # ----- the azureml.core names -----

    def _classes(self):
        fake = self

        class Workspace:
            def __init__(self, subscription_id, resource_group, workspace_name, **_kw):
                if [subscription_id, resource_group, workspace_name] != fake.settings["workspace"]:
                    raise RuntimeError(f"ProjectSystemException: workspace {workspace_name} not found in resource group {resource_group}")
                self.name = workspace_name

        class ComputeTarget:
            def __init__(self, workspace, name):
                if not isinstance(workspace, Workspace):
                    raise TypeError("workspace must be a Workspace")
                if name not in fake.settings["compute_targets"]:
                    raise RuntimeError(f"ComputeTargetException: compute target {name} not found")
                self.name = name

        class _Docker:
            base_image = None

        class _Python:
            user_managed_dependencies = False

        class Environment:
            def __init__(self, name):
                self.name = name
                self.docker = _Docker()
                self.python = _Python()
                self.environment_variables = {}

        class ScriptRunConfig:
            def __init__(self, source_directory, command=None, compute_target=None, environment=None, **_kw):
                self.source_directory = source_directory
                self.command = command
                self.compute_target = compute_target
                self.environment = environment

        class Run:
            def __init__(self, run_id, experiment):
                self.id = run_id
                self.experiment = experiment

            def _job(self) -> LocalJob:
                job = fake.jobs[self.id]
                fail = fake.root / "fail" / self.id
                if fail.exists():
                    job.kill("FAILED", fail.read_text())
                return job

            def get_status(self):
                return {"RUNNING": "Running", "SUCCEEDED": "Completed", "FAILED": "Failed", "STOPPED": "Canceled"}[self._job().refresh()]

            def get_details(self):
                job = self._job()
                out = {"runId": self.id, "status": self.get_status()}
                if job.refresh() == "FAILED":
                    out["error"] = {"error": {"code": "UserError", "message": job.diagnostics}}
                return out

            def cancel(self):
                (fake.root / "cancelled" / self.id).write_text("")
                fake.jobs[self.id].kill("STOPPED", "canceled by the user")

            def get_portal_url(self):
                return f"https://ml.azure.com/runs/{self.id}"

        class Experiment:
            def __init__(self, workspace, name):
                if not isinstance(workspace, Workspace):
                    raise TypeError("workspace must be a Workspace")
                self.workspace = workspace
                self.name = name

            def submit(self, config, tags=None, **_kw):
                if not isinstance(config, ScriptRunConfig) or not isinstance(config.compute_target, ComputeTarget):
                    raise TypeError("submit() needs a ScriptRunConfig with a ComputeTarget")
                env = config.environment
                if env is None or not env.docker.base_image:
                    raise ValueError("the environment needs docker.base_image")
                run_id = f"{self.name}_{int(time.time() * 1000)}_{uuid.uuid4().hex[:6]}"
                snapshot = fake.root / "snapshots" / run_id
                shutil.copytree(config.source_directory, snapshot)
                command = config.command
                if isinstance(command, list):
                    command = command[2] if command[:2] == ["bash", "-c"] else " ".join(shlex_quote(c) for c in command)
                (fake.root / "runs" / f"{run_id}.json").write_text(json.dumps({
                    "run_id": run_id, "experiment": self.name, "compute_target": config.compute_target.name,
                    "base_image": env.docker.base_image, "user_managed": env.python.user_managed_dependencies,
                    "environment_variables": env.environment_variables, "command": config.command,
                    "source_directory": config.source_directory, "tags": tags or {}}))
                fake.jobs[run_id] = LocalJob(run_id, command, dict(env.environment_variables), str(snapshot), fake.root / "jobs")
                return Run(run_id, self)

        return Workspace, ComputeTarget, Experiment, Environment, ScriptRunConfig


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def install_fake_azureml(folder: Path, root: Path) -> dict:
    """Write an importable ``azureml.core`` backed by ``FakeAzureml(root)`` into ``folder``;
    returns the environment variables a manager process needs (``PYTHONPATH``, ``NNI_FAKE_AZUREML_DIR``)."""
    pkg = Path(folder) / "azureml"
    (pkg / "core").mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text(
        "import os\n"
        "from nni.training_services.cloud.testing import FakeAzureml as _Fake\n"
        "_fake = _Fake(os.environ['NNI_FAKE_AZUREML_DIR'])\n"
        "Workspace, ComputeTarget, Experiment = _fake.Workspace, _fake.ComputeTarget, _fake.Experiment\n"
        "Environment, ScriptRunConfig = _fake.Environment, _fake.ScriptRunConfig\n")
    (pkg / "core" / "compute.py").write_text("from . import ComputeTarget\n")
    FakeAzureml(root)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "NNI_FAKE_AZUREML_DIR": str(root)}


# ----- helpers for driving a training service in tests --------------------------------------

TRIAL = """\
import os, time, nni
p = nni.get_next_parameter()
nni.report_intermediate_result(p["x"] / 2)
time.sleep(float(os.environ.get("TRIAL_SLEEP") or p.get("sleep", 0)))
nni.report_final_result(p["x"])
print("platform", os.environ.get("NNI_PLATFORM"))
"""


def write_trial_code(folder: Path, source: str = TRIAL) -> Path:
    """A trial code folder with ``trial.py`` (reports ``x / 2`` then ``x``; sleeps ``p["sleep"]``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trial.py").write_text(source)
    return folder


def parameter(i: int, **extra: Any) -> str:
    """The dispatcher's parameter string of trial ``i`` (``x = i``)."""
    return json.dumps({"parameter_id": i, "parameter_source": "algorithm", "parameters": {"x": i, **extra}, "parameter_index": 0})


async def collect(ts, done: Callable[[dict], bool], timeout: float = 60) -> tuple[dict, dict]:
    """Read ``ts.events()`` until ``done(states)``; returns ``(states, metrics)`` per trial id
    (lists of StateEvent / metric records)."""
    from nni.runtime.training_service import MetricEvent, StateEvent

    states: dict = {}
    metrics: dict = {}

    async def run() -> None:
        async for ev in ts.events():
            if isinstance(ev, StateEvent):
                states.setdefault(ev.trial_id, []).append(ev)
                if done(states):
                    return
            elif isinstance(ev, MetricEvent):
                metrics.setdefault(ev.trial_id, []).append(ev.record)

    await asyncio.wait_for(run(), timeout)
    return states, metrics


async def wait_running(ts, trial_id: str, timeout: float = 60) -> None:
    """Wait until the trial is RUNNING; ``AssertionError`` (with its last state) when it ended
    first or ``timeout`` seconds passed."""
    from nni.runtime.training_service import TrialJobStatus

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        detail = ts.get_trial_job(trial_id)
        if detail.status == TrialJobStatus.RUNNING:
            return
        if detail.status.is_final or loop.time() > deadline:
            raise AssertionError(f"trial {trial_id} is {detail.status} ({detail.message!r}), never seen RUNNING")
        await asyncio.sleep(0.05)


def finished(n: int) -> Callable[[dict], bool]:
    """``collect`` condition: ``n`` trials reached a final state."""
    return lambda states: sum(1 for evs in states.values() if evs[-1].status.is_final) >= n
