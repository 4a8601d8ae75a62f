"""Structural schemas of the four custom resources, for checking manifests before a cluster sees them.

Written from the fields the CRDs document (Kubeflow's TFJob / PyTorchJob ``v1``,
FrameworkController's ``Framework`` ``v1``, AdaptDL's ``AdaptDLJob`` ``v1``) in the
OpenAPI v3 subset Kubernetes uses for structural schemas (``type``, ``properties``,
``required``, ``items``, ``enum``, ``minimum``, ``pattern``, ``additionalProperties``). They are
reduced: the pod template is checked down to its containers (name, image, command, env,
resources, volume mounts) and volumes, not every field of a ``PodSpec``; unknown fields of a
pod are allowed, unknown fields of the job's own spec are not (what a structural CRD prunes
or rejects). :func:`validate` returns one line per problem, naming the field path.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["SCHEMAS", "validate"]

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # DNS-1123 label
_QUANTITY = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"}]}

_ENV = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string"}, "value": {"type": "string"}, "valueFrom": {"type": "object"}}}

_CONTAINER = {
    "type": "object",
    "required": ["name", "image"],
    "properties": {
        "name": {"type": "string", "pattern": _NAME},
        "image": {"type": "string", "minLength": 1},
        "command": {"type": "array", "items": {"type": "string"}},
        "args": {"type": "array", "items": {"type": "string"}},
        "workingDir": {"type": "string"},
        "env": {"type": "array", "items": _ENV},
        "resources": {"type": "object", "properties": {
            "limits": {"type": "object", "additionalProperties": _QUANTITY},
            "requests": {"type": "object", "additionalProperties": _QUANTITY}}},
        "volumeMounts": {"type": "array", "items": {"type": "object", "required": ["name", "mountPath"], "properties": {
            "name": {"type": "string"}, "mountPath": {"type": "string", "pattern": "^/"}}}},
    },
}

_VOLUME = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "pattern": _NAME},
    "nfs": {"type": "object", "required": ["server", "path"], "properties": {"server": {"type": "string"}, "path": {"type": "string"}}},
    "azureFile": {"type": "object", "required": ["secretName", "shareName"], "properties": {
        "secretName": {"type": "string"}, "shareName": {"type": "string"}}},
    "persistentVolumeClaim": {"type": "object", "required": ["claimName"], "properties": {"claimName": {"type": "string"}}},
}}

POD_TEMPLATE = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "metadata": {"type": "object"},
        "spec": {"type": "object", "required": ["containers"], "properties": {
            "containers": {"type": "array", "minItems": 1, "items": _CONTAINER},
            "restartPolicy": {"type": "string", "enum": ["Always", "OnFailure", "Never"]},
            "volumes": {"type": "array", "items": _VOLUME},
            "serviceAccountName": {"type": "string"},
            "imagePullSecrets": {"type": "array", "items": {"type": "object", "required": ["name"]}},
        }},
    },
}

_META = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "pattern": _NAME, "maxLength": 63}, "namespace": {"type": "string"},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}


def _replica_specs(roles: list[str]) -> dict:
    replica = {"type": "object", "required": ["template"], "additionalProperties": False, "properties": {
        "replicas": {"type": "integer", "minimum": 1},
        "restartPolicy": {"type": "string", "enum": ["Always", "OnFailure", "Never", "ExitCode"]},
        "template": POD_TEMPLATE}}
    return {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {r: replica for r in roles}}


def _job(kind: str, spec: dict) -> dict:
    return {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string", "enum": [kind]}, "metadata": _META, "spec": spec}}


_RETRY = {"type": "object", "additionalProperties": False, "properties": {
    "fancyRetryPolicy": {"type": "boolean"}, "maxRetryCount": {"type": "integer", "minimum": -2}}}

SCHEMAS: dict[str, dict] = {
    "TFJob": _job("TFJob", {"type": "object", "required": ["tfReplicaSpecs"], "additionalProperties": False, "properties": {
        "tfReplicaSpecs": _replica_specs(["Chief", "PS", "Worker", "Evaluator", "Master"]),
        "runPolicy": {"type": "object"}}}),
    "PyTorchJob": _job("PyTorchJob", {"type": "object", "required": ["pytorchReplicaSpecs"], "additionalProperties": False, "properties": {
        "pytorchReplicaSpecs": _replica_specs(["Master", "Worker"]),
        "runPolicy": {"type": "object"}}}),
    "Framework": _job("Framework", {"type": "object", "required": ["taskRoles"], "additionalProperties": False, "properties": {
        "description": {"type": "string"},
        "executionType": {"type": "string", "enum": ["Start", "Stop"]},
        "retryPolicy": _RETRY,
        "taskRoles": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "taskNumber", "task"], "additionalProperties": False, "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]{1,32}$"},
                "taskNumber": {"type": "integer", "minimum": 0},
                "frameworkAttemptCompletionPolicy": {
                    "type": "object", "required": ["minFailedTaskCount", "minSucceededTaskCount"], "additionalProperties": False,
                    "properties": {"minFailedTaskCount": {"type": "integer", "minimum": -1},
                                   "minSucceededTaskCount": {"type": "integer", "minimum": -1}}},
                "task": {"type": "object", "required": ["pod"], "additionalProperties": False, "properties": {
                    "retryPolicy": _RETRY, "podGracefulDeletionTimeoutSec": {"type": "integer", "minimum": 0},
                    "pod": POD_TEMPLATE}}}}}}}),
    "AdaptDLJob": _job("AdaptDLJob", {"type": "object", "required": ["template"], "additionalProperties": False, "properties": {
        "template": POD_TEMPLATE,
        "preemptible": {"type": "boolean"},
        "minReplicas": {"type": "integer", "minimum": 0},
        "maxReplicas": {"type": "integer", "minimum": 1}}}),
}


def _type_ok(value: Any, t: str) -> bool:
    return {
        "object": isinstance(value, dict), "array": isinstance(value, list), "string": isinstance(value, str),
        "boolean": isinstance(value, bool), "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
    }[t]


def validate(obj: Any, schema: dict, path: str = "") -> list[str]:
    """Problems of ``obj`` against ``schema``, one line each (``path: what is wrong``)."""
    where = path or "<root>"
    if "anyOf" in schema:
        if all(validate(obj, s, path) for s in schema["anyOf"]):
            return [f"{where}: {obj!r} has neither of the allowed forms"]
        return []
    t = schema.get("type")
    if t and not _type_ok(obj, t):
        return [f"{where}: expected {t}, got {type(obj).__name__}"]
    errors: list[str] = []
    if "enum" in schema and obj not in schema["enum"]:
        errors.append(f"{where}: {obj!r} is not one of {schema['enum']}")
    if isinstance(obj, str):
        if "pattern" in schema and not re.search(schema["pattern"], obj):
            errors.append(f"{where}: {obj!r} does not match {schema['pattern']}")
        if len(obj) < schema.get("minLength", 0) or len(obj) > schema.get("maxLength", 1 << 30):
            errors.append(f"{where}: length {len(obj)} is out of range")
    if isinstance(obj, (int, float)) and not isinstance(obj, bool) and "minimum" in schema and obj < schema["minimum"]:
        errors.append(f"{where}: {obj} is below the minimum {schema['minimum']}")
    if isinstance(obj, list):
        if len(obj) < schema.get("minItems", 0):
            errors.append(f"{where}: needs at least {schema['minItems']} item(s)")
        for i, item in enumerate(obj):
            errors += validate(item, schema.get("items", {}), f"{path}[{i}]")
    if isinstance(obj, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in obj:
                errors.append(f"{path + '.' if path else ''}{key}: required field is missing")
        if len(obj) < schema.get("minProperties", 0):
            errors.append(f"{where}: needs at least {schema['minProperties']} field(s)")
        extra = schema.get("additionalProperties", True)
        for key, value in obj.items():
            sub = f"{path}.{key}" if path else key
            if key in props:
                errors += validate(value, props[key], sub)
            elif extra is False:
                errors.append(f"{sub}: unknown field; allowed: {', '.join(props)}")
            elif isinstance(extra, dict):
                errors += validate(value, extra, sub)
    return errors
