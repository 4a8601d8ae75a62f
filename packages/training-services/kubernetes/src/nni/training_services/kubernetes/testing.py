"""A stand-in Kubernetes API server for tests: the real wire protocol, a tiny in-memory cluster.

No API server can run here, so :class:`StandInCluster` speaks the part of the Kubernetes REST API
that the official ``kubernetes`` client uses for NNI's jobs, over HTTP on 127.0.0.1:

* custom objects: ``/apis/<group>/<version>/namespaces/<ns>/<plural>[/<name>]`` for the CRDs it
  has "installed" (TFJob, PyTorchJob, Framework, AdaptDLJob; other groups / versions are 404);
* core: ``/api/v1/namespaces/<ns>/{pods,secrets,persistentvolumeclaims}[/<name>]``;
* create (POST, ``409 AlreadyExists``; a manifest that breaks the CRD's structural schema of
  :mod:`.schemas` gets ``422 Invalid``), get, list (``labelSelector`` with ``k=v`` terms),
  delete (``404 NotFound``), ``?watch=true`` streams of JSON-line watch events
  (``ADDED`` / ``MODIFIED`` / ``DELETED``, ``resourceVersion``, ``timeoutSeconds``), failures as
  ``Status`` objects; a bearer token is required (``401``).

Its "controllers" run a created job: one pod per replica (named ``<job>-<role>-<index>``, as
the operators name them), each pod "runs" by starting its container's command as a local
subprocess (``$(VAR)`` expanded from the container's env, ``fieldRef`` env resolved, volumes
"mounted" by symlinking the mount path to the volume's folder: an NFS export of
``127.0.0.1``/``localhost`` is that local path), pod phases follow the process, job status
follows the operators' conventions (Kubeflow ``conditions``, FrameworkController ``state`` and
``frameworkAttemptCompletionPolicy``, AdaptDL ``phase``). Tests break things on purpose with
:meth:`StandInCluster.evict_pod` and :meth:`StandInCluster.fail_job`.
"""
from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qs, urlparse

from .schemas import SCHEMAS, validate

__all__ = ["StandInCluster"]

# group/plural -> (kind, served versions)
_CUSTOM = {
    "kubeflow.org/tfjobs": ("TFJob", ("v1",)),
    "kubeflow.org/pytorchjobs": ("PyTorchJob", ("v1",)),
    "frameworkcontroller.microsoft.com/frameworks": ("Framework", ("v1",)),
    "adaptdl.petuum.com/adaptdljobs": ("AdaptDLJob", ("v1",)),
}
_CORE = {"pods": "Pod", "secrets": "Secret", "persistentvolumeclaims": "PersistentVolumeClaim"}
_PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH", "NNI_CONFIG_DIR")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> dict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}


class StandInCluster:
    """An in-memory cluster behind a real HTTP API on 127.0.0.1.

    Args:
        root: a folder for the cluster's files (pod logs, volumes that are not local NFS).
        images: image name -> local folder standing for the image's working directory (used
            when a container sets no ``workingDir``).
        crds: kinds installed (default: all four).
    """

    def __init__(self, root: str | Path, images: Optional[dict] = None, crds: Optional[tuple] = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.images = {k: Path(v) for k, v in (images or {}).items()}
        kinds = set(crds or ("TFJob", "PyTorchJob", "Framework", "AdaptDLJob"))
        self.custom = {k: v for k, v in _CUSTOM.items() if v[0] in kinds}
        self.token = uuid.uuid4().hex
        self.objects: dict[tuple[str, str, str], dict] = {}  # (collection, namespace, name) -> object
        self.history: list[tuple[int, str, str, dict]] = []  # (rv, collection, type, object)
        self.created: list[dict] = []  # every manifest a client created, as received
        self.rv = 0
        self.lock = threading.Condition(threading.RLock())
        self.procs: dict[str, subprocess.Popen] = {}
        self._links: list[Path] = []
        self._server: Optional[ThreadingHTTPServer] = None
        self._closing = False

    # ----- lifecycle -----

    def start(self) -> "StandInCluster":
        cluster = self

        class Handler(_Handler):
            pass

        Handler.cluster = cluster
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="k8s-stand-in", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        """A kubeconfig whose current context is this cluster (bearer-token user)."""
        import yaml

        path = Path(path)
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "stand-in",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "users": [{"name": "nni", "user": {"token": self.token}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "nni", "namespace": namespace}}],
        }))
        return path

    def stop(self) -> None:
        self._closing = True
        with self.lock:
            self.lock.notify_all()
        for name in list(self.procs):
            self._kill(name)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for link in self._links:
            try:
                link.unlink()
            except OSError:
                pass

    # ----- what tests look at and break -----

    def list(self, collection: str, namespace: str = "default") -> list[dict]:
        """Current objects of a collection (``pods``, ``tfjobs``, ``frameworks`` ...)."""
        with self.lock:
            return [copy.deepcopy(o) for (c, ns, _), o in self.objects.items()
                    if (c == collection or c.endswith("/" + collection)) and ns == namespace]

    def created_of(self, plural: str) -> list[dict]:
        return [m for m in self.created if m.get("_plural") == plural]

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"stand-in cluster: timed out waiting for {what or predicate}")

    def evict_pod(self, name: str, message: str = "The node was low on resource: memory.", namespace: str = "default") -> None:
        """Evict a running pod, as the kubelet does under node pressure: phase Failed, reason Evicted."""
        with self.lock:
            pod = self.objects[("pods", namespace, name)]
            pod["status"].update({"phase": "Failed", "reason": "Evicted", "message": message})
            self._put("pods", pod, "MODIFIED")
        self._kill(name)
        self._job_changed(pod)

    def fail_job(self, plural: str, name: str, message: str, namespace: str = "default") -> None:
        """End a job as failed by its operator (e.g. an unschedulable or killed attempt)."""
        with self.lock:
            key = self._collection_of(plural)
            job = self.objects[(key, namespace, name)]
            self._finish_job(key, job, False, message)
            pods = [p for p in self._pods_of(job)]
        for pod in pods:
            self._kill(pod["metadata"]["name"])

    # ----- storage of objects -----

    def _collection_of(self, plural: str) -> str:
        return next(k for k in self.custom if k.endswith("/" + plural))

    def _put(self, collection: str, obj: dict, event: str) -> None:
        with self.lock:
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            key = (collection, obj["metadata"].get("namespace", "default"), obj["metadata"]["name"])
            if event == "DELETED":
                self.objects.pop(key, None)
            else:
                self.objects[key] = obj
            self.history.append((self.rv, collection, event, copy.deepcopy(obj)))
            self.lock.notify_all()

    def create(self, collection: str, namespace: str, body: dict) -> dict:
        name = (body.get("metadata") or {}).get("name")
        kind = self.custom[collection][0] if collection in self.custom else _CORE[collection]
        if kind in SCHEMAS:
            problems = validate(body, SCHEMAS[kind])
            if problems:
                raise _ApiError(422, "Invalid", f"{kind}.{collection.split('/')[0]} {name!r} is invalid: " + "; ".join(problems))
        if not name:
            raise _ApiError(422, "Invalid", f"{kind}: metadata.name: Required value")
        with self.lock:
            if (collection, namespace, name) in self.objects:
                raise _ApiError(409, "AlreadyExists", f"{collection.split('/')[-1]} {name!r} already exists")
            obj = copy.deepcopy(body)
            self.created.append(dict(copy.deepcopy(body), _plural=collection.split("/")[-1]))
            meta = obj.setdefault("metadata", {})
            meta.update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=_now())
            obj.setdefault("apiVersion", "v1")
            obj.setdefault("kind", kind)
            if collection in self.custom:
                obj["status"] = {}
            self._put(collection, obj, "ADDED")
        if collection in self.custom:
            threading.Thread(target=self._run_job, args=(collection, obj), daemon=True).start()
        return obj

    def delete(self, collection: str, namespace: str, name: str) -> dict:
        with self.lock:
            obj = self.objects.get((collection, namespace, name))
            if obj is None:
                raise _ApiError(404, "NotFound", f"{collection.split('/')[-1]} {name!r} not found")
            pods = self._pods_of(obj) if collection in self.custom else []
            self._put(collection, obj, "DELETED")
        for pod in pods + ([obj] if collection == "pods" else []):
            self._kill(pod["metadata"]["name"])
            if pod is not obj:
                with self.lock:
                    self._put("pods", pod, "DELETED")
        return obj

    def _pods_of(self, job: dict) -> list[dict]:
        uid = job["metadata"]["uid"]
        return [o for (c, _, _), o in self.objects.items()
                if c == "pods" and any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences", []))]

    # ----- controllers -----

    def _run_job(self, collection: str, job: dict) -> None:
        kind = self.custom[collection][0]
        spec = job["spec"]
        if kind in ("TFJob", "PyTorchJob"):
            specs = spec.get("tfReplicaSpecs") or spec.get("pytorchReplicaSpecs") or {}
            roles = [(r, s.get("replicas", 1), s["template"]) for r, s in specs.items()]
        elif kind == "Framework":
            roles = [(r["name"], r["taskNumber"], r["task"]["pod"]) for r in spec["taskRoles"]]
        else:
            roles = [(job["metadata"]["uid"][:8], 1, spec["template"])]
        with self.lock:
            if kind in ("TFJob", "PyTorchJob"):
                job["status"] = {"conditions": [_condition("Created", f"{kind} {job['metadata']['name']} is created.")],
                                 "startTime": _now()}
            elif kind == "Framework":
                job["status"] = {"state": "AttemptCreationPending", "startTime": _now()}
            else:
                job["status"] = {"phase": "Pending"}
            self._put(collection, job, "MODIFIED")
        for role, replicas, template in roles:
            for i in range(replicas):
                self._start_pod(job, role, i, template)
        with self.lock:
            if (collection, job["metadata"]["namespace"], job["metadata"]["name"]) not in self.objects or _job_done(job):
                return
            if kind in ("TFJob", "PyTorchJob"):
                job["status"]["conditions"].append(_condition("Running", f"{kind} {job['metadata']['name']} is running."))
            elif kind == "Framework":
                job["status"]["state"] = "AttemptRunning"
            else:
                job["status"]["phase"] = "Running"
            self._put(collection, job, "MODIFIED")

    def _start_pod(self, job: dict, role: str, index: int, template: dict) -> None:
        meta = job["metadata"]
        name = f"{meta['name']}-{role.lower()}-{index}"
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels.update({"job-name": meta["name"], "replica-type": role.lower(), "replica-index": str(index)})
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels, "uid": str(uuid.uuid4()),
                         "creationTimestamp": _now(),
                         "ownerReferences": [{"apiVersion": job["apiVersion"], "kind": job["kind"], "name": meta["name"],
                                              "uid": meta["uid"], "controller": True}]},
            "spec": copy.deepcopy(template["spec"]),
            "status": {"phase": "Pending"},
        }
        with self.lock:
            if (self._collection_for(job), meta["namespace"], meta["name"]) not in self.objects:
                return
            self._put("pods", pod, "ADDED")
        container = pod["spec"]["containers"][0]
        try:
            cwd = self._mount(pod, container)
        except OSError as err:
            self._pod_done(pod, 1, "FailedMount", str(err))
            return
        env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = _expand(str(item["value"]), env)
            elif (item.get("valueFrom") or {}).get("fieldRef"):
                field = item["valueFrom"]["fieldRef"]["fieldPath"]
                env[item["name"]] = {"metadata.name": name, "metadata.namespace": meta["namespace"]}.get(field, "")
        argv = [_expand(a, env) for a in (container.get("command") or []) + (container.get("args") or [])]
        log = (self.root / "pods" / f"{name}.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(log, "ab") as out:
                proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as err:
            self._pod_done(pod, 128, "ContainerCannotRun", str(err))
            return
        self.procs[name] = proc
        with self.lock:
            pod["status"] = {"phase": "Running", "startTime": _now(), "containerStatuses": [{
                "name": container["name"], "image": container["image"], "imageID": "", "ready": True, "restartCount": 0,
                "state": {"running": {"startedAt": _now()}}}]}
            if ("pods", meta["namespace"], name) in self.objects:
                self._put("pods", pod, "MODIFIED")
        threading.Thread(target=self._watch_process, args=(pod, proc), daemon=True).start()

    def _collection_for(self, job: dict) -> str:
        return next(k for k, v in self.custom.items() if v[0] == job["kind"])

    def _mount(self, pod: dict, container: dict) -> str:
        """Make each volume mount path point at the volume's folder; returns the working directory."""
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount["name"])
            if volume is None:
                raise OSError(f"volume {mount['name']!r} is not defined in the pod")
            if "nfs" in volume and volume["nfs"]["server"] in ("127.0.0.1", "localhost"):
                source = Path(volume["nfs"]["path"])
            elif "nfs" in volume:
                raise OSError(f"mount.nfs: {volume['nfs']['server']}:{volume['nfs']['path']}: no route to host (stand-in)")
            elif "persistentVolumeClaim" in volume:
                source = self.root / "pvcs" / volume["persistentVolumeClaim"]["claimName"]
            elif "azureFile" in volume:
                source = self.root / "azure" / volume["azureFile"]["secretName"] / volume["azureFile"]["shareName"]
            else:
                source = self.root / "emptydir" / pod["metadata"]["name"] / volume["name"]
            source.mkdir(parents=True, exist_ok=True)
            target = Path(mount["mountPath"])
            with self.lock:  # pods of one job start at once and share the mount path on this one "node"
                if target.is_symlink() and target.resolve() == source.resolve():
                    continue
                if target.exists() or target.is_symlink():
                    raise OSError(f"mount path {target} is taken on this node (stand-in mounts by symlink)")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(source, target_is_directory=True)
                self._links.append(target)
        workdir = container.get("workingDir")
        if workdir:
            Path(workdir).mkdir(parents=True, exist_ok=True)
            return workdir
        image_dir = self.images.get(container["image"])
        if image_dir is not None:
            return str(image_dir)
        scratch = self.root / "rootfs" / pod["metadata"]["name"]
        scratch.mkdir(parents=True, exist_ok=True)
        return str(scratch)

    def _watch_process(self, pod: dict, proc: subprocess.Popen) -> None:
        code = proc.wait()
        self.procs.pop(pod["metadata"]["name"], None)
        self._pod_done(pod, code, "Completed" if code == 0 else "Error", "")

    def _pod_done(self, pod: dict, code: int, reason: str, message: str) -> None:
        with self.lock:
            key = ("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
            if key not in self.objects or pod["status"].get("phase") in ("Succeeded", "Failed"):
                return
            name = (pod["spec"]["containers"][0])["name"]
            pod["status"].update({"phase": "Succeeded" if code == 0 else "Failed", "containerStatuses": [{
                "name": name, "image": pod["spec"]["containers"][0]["image"], "imageID": "", "ready": False, "restartCount": 0,
                "state": {"terminated": {"exitCode": code, "reason": reason, "message": message or None, "finishedAt": _now()}}}]})
            if message:
                pod["status"]["message"] = message
            self._put("pods", pod, "MODIFIED")
        self._job_changed(pod)

    def _job_changed(self, pod: dict) -> None:
        """Recompute the owning job's status after a pod ended (the operator's reconcile)."""
        owner = pod["metadata"]["ownerReferences"][0]
        with self.lock:
            job = next((o for (c, _, _), o in self.objects.items() if o["metadata"].get("uid") == owner["uid"]), None)
            if job is None or _job_done(job):
                return
            collection = self._collection_for(job)
            pods = self._pods_of(job)
            failed = [p for p in pods if p["status"].get("phase") == "Failed"]
            role_of = lambda p: p["metadata"]["labels"]["replica-type"]  # noqa: E731
            kind = job["kind"]
            ok = None
            if kind == "Framework":
                for role in job["spec"]["taskRoles"]:
                    policy = role.get("frameworkAttemptCompletionPolicy") or {"minFailedTaskCount": 1, "minSucceededTaskCount": -1}
                    mine = [p for p in pods if role_of(p) == role["name"].lower()]
                    n_failed = sum(p["status"].get("phase") == "Failed" for p in mine)
                    n_ok = sum(p["status"].get("phase") == "Succeeded" for p in mine)
                    if policy["minFailedTaskCount"] != -1 and n_failed >= policy["minFailedTaskCount"]:
                        ok = False
                    elif policy["minSucceededTaskCount"] != -1 and n_ok >= policy["minSucceededTaskCount"]:
                        ok = True if ok is None else ok
            elif failed:
                ok = False
            else:
                primary = {"TFJob": "worker", "PyTorchJob": "master"}.get(kind)
                main = [p for p in pods if primary is None or role_of(p) == primary]
                if main and all(p["status"].get("phase") == "Succeeded" for p in main):
                    ok = True
            if ok is None:
                return
            why = "; ".join(f"pod {p['metadata']['name']} failed: {_pod_reason(p)}" for p in failed) if ok is False else ""
            self._finish_job(collection, job, ok, why)
            others = [p["metadata"]["name"] for p in pods if p["status"].get("phase") not in ("Succeeded", "Failed")]
        for name in others:  # the operators clean up the job's remaining pods
            self._kill(name)

    def _finish_job(self, collection: str, job: dict, ok: bool, message: str) -> None:
        kind = job["kind"]
        name = job["metadata"]["name"]
        if kind in ("TFJob", "PyTorchJob"):
            job["status"].setdefault("conditions", []).append(
                _condition("Succeeded" if ok else "Failed", message or f"{kind} {name} successfully completed.",
                           reason=f"{kind}{'Succeeded' if ok else 'Failed'}"))
            job["status"]["completionTime"] = _now()
        elif kind == "Framework":
            phrase = "Succeeded" if ok else "Failed"
            job["status"].update({"state": "Completed", "attemptStatus": {"completionStatus": {
                "code": 0 if ok else 1, "phrase": phrase, "type": {"name": phrase}, "diagnostics": message}}})
        else:
            job["status"].update({"phase": "Succeeded" if ok else "Failed", "reason": "" if ok else "Failed", "message": message})
        self._put(collection, job, "MODIFIED")

    def _kill(self, name: str) -> None:
        """Kill a pod's processes, as ending its container does: the whole process tree, also
        children that made their own session (the runner's trials do)."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        for pid in [proc.pid, *_descendants(proc.pid)]:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc; empty where there is none)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _condition(kind: str, message: str, reason: str = "") -> dict:
    return {"type": kind, "status": "True", "reason": reason or kind, "message": message,
            "lastUpdateTime": _now(), "lastTransitionTime": _now()}


def _job_done(job: dict) -> bool:
    status = job.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed") or status.get("state") == "Completed":
        return True
    return any(c.get("type") in ("Succeeded", "Failed") for c in status.get("conditions") or [])


def _pod_reason(pod: dict) -> str:
    status = pod["status"]
    if status.get("reason"):
        return f"{status['reason']}: {status.get('message', '')}".strip(": ")
    term = ((status.get("containerStatuses") or [{}])[0].get("state") or {}).get("terminated") or {}
    message = f": {term['message']}" if term.get("message") else ""
    return f"{term.get('reason', 'Error')} (exit code {term.get('exitCode')}){message}"


def _expand(text: str, env: dict) -> str:
    """Kubernetes' ``$(VAR)`` expansion in command, args and env values."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), text)


def _matches(obj: dict, selector: str) -> bool:
    labels = obj["metadata"].get("labels") or {}
    for term in filter(None, (selector or "").split(",")):
        key, eq, value = term.partition("=")
        if not eq:  # "key": the label exists
            if key.strip() not in labels:
                return False
        elif labels.get(key.strip()) != value.strip().lstrip("="):
            return False
    return True


class _Handler(BaseHTTPRequestHandler):
    cluster: StandInCluster
    protocol_version = "HTTP/1.1"  # keep-alive, and chunked watch streams as the API server sends them

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    # routing: (collection, namespace, name) or raises 404
    def _route(self) -> tuple[str, str, Optional[str], dict]:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) in (5, 6) and parts[4] in _CORE:
            return parts[4], parts[3], parts[5] if len(parts) == 6 else None, query
        if parts and parts[0] == "apis" and len(parts) in (6, 7) and parts[3] == "namespaces":
            collection = f"{parts[1]}/{parts[5]}"
            info = self.cluster.custom.get(collection)
            if info is not None and parts[2] in info[1]:
                return collection, parts[4], parts[6] if len(parts) == 7 else None, query
        raise _ApiError(404, "NotFound", "the server could not find the requested resource")

    def _auth(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.cluster.token}":
            raise _ApiError(401, "Unauthorized", "Unauthorized")

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""  # always read: the connection is kept alive
        try:
            self._auth()
            if self.path.startswith("/version"):
                self._send(200, {"major": "1", "minor": "27", "gitVersion": "v1.27.0-nni-stand-in"})
                return
            collection, namespace, name, query = self._route()
            c = self.cluster
            if method == "POST" and name is None:
                body = json.loads(raw or b"{}")
                self._send(201, c.create(collection, namespace, body))
            elif method == "DELETE" and name is not None:
                self._send(200, c.delete(collection, namespace, name))
            elif method == "GET" and name is not None:
                with c.lock:
                    obj = c.objects.get((collection, namespace, name))
                    obj = copy.deepcopy(obj)
                if obj is None:
                    raise _ApiError(404, "NotFound", f"{collection.split('/')[-1]} {name!r} not found")
                self._send(200, obj)
            elif method == "GET" and query.get("watch") in ("true", "1"):
                self._watch(collection, namespace, query)
            elif method == "GET":
                with c.lock:
                    items = [copy.deepcopy(o) for (col, ns, _), o in c.objects.items()
                             if col == collection and ns == namespace and _matches(o, query.get("labelSelector", ""))]
                    rv = c.rv
                kind = c.custom[collection][0] if collection in c.custom else _CORE[collection]
                self._send(200, {"kind": f"{kind}List", "apiVersion": "v1", "metadata": {"resourceVersion": str(rv)}, "items": items})
            else:
                raise _ApiError(405, "MethodNotAllowed", f"{method} is not supported here")
        except _ApiError as err:
            self._send(err.code, err.status())

    def _watch(self, collection: str, namespace: str, query: dict) -> None:
        c = self.cluster
        selector = query.get("labelSelector", "")
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 300)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with c.lock:
            since = query.get("resourceVersion")
            if since in (None, "", "0"):
                pending = [("ADDED", copy.deepcopy(o)) for (col, ns, _), o in c.objects.items()
                           if col == collection and ns == namespace and _matches(o, selector)]
                last = c.rv
            else:
                pending, last = [], int(since)
        try:
            while True:
                for kind, obj in pending:
                    line = (json.dumps({"type": kind, "object": obj}) + "\n").encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))  # one chunk per event
                self.wfile.flush()
                pending = []
                with c.lock:
                    while c.rv <= last and not c._closing:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        c.lock.wait(min(left, 0.5))
                    if c._closing or c.rv <= last:
                        self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    for rv, col, kind, obj in c.history:
                        if rv > last and col == collection and obj["metadata"].get("namespace") == namespace and _matches(obj, selector):
                            pending.append((kind, obj))
                    last = c.rv
        except (BrokenPipeError, ConnectionResetError):
            return

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")
