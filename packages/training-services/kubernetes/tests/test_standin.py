"""The stand-in API server answers the official ``kubernetes`` client as a cluster would:
paths, status objects and codes, label selectors, watch streams, schema validation, auth."""
from __future__ import annotations

import threading

import pytest
from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from nni.training_services.kubernetes import manifests as mf
from nni.training_services.kubernetes.service import load_api_client


def _tfjob(name, command=("sleep", "30")):
    template = mf.pod_template(container_name="tensorflow", image="img", command=list(command), labels={"app": name})
    return mf.kubeflow_job(mf.CRDS["TFJob"], name, "default", {"app": name}, [mf.RoleSpec("Worker", 1, template)])


def test_crud_status_codes_and_watch(cluster, kubeconfig):
    api = load_api_client()
    custom, core = k8s.CustomObjectsApi(api), k8s.CoreV1Api(api)
    args = ("kubeflow.org", "v1", "default", "tfjobs")
    events = []
    seen_running = threading.Event()

    def follow():
        for ev in watch.Watch().stream(custom.list_namespaced_custom_object, *args, label_selector="app=one", timeout_seconds=20):
            events.append((ev["type"], ev["object"]["metadata"]["name"], (ev["object"].get("status") or {}).get("conditions")))
            if ev["type"] == "DELETED":
                return
            if any(c["type"] == "Running" for c in (ev["object"].get("status") or {}).get("conditions") or []):
                seen_running.set()

    follower = threading.Thread(target=follow)
    follower.start()
    created = custom.create_namespaced_custom_object(*args, _tfjob("one"))
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    custom.create_namespaced_custom_object(*args, _tfjob("two"))
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(*args, _tfjob("one"))
    assert err.value.status == 409 and '"reason": "AlreadyExists"' in err.value.body
    assert seen_running.wait(20)
    assert [j["metadata"]["name"] for j in custom.list_namespaced_custom_object(*args, label_selector="app=two")["items"]] == ["two"]
    # the operator made the pod, and the pod runs the container's command
    pods = core.list_namespaced_pod("default", label_selector="app=one").items
    assert [p.metadata.name for p in pods] == ["one-worker-0"] and pods[0].status.phase == "Running"
    assert core.read_namespaced_pod("one-worker-0", "default").metadata.owner_references[0].kind == "TFJob"
    custom.delete_namespaced_custom_object(*args, "one")
    follower.join(20)
    assert [e[:2] for e in events][0] == ("ADDED", "one") and events[-1][:2] == ("DELETED", "one")
    assert all(name == "one" for _, name, _ in events)  # the label selector applies to the stream
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object(*args, "one")
    assert err.value.status == 404 and '"kind": "Status"' in err.value.body
    assert core.list_namespaced_pod("default", label_selector="app=one").items == []
    # a version or a group the cluster does not serve
    with pytest.raises(ApiException) as err:
        custom.list_namespaced_custom_object("kubeflow.org", "v1alpha2", "default", "tfjobs")
    assert err.value.status == 404


def test_schema_violations_are_422_naming_the_field(cluster, kubeconfig):
    custom = k8s.CustomObjectsApi(load_api_client())
    job = _tfjob("bad")
    job["spec"]["tfReplicaSpecs"]["Worker"]["restartPolicy"] = "Sometimes"
    job["spec"]["tfReplicaSpecs"]["Launcher"] = job["spec"]["tfReplicaSpecs"]["Worker"]
    del job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["image"]
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object("kubeflow.org", "v1", "default", "tfjobs", job)
    body = err.value.body
    assert err.value.status == 422 and '"reason": "Invalid"' in body
    assert "spec.tfReplicaSpecs.Worker.restartPolicy" in body and "spec.tfReplicaSpecs.Launcher: unknown field" in body
    assert "spec.tfReplicaSpecs.Worker.template.spec.containers[0].image: required field is missing" in body


def test_wrong_token_is_401(cluster, tmp_path):
    path = cluster.write_kubeconfig(tmp_path / "kc")
    path.write_text(path.read_text().replace(cluster.token, "nope"))
    with pytest.raises(ApiException) as err:
        k8s.CoreV1Api(load_api_client(str(path))).list_namespaced_pod("default")
    assert err.value.status == 401


def test_a_pod_command_expands_env_and_an_evicted_pod_says_why(cluster, kubeconfig, tmp_path):
    api = load_api_client()
    custom, core = k8s.CustomObjectsApi(api), k8s.CoreV1Api(api)
    out = tmp_path / "out.txt"
    job = _tfjob("echo", ["sh", "-c", f"echo $(NNI_POD_NAME) > {out}; sleep 30"])
    custom.create_namespaced_custom_object("kubeflow.org", "v1", "default", "tfjobs", job)
    cluster.wait_for(lambda: out.exists() and out.read_text().strip(), what="the pod's output")
    assert out.read_text().strip() == "echo-worker-0"  # $(VAR) expanded, fieldRef metadata.name resolved
    cluster.evict_pod("echo-worker-0", "The node had condition: [DiskPressure].")
    pod = core.read_namespaced_pod("echo-worker-0", "default")
    assert pod.status.phase == "Failed" and pod.status.reason == "Evicted" and "DiskPressure" in pod.status.message
    job = custom.get_namespaced_custom_object("kubeflow.org", "v1", "default", "tfjobs", "echo")
    failed = [c for c in job["status"]["conditions"] if c["type"] == "Failed"]
    assert failed and "echo-worker-0" in failed[0]["message"] and "Evicted" in failed[0]["message"]
