"""The ``kubeflow``, ``frameworkcontroller`` and ``adl`` training services.

Every trial runs under NNI's trial runner (``python -m nni.training_services.local.runner``)
inside the *primary pod* of a Kubernetes job: the ``worker`` of a TFJob, the ``master`` of a
PyTorchJob, the first task role of a Framework, the pod of an AdaptDLJob. The runner connects
back to the manager (:class:`~nni.runtime.runner_listener.RunnerListener`; ``--connect
HOST:PORT --runner-id <job>`` in the pod's command, the token in its environment), so the
manager needs no access to the pods' network, only the pods to the manager (``nniManagerIp``).

* **Reuse mode** (``reuseMode: true``, the default of Kubeflow and FrameworkController): a job
  is a long-lived environment; trials are handed to its runner one after another. Environments
  are created as trials wait (so at most ``trialConcurrency`` of them) and deleted at
  :meth:`~KubernetesTrainingService.stop`.
* **Non-reuse mode** (``reuseMode: false``; always for ``adl``, whose docs know only one job per
  trial): one job per trial, named ``nni-exp-<experiment>-trial-<trial>``, its runner started
  with ``--single``; the job is deleted when the trial ends.

The other roles of a job (``ps``, extra task roles) run their own ``command``. The primary
role's replicas / ``taskNumber`` must be 1: every replica of a role shares one pod template, and
so one runner identity.

Storage (Kubeflow, FrameworkController): the code is copied to
``<storage>/nni/<experiment>/code``; the pods mount ``<storage>/nni/<experiment>`` at
``/tmp/nni-<experiment>`` (NFS volume, or an Azure File share whose key NNI reads from Key Vault
with the ``az`` CLI and keeps in a Secret), work in ``code/`` there and write the trials'
folders to ``trials/<trial>/``, whose ``stdout``, ``stderr`` and ``trial.log`` are copied into
the experiment's trial folder when the trial ends. The manager sees the storage through an NFS
export of its own machine (server ``localhost``/``127.0.0.1``, used in place) or by mounting it
(``mount -t nfs4`` / ``mount -t cifs``) under the experiment folder.

Faults: the service watches its jobs (label ``nni.experiment=<id>``). A job that fails before
its runner connects fails the trials waiting for it, with the operator's message; a runner whose
connection drops (pod evicted, job failed or deleted, node lost) ends its trial SYS_CANCELED with
the pod's reason and ``requeue=True``, and the broken job is deleted.
"""
from __future__ import annotations

import abc
import asyncio
import base64
import dataclasses
import functools
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as _Urllib3Error

from nni.experiment.config.adl import AdlConfig
from nni.experiment.config.frameworkcontroller import FrameworkControllerConfig
from nni.experiment.config.kubeflow import KubeflowConfig
from nni.runtime.runner_client import RunnerClient
from nni.runtime.runner_listener import RunnerListener
from nni.runtime.training_service import (
    ExperimentContext,
    RequestNeverSatisfiable,
    StateEvent,
    TrialJobDetail,
    TrialJobStatus,
)
from nni.training_services.local.runner_pool import RUNNER_ERRORS, RunnerPool, copy_output_files

from . import manifests as mf

__all__ = [
    "KubernetesTrainingService", "KubeflowTrainingService", "FrameworkControllerTrainingService", "AdlTrainingService",
    "KubernetesError", "load_api_client",
]

_logger = logging.getLogger("nni.training_services.kubernetes")

RUNNER_MODULE = "nni.training_services.local.runner"


#: What a call raises when the API server cannot be reached (refused, reset, timed out).
NETWORK_ERRORS = (OSError, _Urllib3Error)


class KubernetesError(ValueError):
    """The cluster cannot be used as configured; the one-line message says why and what to do."""


def load_api_client(kubeconfig: Optional[str] = None) -> k8s.ApiClient:
    """An API client from ``kubeconfig``, else ``$KUBECONFIG``, else ``~/.kube/config``, else the
    in-cluster service account (when the manager itself runs in a pod)."""
    path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    path = path.split(os.pathsep)[0]
    if Path(path).is_file():
        try:
            return k8s_config.new_client_from_config(config_file=path)
        except (k8s_config.ConfigException, ValueError, OSError) as err:
            raise KubernetesError(f"kubeconfig {path}: cannot be used ({err})") from None
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = k8s.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)
        return k8s.ApiClient(configuration)
    raise KubernetesError(f"kubeconfig: {path} does not exist; set KUBECONFIG to your cluster's kubeconfig file "
                          "(or run the manager inside the cluster)")


def _api_message(err: ApiException) -> str:
    try:
        return json.loads(err.body).get("message") or str(err.reason)
    except (TypeError, ValueError, AttributeError):
        return f"{err.status} {err.reason}"


@dataclasses.dataclass
class _Env:
    """One job: where a runner runs."""

    name: str
    single: bool
    client: Optional[RunnerClient] = None
    trial: Optional[str] = None  # the trial it runs now
    waiting: list = dataclasses.field(default_factory=list)  # trials waiting for this job to come up
    failed: Optional[asyncio.Future] = None  # the job's failure message, from the watch
    job_message: str = ""
    deleted: bool = False


class KubernetesTrainingService(RunnerPool):
    """The common part of the three Kubernetes platforms (see the module docstring).

    Args:
        config: the canonical ``trainingService`` mapping.
        context: the experiment.
        kubeconfig: kubeconfig file (default ``$KUBECONFIG`` / ``~/.kube/config`` / in-cluster).
        runner_timeout: seconds a job has to start its runner and connect (image pulls, scheduling).
        loss_grace: seconds to wait for the pod's status to say why a runner's connection dropped.
    """

    #: The job kind's API location (set by subclasses, may depend on the config).
    crd: mf.Crd

    def __init__(self, config: dict, context: ExperimentContext, kubeconfig: Optional[str] = None,
                 runner_timeout: float = 900.0, loss_grace: float = 3.0) -> None:
        super().__init__(config, context)
        self.kubeconfig = kubeconfig
        self.runner_timeout = runner_timeout
        self.loss_grace = loss_grace
        self.namespace = self.config.get("namespace") or "default"
        self.reuse = self.config.get("reuseMode", True) is not False
        self.exp_id = context.experiment_id.lower()
        self.labels = {mf.EXPERIMENT_LABEL: self.exp_id}
        self.container_root = f"/tmp/nni-{self.exp_id}"  # the experiment's folder inside the pods
        self.local_root: Optional[Path] = None  # the same folder, seen from the manager's machine
        self._mounted: Optional[Path] = None
        self.api: Optional[k8s.ApiClient] = None
        self.custom: Any = None  # CustomObjectsApi
        self._core_future: Optional[asyncio.Future] = None  # -> CoreV1Api
        self.listener: Optional[RunnerListener] = None
        self._envs: dict[str, _Env] = {}
        self._secrets: list[str] = []
        self._claims: list[str] = []
        self._env_count = 0
        self._stop_began = 0.0
        self._jobs_at_stop = 0
        self._watch_stop = threading.Event()
        # Blocking client calls run here, not in the loop's default executor, which the manager
        # may keep busy: a stop or a lost trial must not wait behind unrelated work.
        self._pool = ThreadPoolExecutor(4, thread_name_prefix=f"nni-{self.platform}")

    # ----- what subclasses provide -----

    def _check_config(self) -> None:
        """Raise :class:`KubernetesError` for settings this platform cannot run (one line)."""

    def _primary_command(self) -> str:
        return self.context.trial_command

    @abc.abstractmethod
    def _job_manifest(self, name: str, runner: list[str], env: dict) -> dict:
        """The job's manifest; its primary pod runs ``runner`` with ``env`` (the runner's token)."""

    def _storage_volume(self) -> Optional[tuple[k8s.V1Volume, k8s.V1VolumeMount]]:
        return None

    # ----- lifecycle -----

    def check_request(self, gpu_number: Optional[int]) -> None:
        most = self._gpus_per_trial()
        if gpu_number and most is not None and gpu_number > most:
            raise RequestNeverSatisfiable(
                f"trialGpuNumber: {gpu_number} GPUs per trial, but the {self.platform} trial pod asks for {most}; "
                f"raise the role's gpuNumber or lower trialGpuNumber")

    def _gpus_per_trial(self) -> Optional[int]:
        return None

    async def start(self) -> None:
        if self._started:
            return
        self._check_config()
        self.api = await self._call(load_api_client, self.kubeconfig)
        # The client imports each API module on first use; CoreV1Api's takes seconds and holds the
        # GIL meanwhile, so it is loaded here, before any trial, not when a pod must be looked at.
        self.custom = await self._call(k8s.CustomObjectsApi, self.api)
        self._core_future = asyncio.get_running_loop().run_in_executor(self._pool, k8s.CoreV1Api, self.api)
        await self._core()
        await self._preflight()
        await self._call(self._prepare_storage)
        await self._create_secrets()
        host = self.config.get("nniManagerIp") or getattr(self.context, "nni_manager_ip", None) or "127.0.0.1"
        bind = "127.0.0.1" if host in ("127.0.0.1", "localhost") else "0.0.0.0"
        self.listener = RunnerListener(bind, 0, advertise_host=host)
        await self.listener.start()
        self._trials_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._watch_jobs, args=(loop,), name=f"nni-k8s-watch-{self.exp_id}", daemon=True).start()
        self._started = True
        self._dispatch()

    async def _preflight(self) -> None:
        """The job kind must be served by the cluster (its operator installed) and we must be allowed in."""
        crd = self.crd
        try:
            await self._call(self.custom.list_namespaced_custom_object,
                             crd.group, crd.version, self.namespace, crd.plural, limit=1)
        except ApiException as err:
            if err.status == 404:
                raise KubernetesError(
                    f"trainingService.platform: the cluster serves no {crd.kind} ({crd.api_version}, {crd.plural}); "
                    f"install {self._operator_name()} or fix apiVersion") from None
            raise KubernetesError(f"trainingService: the Kubernetes API refused to list {crd.plural} in namespace "
                                  f"{self.namespace!r}: {_api_message(err)}") from None
        except NETWORK_ERRORS as err:
            raise KubernetesError(f"trainingService: cannot reach the Kubernetes API server ({err})") from None

    def _operator_name(self) -> str:
        return "its operator"

    async def _stop_runners(self) -> None:
        self._stop_began = asyncio.get_running_loop().time()
        self._jobs_at_stop = len(self._envs)
        stops = [env.client.stop(timeout=15) for env in self._envs.values() if env.client is not None]
        await asyncio.gather(*stops, return_exceptions=True)
        await asyncio.gather(*(self._delete_job(env) for env in list(self._envs.values())), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()

    async def _release(self) -> None:
        self._watch_stop.set()
        if self.listener is not None:
            await self.listener.close()
        await self._delete_core_objects()
        await self._call(self._release_storage)
        _logger.info("%s: stopped; %d job(s) deleted in %.1f s", self.platform, self._jobs_at_stop,
                     asyncio.get_running_loop().time() - self._stop_began)
        self._pool.shutdown(wait=False)

    # ----- storage -----

    def _prepare_storage(self) -> None:
        storage = self.config.get("storage")
        if not storage:
            return
        kind = storage.get("storageType")
        if kind == "nfs":
            export = Path(storage["path"])
            if storage["server"] in ("127.0.0.1", "localhost", socket.gethostname()) and export.is_dir():
                base = export  # this machine is the NFS server: use the export in place
            else:
                base = self._mount(["mount", "-t", "nfs4", f"{storage['server']}:{storage['path']}"],
                                   "trainingService.storage", "install an NFS client (apt-get install nfs-common) and check server/path")
        else:  # azureStorage
            key = self._azure_key()
            share = f"//{storage['azureAccount']}.file.core.windows.net/{storage['azureShare']}"
            base = self._mount(["mount", "-t", "cifs", share, "-o",
                                f"vers=3.0,username={storage['azureAccount']},password={key},dir_mode=0777,file_mode=0777"],
                               "trainingService.storage.azureShare", "install cifs-utils and check azureAccount/azureShare")
        self.local_root = base / "nni" / self.context.experiment_id
        code = self.local_root / "code"
        if code.exists():
            shutil.rmtree(code)
        (self.local_root / "trials").mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.context.trial_code_directory, code, ignore=shutil.ignore_patterns(".git", "__pycache__"))

    def _mount(self, command: list[str], field: str, hint: str) -> Path:
        target = Path(self.context.experiment_dir) / "storage"
        target.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([*command, str(target)], capture_output=True, text=True)
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or ["failed"])[-1].replace(self._azure_key_cache or "\0", "***")
            raise KubernetesError(f"{field}: cannot mount the storage on this machine ({why}); {hint}")
        self._mounted = target
        return target

    _azure_key_cache: Optional[str] = None

    def _azure_key(self) -> str:
        """The storage account key, read from Azure Key Vault with the ``az`` CLI (as the docs set it up)."""
        if self._azure_key_cache is None:
            storage = self.config["storage"]
            az = shutil.which("az")
            if az is None:
                raise KubernetesError("trainingService.storage.keyVaultName: the Azure CLI (az) is needed to read the "
                                      "storage key from Key Vault; install it and run 'az login'")
            proc = subprocess.run([az, "keyvault", "secret", "show", "--vault-name", storage["keyVaultName"], "--name",
                                   storage["keyVaultKey"], "--query", "value", "-o", "tsv"], capture_output=True, text=True)
            if proc.returncode != 0 or not proc.stdout.strip():
                why = (proc.stderr.strip().splitlines() or ["empty secret"])[-1]
                raise KubernetesError(f"trainingService.storage.keyVaultKey: cannot read secret {storage['keyVaultKey']!r} "
                                      f"from Key Vault {storage['keyVaultName']!r} ({why})")
            self._azure_key_cache = proc.stdout.strip()
        return self._azure_key_cache

    def _release_storage(self) -> None:
        if self._mounted is not None:
            subprocess.run(["umount", str(self._mounted)], capture_output=True)
            self._mounted = None

    def _azure_secret_name(self) -> str:
        return mf.job_name(self.exp_id, "azure-storage")

    async def _create_secrets(self) -> None:
        storage = self.config.get("storage") or {}
        if storage.get("storageType") == "azureStorage":
            key = await self._call(self._azure_key)
            await self._create_secret(self._azure_secret_name(), {
                "azurestorageaccountname": storage["azureAccount"], "azurestorageaccountkey": key}, "Opaque")

    async def _create_secret(self, name: str, data: dict, kind: str) -> None:
        body = k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=name, labels=self.labels), type=kind,
                            data={k: base64.b64encode(v.encode() if isinstance(v, str) else v).decode() for k, v in data.items()})
        core = await self._core()
        try:
            await self._call(core.create_namespaced_secret, self.namespace, body)
        except ApiException as err:
            if err.status != 409:
                raise KubernetesError(f"trainingService: cannot create the secret {name!r}: {_api_message(err)}") from None
        self._secrets.append(name)

    async def _delete_core_objects(self) -> None:
        if not self._secrets and not self._claims:
            return
        core = await self._core()
        for name in self._secrets:
            try:
                await self._call(core.delete_namespaced_secret, name, self.namespace)
            except (ApiException, *NETWORK_ERRORS) as err:
                _logger.info("secret %s not deleted: %s", name, err)
        for name in self._claims:
            try:
                await self._call(core.delete_namespaced_persistent_volume_claim, name, self.namespace)
            except (ApiException, *NETWORK_ERRORS) as err:
                _logger.info("claim %s not deleted: %s", name, err)

    def _nfs_or_azure_volume(self) -> Optional[tuple[k8s.V1Volume, k8s.V1VolumeMount]]:
        storage = self.config.get("storage")
        if not storage:
            return None
        sub = f"nni/{self.context.experiment_id}"
        if storage["storageType"] == "nfs":
            volume = k8s.V1Volume(name="nni-storage", nfs=k8s.V1NFSVolumeSource(
                server=storage["server"], path=f"{storage['path'].rstrip('/')}/{sub}"))
            return volume, k8s.V1VolumeMount(name="nni-storage", mount_path=self.container_root)
        volume = k8s.V1Volume(name="nni-storage", azure_file=k8s.V1AzureFileVolumeSource(
            secret_name=self._azure_secret_name(), share_name=storage["azureShare"], read_only=False))
        return volume, k8s.V1VolumeMount(name="nni-storage", mount_path=self.container_root, sub_path=sub)

    # ----- the runner's view -----

    def _runner_context(self) -> ExperimentContext:
        return dataclasses.replace(self.context, experiment_dir=self.container_root,
                                   trial_code_directory=f"{self.container_root}/code", trial_command=self._primary_command(),
                                   shared_storage=None)

    def _trial_workdir(self, trial_id: str) -> Path:
        if self.local_root is not None:
            return self.local_root / "trials" / trial_id
        return super()._trial_workdir(trial_id)

    def _trial_url(self, trial_id: str) -> Optional[str]:
        storage = self.config.get("storage") or {}
        sub = f"nni/{self.context.experiment_id}/trials/{trial_id}"
        if storage.get("storageType") == "nfs":
            return f"nfs://{storage['server']}:{storage['path'].rstrip('/')}/{sub}"
        if storage.get("storageType") == "azureStorage":
            return f"https://{storage['azureAccount']}.file.core.windows.net/{storage['azureShare']}/{sub}"
        return None

    # ----- trials -----

    def _client_of(self, trial_id: str) -> Optional[RunnerClient]:
        env = self._owner.get(trial_id)
        return env.client if env is not None else None

    def _where(self, trial_id: str) -> str:
        env = self._owner.get(trial_id)
        return env.name if env is not None else "?"

    async def _cancel_unstarted(self, trial_id: str, final: TrialJobStatus) -> bool:
        env = self._owner.get(trial_id)
        if env is None or trial_id not in env.waiting:
            return False
        env.waiting.remove(trial_id)
        self._set_status(self._trials[trial_id], final)
        if env.single:
            await self._delete_job(env)
        return True

    def _idle_runner(self, trial_id: str) -> Optional[_Env]:
        return next((e for e in self._envs.values() if not e.single and e.client is not None and e.trial is None), None)

    def _launch_for_backlog(self) -> None:
        """Promise each trial left to a job that is starting (one trial each), creating jobs as needed."""
        while self._backlog:
            trial_id = self._backlog.pop(0)
            starting = next((e for e in self._envs.values() if not e.single and e.client is None and e.trial is None
                             and not e.waiting), None)
            if starting is None:
                starting = self._new_env(single=not self.reuse, trial_id=trial_id)
            starting.waiting.append(trial_id)
            self._owner[trial_id] = starting
            self._waiting(self._trials[trial_id], f"waiting for {self.crd.kind} {starting.name} to start its trial runner")

    def _new_env(self, single: bool, trial_id: str) -> _Env:
        self._env_count += 1
        name = mf.job_name(self.exp_id, f"trial-{trial_id}" if single else f"env-{self._env_count}")
        env = _Env(name=name, single=single, failed=asyncio.get_running_loop().create_future())
        self._envs[name] = env
        self._spawn(self._start_env(env))
        return env

    async def _start_env(self, env: _Env) -> None:
        assert self.listener is not None
        self.listener.expect(env.name)
        runner = ["python3", "-m", RUNNER_MODULE, *self.listener.runner_args(env.name)] + (["--single"] if env.single else [])
        manifest = self._job_manifest(env.name, runner, self.listener.runner_env(env.name))
        crd = self.crd
        try:
            await self._call(self._create_job, manifest)
            waiter = asyncio.ensure_future(self.listener.wait_runner(env.name))
            assert env.failed is not None
            done, _ = await asyncio.wait({waiter, env.failed}, timeout=self.runner_timeout, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                waiter.cancel()
                why = env.failed.result() if env.failed in done else f"its trial runner did not connect within {self.runner_timeout:.0f} s"
                raise KubernetesError(f"{crd.kind} {env.name} failed before its trial runner started: {why}")
            client = waiter.result()
            await client.hello(self._runner_context(), config=self.config, platform=self.platform)
        except (ApiException, KubernetesError, *RUNNER_ERRORS, *NETWORK_ERRORS) as err:
            message = f"{crd.kind} {env.name}: {_api_message(err)}" if isinstance(err, ApiException) else str(err)
            _logger.warning("%s", message)
            await self._delete_job(env)
            for trial_id in env.waiting:
                self._owner.pop(trial_id, None)
                self._set_status(self._trials[trial_id], TrialJobStatus.FAILED, message)
            env.waiting.clear()
            return
        env.client = client
        self._spawn(self._pump(env, client))
        waiting, env.waiting = env.waiting, []
        for trial_id in waiting[:1]:
            self._hand_over(env, trial_id)
        self._backlog[:0] = waiting[1:]  # an environment waits for one trial; never more, kept safe
        self._dispatch()

    def _create_job(self, manifest: dict) -> None:
        """Create a job (in a worker thread). One whose creation ends after :meth:`stop` began is
        deleted at once: stop may have tried to delete it before it existed."""
        crd = self.crd
        self.custom.create_namespaced_custom_object(crd.group, crd.version, self.namespace, crd.plural, manifest)
        if self._stopping:
            self.custom.delete_namespaced_custom_object(crd.group, crd.version, self.namespace, crd.plural,
                                                        manifest["metadata"]["name"],
                                                        body=k8s.V1DeleteOptions(propagation_policy="Background"))

    def _hand_over(self, env: _Env, trial_id: str) -> None:
        env.trial = trial_id
        self._owner[trial_id] = env
        self._spawn(self._send(env, trial_id))

    async def _send(self, env: _Env, trial_id: str) -> None:
        assert env.client is not None
        result = await self._submit_to(env.client, trial_id, env.name)
        if isinstance(result, RequestNeverSatisfiable):
            env.trial = None
            self._dispatch()
        # a runner error: the pump sees the lost connection and re-queues the trial

    async def _pump(self, env: _Env, client: RunnerClient) -> None:
        closed = await self._forward(env, client)
        if self._stopping or env.deleted:
            return
        reason = await self._loss_reason(env, closed)
        await self._delete_job(env)
        if env.trial is not None:
            detail = self._trials[env.trial]
            env.trial = None
            self._requeue(detail, f"{reason}; the trial was stopped there")
            await self._call(self._copy_output, detail.id)
        self._dispatch()

    async def _on_runner_state(self, env: _Env, detail: TrialJobDetail, event: StateEvent) -> None:
        self._set_status(detail, event.status, event.message, event.exit_code, event.time)
        if event.status.is_final:
            if env.trial == detail.id:
                env.trial = None
            await self._call(self._copy_output, detail.id)
            if env.single:
                await self._delete_job(env)
            self._dispatch()

    def _runner_waiting(self, detail: TrialJobDetail, why: str) -> None:
        """Kept quiet: the trial's message stays what the service said."""

    async def _loss_reason(self, env: _Env, closed: str) -> str:
        """Why a job's runner went away: an evicted pod, a failed job, a failed pod, or the connection."""
        core, custom = await self._core(), self.custom
        crd = self.crd
        deadline = asyncio.get_running_loop().time() + self.loss_grace
        while True:
            failed_pod = None
            try:
                pods = await self._call(core.list_namespaced_pod, self.namespace,
                                        label_selector=f"{mf.ENV_LABEL}={env.name}")
                for pod in pods.items:
                    status = pod.status
                    if status is not None and status.phase == "Failed":
                        detail = ": ".join(x for x in (status.reason, status.message) if x) or _terminated(status)
                        if status.reason == "Evicted":
                            return f"pod {pod.metadata.name} of {crd.kind} {env.name} was evicted ({detail})"
                        failed_pod = failed_pod or f"pod {pod.metadata.name} of {crd.kind} {env.name} failed ({detail})"
                job = await self._call(custom.get_namespaced_custom_object, crd.group, crd.version,
                                       self.namespace, crd.plural, env.name)
                env.job_message = job_failure(job) or env.job_message
            except ApiException as err:
                if err.status == 404:
                    env.job_message = env.job_message or "the job was deleted"
                else:
                    _logger.info("status of %s not read: %s", env.name, _api_message(err))
            except NETWORK_ERRORS as err:
                _logger.info("status of %s not read: %s", env.name, err)
            if env.job_message:
                return f"{crd.kind} {env.name} failed ({env.job_message})"
            if failed_pod:
                return failed_pod
            if asyncio.get_running_loop().time() >= deadline:
                return f"the trial runner of {crd.kind} {env.name} lost its connection ({closed})"
            await asyncio.sleep(0.2)

    async def _delete_job(self, env: _Env) -> None:
        if env.deleted:
            return
        env.deleted = True
        self._envs.pop(env.name, None)
        if self.listener is not None:
            self.listener.forget(env.name)
        crd = self.crd
        try:
            await self._call(self.custom.delete_namespaced_custom_object,
                             crd.group, crd.version, self.namespace, crd.plural, env.name,
                             body=k8s.V1DeleteOptions(propagation_policy="Background"))
        except ApiException as err:
            if err.status != 404:
                _logger.warning("%s %s not deleted: %s", crd.kind, env.name, _api_message(err))
        except NETWORK_ERRORS as err:
            _logger.warning("%s %s not deleted: %s", crd.kind, env.name, err)

    def _copy_output(self, trial_id: str) -> None:
        if self.local_root is not None:
            copy_output_files(self.local_root / "trials" / trial_id, self._trials_dir / trial_id, trial_id,
                              " from the storage", log=_logger.debug)

    # ----- watching the jobs -----

    def _watch_jobs(self, loop: asyncio.AbstractEventLoop) -> None:
        """Follow the experiment's jobs (a watch stream, re-opened every few seconds) in a thread."""
        crd = self.crd
        api = self.custom
        version = None
        while not self._watch_stop.is_set():
            w = k8s_watch.Watch()
            try:
                kwargs = {"label_selector": f"{mf.EXPERIMENT_LABEL}={self.exp_id}", "timeout_seconds": 2}
                if version:
                    kwargs["resource_version"] = version
                for event in w.stream(api.list_namespaced_custom_object, crd.group, crd.version, self.namespace, crd.plural, **kwargs):
                    obj = event["object"]
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    loop.call_soon_threadsafe(self._on_job_event, event["type"], obj)
                    if self._watch_stop.is_set():
                        w.stop()
            except Exception as err:  # noqa: BLE001 - a broken watch is re-opened, never fatal
                if self._watch_stop.is_set() or loop.is_closed():
                    return
                _logger.debug("watch on %s re-opened after: %s", crd.plural, err)
                version = None
                self._watch_stop.wait(1.0)

    def _on_job_event(self, kind: str, obj: dict) -> None:
        name = (obj.get("metadata") or {}).get("name")
        env = self._envs.get(name)
        if env is None:
            return
        failure = job_failure(obj) if kind != "DELETED" else "the job was deleted"
        if failure is None:
            return
        env.job_message = failure
        if env.failed is not None and not env.failed.done():
            env.failed.set_result(failure)

    # ----- helpers -----

    async def _core(self) -> Any:
        """The CoreV1Api (pods, secrets, claims), once loaded."""
        assert self._core_future is not None
        return await asyncio.shield(self._core_future)

    async def _call(self, fn, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    @classmethod
    def _crd_for(cls, config: dict) -> mf.Crd:
        return cls.crd

    @classmethod
    async def remove_experiment_files(cls, config: dict, experiment_id: str) -> list[str]:
        """``nnictl experiment delete``: delete what the experiment left in the cluster (jobs,
        Secrets, PVCs of a manager that did not stop cleanly) and its folder on an NFS export of
        this machine; returns one line per problem."""
        lines = await asyncio.to_thread(_cleanup, cls, config, None, experiment_id)
        problems = [line for line in lines if "not cleaned" in line]
        storage = config.get("storage") or {}
        if storage.get("storageType") == "nfs" and storage.get("server") in ("127.0.0.1", "localhost", socket.gethostname()):
            folder = Path(storage["path"]) / "nni" / experiment_id
            try:
                if folder.exists():
                    shutil.rmtree(folder)
            except OSError as err:
                problems.append(f"{cls.platform}: {folder} not removed ({err})")
        return problems

    @classmethod
    def clean_platform(cls, config: dict, running: set) -> list[str]:
        """``nnictl platform clean``: delete the jobs, Secrets and PVCs of every experiment that
        is not running; returns what was done, one line."""
        return _cleanup(cls, config, running)

    def _pod(self, *, role: str, container: str, image: str, command: list[str], env: Optional[dict], cpu: Any, memory_mb: Any,
             gpu: Any, job: str, extra_volumes: Optional[list] = None, extra_mounts: Optional[list] = None,
             working_dir: Optional[str] = None, **kwargs: Any) -> k8s.V1PodTemplateSpec:
        volumes, mounts = list(extra_volumes or []), list(extra_mounts or [])
        storage = self._storage_volume()
        if storage is not None:
            volumes.append(storage[0])
            mounts.append(storage[1])
        env = dict(env or {})
        env.setdefault("NNI_EXP_ID", self.context.experiment_id)
        return mf.pod_template(
            container_name=container, image=image, command=command, env=env, cpu=cpu, memory_mb=memory_mb, gpu=gpu or 0,
            labels={**self.labels, mf.ENV_LABEL: job, "nni.role": role.lower()},
            working_dir=working_dir if working_dir is not None else (f"{self.container_root}/code" if storage else None),
            volumes=volumes, mounts=mounts, **kwargs)


# ----- clean-up (nnictl experiment delete / platform clean) -----

def _cleanup(cls: type, config: dict, keep: Optional[set], only: Optional[str] = None) -> list[str]:
    """Delete the jobs, Secrets and PVCs NNI labelled for experiments (``only`` that one, else
    every one not in ``keep``); one line per kind of object. Blocking."""
    crd = cls._crd_for(config)
    namespace = config.get("namespace") or "default"
    api = load_api_client()
    custom, core = k8s.CustomObjectsApi(api), k8s.CoreV1Api(api)
    selector = f"{mf.EXPERIMENT_LABEL}={only.lower()}" if only else mf.EXPERIMENT_LABEL
    keep_ids = {k.lower() for k in keep or ()}
    lines = []

    def wanted(meta: Any) -> bool:
        labels = (meta.get("labels") if isinstance(meta, dict) else meta.labels) or {}
        return labels.get(mf.EXPERIMENT_LABEL) not in keep_ids

    try:
        jobs = [j for j in custom.list_namespaced_custom_object(crd.group, crd.version, namespace, crd.plural,
                                                                label_selector=selector)["items"] if wanted(j["metadata"])]
        for job in jobs:
            custom.delete_namespaced_custom_object(crd.group, crd.version, namespace, crd.plural, job["metadata"]["name"],
                                                   body=k8s.V1DeleteOptions(propagation_policy="Background"))
        secrets = [x for x in core.list_namespaced_secret(namespace, label_selector=selector).items if wanted(x.metadata)]
        for secret in secrets:
            core.delete_namespaced_secret(secret.metadata.name, namespace)
        claims = [x for x in core.list_namespaced_persistent_volume_claim(namespace, label_selector=selector).items
                  if wanted(x.metadata)]
        for claim in claims:
            core.delete_namespaced_persistent_volume_claim(claim.metadata.name, namespace)
        lines.append(f"{cls.platform}: deleted {len(jobs)} {crd.kind}(s), {len(secrets)} secret(s), {len(claims)} "
                     f"volume claim(s) in namespace {namespace!r}")
    except ApiException as err:
        lines.append(f"{cls.platform}: not cleaned: the Kubernetes API answered {_api_message(err)}")
    except (KubernetesError, *NETWORK_ERRORS) as err:
        lines.append(f"{cls.platform}: not cleaned: {err}")
    return lines


def _terminated(status: Any) -> str:
    for cs in status.container_statuses or []:
        term = cs.state.terminated if cs.state else None
        if term is not None:
            return f"{term.reason or 'terminated'}, exit code {term.exit_code}"
    return status.phase or "unknown"


def job_failure(obj: dict) -> Optional[str]:
    """The failure message of a TFJob / PyTorchJob / Framework / AdaptDLJob, or ``None`` while it is fine."""
    status = obj.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return cond.get("message") or cond.get("reason") or "Failed"
    if status.get("state") == "Completed":
        completion = ((status.get("attemptStatus") or {}).get("completionStatus") or {})
        if (completion.get("type") or {}).get("name") != "Succeeded":
            return completion.get("diagnostics") or completion.get("phrase") or "the framework attempt failed"
    if status.get("phase") == "Failed":
        return status.get("message") or status.get("reason") or "Failed"
    return None


def _shell(command: str) -> list[str]:
    return ["sh", "-c", command]


class KubeflowTrainingService(KubernetesTrainingService):
    """``platform: kubeflow``: TFJob (``tf-operator``: worker + optional ps) or PyTorchJob
    (``pytorch-operator``: master + optional worker); the trial runner runs in the worker /
    master pod."""

    platform = "kubeflow"
    config_class = KubeflowConfig

    def __init__(self, config: dict, context: ExperimentContext, **kwargs: Any) -> None:
        super().__init__(config, context, **kwargs)
        tf = self.config.get("operator") == "tf-operator"
        self.crd = self._crd_for(self.config)
        self.roles = [("Worker", "worker"), ("PS", "ps")] if tf else [("Master", "master"), ("Worker", "worker")]
        self.container = "tensorflow" if tf else "pytorch"  # the container name each operator looks for

    @classmethod
    def _crd_for(cls, config: dict) -> mf.Crd:
        base = mf.CRDS["TFJob" if config.get("operator") == "tf-operator" else "PyTorchJob"]
        return base.with_version(config.get("apiVersion") or "v1")

    def _operator_name(self) -> str:
        return f"Kubeflow's {self.config.get('operator')}"

    def _primary(self) -> dict:
        return self.config.get(self.roles[0][1]) or {}

    def _check_config(self) -> None:
        key = self.roles[0][1]
        replicas = self._primary().get("replicas", 1)
        if replicas != 1:
            raise KubernetesError(f"trainingService.{key}.replicas: must be 1 here, got {replicas}: the {key} pod runs NNI's "
                                  "trial runner (one per job); put extra processes in the other role")
        if not self.config.get("storage"):
            raise KubernetesError("trainingService.storage: required for kubeflow (nfs or azureStorage)")

    def _gpus_per_trial(self) -> Optional[int]:
        return int(self._primary().get("gpuNumber") or 0)

    def _primary_command(self) -> str:
        return self._primary().get("command") or self.context.trial_command

    def _storage_volume(self):
        return self._nfs_or_azure_volume()

    def _job_manifest(self, name: str, runner: list[str], env: dict) -> dict:
        roles = []
        for i, (kind, key) in enumerate(self.roles):
            role = self.config.get(key)
            if not role:
                continue
            pull = None
            if role.get("privateRegistryAuthPath"):
                pull = [self._registry_secret_name()]
            template = self._pod(role=kind, container=self.container, image=role.get("dockerImage") or "msranni/nni:latest",
                                 command=runner if i == 0 else _shell(role["command"]), env=env if i == 0 else None,
                                 cpu=role.get("cpuNumber"), memory_mb=role.get("memorySize"), gpu=role.get("gpuNumber"),
                                 job=name, pull_secrets=pull)
            roles.append(mf.RoleSpec(kind, int(role.get("replicas") or 1), template))
        return mf.kubeflow_job(self.crd, name, self.namespace, {**self.labels, mf.ENV_LABEL: name}, roles)

    def _registry_secret_name(self) -> str:
        return mf.job_name(self.exp_id, "registry")

    async def _create_secrets(self) -> None:
        await super()._create_secrets()
        paths = {(self.config.get(key) or {}).get("privateRegistryAuthPath") for _, key in self.roles} - {None}
        if paths:
            path = sorted(paths)[0]
            try:
                data = Path(path).read_bytes()
                json.loads(data)
            except (OSError, ValueError) as err:
                raise KubernetesError(f"trainingService.privateRegistryAuthPath: {path} is not a readable docker config.json ({err})") from None
            await self._create_secret(self._registry_secret_name(), {".dockerconfigjson": data}, "kubernetes.io/dockerconfigjson")


class FrameworkControllerTrainingService(KubernetesTrainingService):
    """``platform: frameworkcontroller``: a ``Framework`` with the configured task roles; the
    trial runner runs in the first task role's pod."""

    platform = "frameworkcontroller"
    config_class = FrameworkControllerConfig
    crd = mf.CRDS["Framework"]

    def _operator_name(self) -> str:
        return "FrameworkController"

    def _roles(self) -> list[dict]:
        return list(self.config.get("taskRoles") or [])

    def _check_config(self) -> None:
        if self.config.get("configPath"):
            raise KubernetesError("trainingService.configPath: custom FrameworkController templates are not supported "
                                  "by this build; describe the job with taskRoles instead")
        storage = self.config.get("storage") or {}
        if storage.get("storageType") == "pvc":
            raise KubernetesError("trainingService.storage.storageType: pvc needs a custom template (configPath) naming "
                                  "the claim, which this build does not read; use nfs or azureStorage")
        roles = self._roles()
        if not roles:
            raise KubernetesError("trainingService.taskRoles: must list at least one task role")
        if roles[0].get("taskNumber", 1) != 1:
            raise KubernetesError(f"trainingService.taskRoles[0].taskNumber: must be 1 here, got {roles[0]['taskNumber']}: "
                                  "the first task role runs NNI's trial runner (one per job); add another role for more tasks")
        for i, role in enumerate(roles):
            if not re.fullmatch(r"[a-z0-9]{1,32}", str(role.get("name"))):
                raise KubernetesError(f"trainingService.taskRoles[{i}].name: {role.get('name')!r} is not a FrameworkController "
                                      "task role name; use 1-32 lower-case letters and digits")

    def _gpus_per_trial(self) -> Optional[int]:
        roles = self._roles()
        return int(roles[0].get("gpuNumber") or 0) if roles else None

    def _primary_command(self) -> str:
        roles = self._roles()
        return (roles[0].get("command") if roles else None) or self.context.trial_command

    def _storage_volume(self):
        return self._nfs_or_azure_volume()

    def _job_manifest(self, name: str, runner: list[str], env: dict) -> dict:
        roles = []
        for i, role in enumerate(self._roles()):
            template = self._pod(role=role["name"], container=role["name"], image=role.get("dockerImage") or "msranni/nni:latest",
                                 command=runner if i == 0 else _shell(role["command"]), env=env if i == 0 else None,
                                 cpu=role.get("cpuNumber"), memory_mb=role.get("memorySize"), gpu=role.get("gpuNumber"),
                                 job=name, service_account=self.config.get("serviceAccountName"))
            roles.append(mf.RoleSpec(role["name"], int(role.get("taskNumber") or 1), template,
                                     completion=role.get("frameworkAttemptCompletionPolicy")))
        return mf.framework(self.crd, name, self.namespace, {**self.labels, mf.ENV_LABEL: name}, roles)


class AdlTrainingService(KubernetesTrainingService):
    """``platform: adl``: one ``AdaptDLJob`` per trial (``adaptive``: preemptible and rescalable),
    the image holding the code (``codeDirectory`` is a folder inside it), optional NFS at
    ``nfs.containerMountPath`` and a checkpoint volume (a PersistentVolumeClaim of
    ``checkpoint.storageClass`` / ``storageSize``, at ``ADAPTDL_CHECKPOINT_PATH``)."""

    platform = "adl"
    config_class = AdlConfig
    crd = mf.CRDS["AdaptDLJob"]
    CHECKPOINT_PATH = "/adaptdl/checkpoint"

    def __init__(self, config: dict, context: ExperimentContext, **kwargs: Any) -> None:
        super().__init__(config, context, **kwargs)
        self.reuse = False  # the docs' AdaptDL runs one job per trial

    def _operator_name(self) -> str:
        return "the AdaptDL scheduler (helm)"

    def _runner_context(self) -> ExperimentContext:
        code = self.config.get("codeDirectory") or "."
        return dataclasses.replace(super()._runner_context(), trial_code_directory=code,
                                   trial_command=self.context.trial_command)

    def _claim_name(self) -> str:
        return mf.job_name(self.exp_id, "checkpoint")

    async def _create_secrets(self) -> None:
        checkpoint = self.config.get("checkpoint")
        if not checkpoint:
            return
        claim = k8s.V1PersistentVolumeClaim(
            metadata=k8s.V1ObjectMeta(name=self._claim_name(), labels=self.labels),
            spec=k8s.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteMany"], storage_class_name=checkpoint["storageClass"],
                                                 resources=k8s.V1VolumeResourceRequirements(requests={"storage": checkpoint["storageSize"]})))
        try:
            await self._call((await self._core()).create_namespaced_persistent_volume_claim, self.namespace, claim)
        except ApiException as err:
            if err.status != 409:
                raise KubernetesError(f"trainingService.checkpoint: cannot create the claim {self._claim_name()!r}: "
                                      f"{_api_message(err)}") from None
        self._claims.append(self._claim_name())

    def _gpus_per_trial(self) -> Optional[int]:
        return None  # the pod asks for trialGpuNumber GPUs

    def _job_manifest(self, name: str, runner: list[str], env: dict) -> dict:
        volumes, mounts = [], []
        env = dict(env, ADAPTDL_TENSORBOARD_LOGDIR=f"{self.container_root}/tensorboard")
        nfs = self.config.get("nfs")
        if nfs:
            volumes.append(k8s.V1Volume(name="nfs", nfs=k8s.V1NFSVolumeSource(server=nfs["server"], path=nfs["path"])))
            mounts.append(k8s.V1VolumeMount(name="nfs", mount_path=nfs["containerMountPath"]))
        if self.config.get("checkpoint"):
            volumes.append(k8s.V1Volume(name="checkpoint", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                claim_name=self._claim_name())))
            mounts.append(k8s.V1VolumeMount(name="checkpoint", mount_path=self.CHECKPOINT_PATH))
            env["ADAPTDL_CHECKPOINT_PATH"] = self.CHECKPOINT_PATH
        code = self.config.get("codeDirectory") or "."
        template = self._pod(role="main", container="main", image=self.config["dockerImage"], command=runner, env=env,
                             cpu=self.config.get("cpuNumber"), memory_mb=None, gpu=self.context.trial_gpu_number,
                             memory=self.config.get("memorySize"), job=name, extra_volumes=volumes, extra_mounts=mounts,
                             working_dir=None if code == "." else code,
                             pull_secrets=[s["name"] for s in self.config.get("imagePullSecrets") or []] or None)
        return mf.adaptdl_job(self.crd, name, self.namespace, {**self.labels, mf.ENV_LABEL: name}, template,
                              bool(self.config.get("adaptive")))
