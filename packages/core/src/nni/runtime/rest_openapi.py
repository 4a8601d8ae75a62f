"""The OpenAPI 3 document of NNI's REST API, generated from :data:`nni.runtime.rest_api.ROUTES`.

The manager serves it at ``/api/v1/nni/openapi.json``; nothing here is written by hand per
route, so the document cannot drift from the routes the server registers and the client calls.
"""
from __future__ import annotations

import copy
from typing import Optional

from .rest_api import API_ROOT, ERROR, MAX_BODY_BYTES, MAX_NESTING, ROUTES, Route


def _schema(schema: Optional[dict]) -> dict:
    """JSON-Schema dict → OpenAPI 3.0 schema (``type: [x, "null"]`` becomes ``nullable``)."""
    if schema is None:
        return {}
    out = copy.deepcopy(schema)

    def fix(node):
        if isinstance(node, dict):
            t = node.get("type")
            if isinstance(t, list):
                rest = [x for x in t if x != "null"]
                if len(rest) < len(t):
                    node["nullable"] = True
                if len(rest) == 1:
                    node["type"] = rest[0]
                else:
                    del node["type"]
                    node["oneOf"] = [{"type": x} for x in rest]
            if isinstance(node.get("exclusiveMinimum"), (int, float)) and not isinstance(node["exclusiveMinimum"], bool):
                node["minimum"] = node["exclusiveMinimum"]  # JSON Schema's number form -> OpenAPI 3.0's flag
                node["exclusiveMinimum"] = True
            for value in node.values():
                fix(value)
        elif isinstance(node, list):
            for value in node:
                fix(value)

    fix(out)
    return out


def _operation(route: Route) -> dict:
    params = [
        {"name": name, "in": "path", "required": True, "schema": _schema(route.path_schemas.get(name, {"type": "string"}))}
        for name in route.path_params
    ]
    params += [
        {"name": name, "in": "query", "required": name in route.required_query, "schema": _schema(schema)}
        for name, schema in route.query.items()
    ]
    error = {"application/json": {"schema": _schema(ERROR)}}
    if route.content == "application/json":
        ok = {"application/json": {"schema": _schema(route.response)}} if route.response is not None else {}
    else:
        ok = {route.content: {"schema": {"type": "string"}}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    op: dict = {
        "operationId": route.name,
        "summary": route.summary,
        "parameters": params,
        "responses": {
            "200": {"description": "OK", "content": ok} if ok else {"description": "OK"},
            "400": {"description": "bad request; the message names the field", "content": error},
            "401": {"description": "access token missing or wrong", "content": error},
            "403": {"description": "cross-origin request, or a Host header that does not name the manager, refused", "content": error},
            "404": {"description": "unknown id or route", "content": error},
        },
    }
    if route.conflict:
        op["responses"]["409"] = {"description": f"refused in the experiment's current state: {route.conflict}", "content": error}
    if route.request is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _schema(route.request)}}}
        op["responses"]["413"] = {"description": f"body larger than {MAX_BODY_BYTES // (1024 * 1024)} MB", "content": error}
    return op


def openapi_document(version: str = "unknown", prefix: str = "") -> dict:
    """The OpenAPI 3.0 document for every route, with server URL ``<prefix>/api/v1/nni``."""
    paths: dict = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    root = ("/" + prefix.strip("/") if prefix.strip("/") else "") + API_ROOT
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "NNI REST API",
            "version": version,
            "description": "The experiment manager's REST API (NNI v2.5 routes and payloads). Every route needs "
            "the access token ('Authorization: Bearer <token>') unless the manager was started with --no-token. A JSON body is at most "
            f"{MAX_BODY_BYTES // (1024 * 1024)} MB, nests arrays/objects at most {MAX_NESTING} deep, and its "
            "integers fit in 64 bits.",
        },
        "servers": [{"url": root}],
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }
