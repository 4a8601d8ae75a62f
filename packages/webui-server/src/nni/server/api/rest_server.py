"""Build the aiohttp application from the route table (one handler per ``Route.name``)."""
from __future__ import annotations

import json
import logging
import re
from typing import Any

from aiohttp import web

from nni.runtime.rest_api import API_ROOT, MAX_BODY_BYTES, MAX_NESTING, ROUTES, Route, nesting_depth, validate

from .errors import ApiError
from .handlers import RestHandlers

_logger = logging.getLogger("nni.server.rest")

MAX_BODY = MAX_BODY_BYTES  # NNI accepts JSON bodies up to 50 MB


class _BodyTooLarge(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise ValueError(f"body: {name} is not a JSON number (use a finite number or a string)")


async def read_json_body(request: web.Request) -> Any:
    """The request's JSON body, parsed with the limits of the OpenAPI document.

    Raises:
        _BodyTooLarge: over :data:`MAX_BODY` bytes (answered 413).
        ValueError: not UTF-8 / not JSON / NaN or Infinity / nested deeper than
            :data:`MAX_NESTING` (answered 400, naming ``body``).
    """
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _BodyTooLarge()
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:  # no (or a false) Content-Length: counted while reading
        raise _BodyTooLarge() from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"body: not UTF-8 ({err.reason} at byte {err.start})") from None
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:  # the C decoder recurses per level: a bomb of brackets ends here
        raise ValueError(f"body: arrays/objects nested deeper than {MAX_NESTING} levels") from None
    except json.JSONDecodeError:
        raise ValueError("body: not valid JSON") from None
    # Shallower than the recursion limit still reaches recursive code later (validation,
    # the store, the dispatcher): the limit is part of the API.
    if nesting_depth(body) > MAX_NESTING:
        raise ValueError(f"body: arrays/objects nested deeper than {MAX_NESTING} levels")
    return body


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def json_response(data: Any, status: int = 200) -> web.Response:
    text = json.dumps(data, default=_json_default, separators=(",", ":"), check_circular=False)
    return web.Response(text=text, status=status, content_type="application/json")


def _make_handler(route: Route, handlers: RestHandlers):
    method = getattr(handlers, route.name)

    async def handle(request: web.Request) -> web.Response:
        kwargs: dict[str, Any] = dict(request.match_info)
        query = dict(request.query)
        try:
            for name in route.required_query:
                if name not in query:
                    raise ValueError(f"query.{name}: required query parameter is missing")
            for name, schema in route.query.items():
                if name in query:
                    validate(schema, query[name], f"query.{name}")
            for name, schema in route.path_schemas.items():
                value = kwargs[name]
                if schema.get("type") == "integer":
                    try:
                        value = int(value)
                    except ValueError:
                        raise ValueError(f"{name}: expected an integer, got {value[:40]!r}") from None
                validate(schema, value, name)
            if route.request is not None:
                if not request.can_read_body:
                    raise ValueError("body: a JSON body is required")
                body = await read_json_body(request)
                validate(route.request, body, "body")
                kwargs["body"] = body
            result = await method(query=query, **kwargs)
            if isinstance(result, web.StreamResponse):  # a file (trial-file route)
                return result
        except _BodyTooLarge:
            return json_response({"error": f"body: larger than the limit of {MAX_BODY // (1024 * 1024)} MB"}, 413)
        except ApiError as err:
            return json_response({"error": str(err)}, err.status)
        except ValueError as err:
            return json_response({"error": str(err)}, 400)
        except Exception as err:  # a bug: keep the manager alive, say what happened
            _logger.exception("%s %s failed", route.method, route.path)
            return json_response({"error": f"internal error: {err}"}, 500)
        return json_response(result)

    handle.__name__ = route.name
    return handle


def _path_regex(path: str) -> "re.Pattern[str]":
    parts = re.split(r"(\{[^}]+\})", path.rstrip("/") or "/")
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts if p))


def build_app(handlers: RestHandlers, prefix: str = "") -> web.Application:
    """The application with every route of :data:`ROUTES` under ``prefix + API_ROOT``."""
    app = web.Application(client_max_size=MAX_BODY)
    root = ("/" + prefix.strip("/") if prefix.strip("/") else "") + API_ROOT
    handlers.url_prefix = root[: -len(API_ROOT)]
    for route in ROUTES:
        app.router.add_route(route.method, root + route.path, _make_handler(route, handlers))
        if route.path != "/" and not route.path.endswith("}"):
            app.router.add_route(route.method, root + route.path + "/", _make_handler(route, handlers))

    patterns = [(_path_regex(root + r.path), r.method) for r in ROUTES]

    async def not_found(request: web.Request) -> web.Response:
        # A known path asked with another method: 405 and the methods it has (RFC 9110 15.5.6).
        path = request.path.rstrip("/") or "/"
        allowed = sorted({method for regex, method in patterns if regex.fullmatch(path)})
        if allowed:
            return web.json_response(
                {"error": f"method {request.method} is not allowed on {request.path}; allowed: {', '.join(allowed)}"},
                status=405, headers={"Allow": ", ".join(allowed)},
            )
        return json_response({"error": f"no such API route: {request.method} {request.path}"}, 404)

    app.router.add_route("*", root + "/{tail:.*}", not_found)
    return app
