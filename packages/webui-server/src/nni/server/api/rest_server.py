"""Build the aiohttp application from the route table (one handler per ``Route.name``)."""
from __future__ import annotations

import json
import logging
import math
from typing import Any

from aiohttp import web

from nni.runtime.rest_api import API_ROOT, ROUTES, Route, validate

from .handlers import ApiError, RestHandlers

_logger = logging.getLogger("nni.server.rest")

MAX_BODY = 50 * 1024 * 1024  # NNI accepts JSON bodies up to 50 MB


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
            for name, schema in route.query.items():
                if name in query:
                    validate(schema, query[name], f"query.{name}")
            if route.request is not None:
                if not request.can_read_body:
                    raise ValueError("body: a JSON body is required")
                try:
                    body = await request.json()
                except ValueError:
                    raise ValueError("body: not valid JSON") from None
                validate(route.request, body, "body")
                kwargs["body"] = body
            result = await method(query=query, **kwargs)
            if isinstance(result, web.StreamResponse):  # a file (trial-file route)
                return result
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


def build_app(handlers: RestHandlers, prefix: str = "") -> web.Application:
    """The application with every route of :data:`ROUTES` under ``prefix + API_ROOT``."""
    app = web.Application(client_max_size=MAX_BODY)
    root = ("/" + prefix.strip("/") if prefix.strip("/") else "") + API_ROOT
    handlers.url_prefix = root[: -len(API_ROOT)]
    for route in ROUTES:
        app.router.add_route(route.method, root + route.path, _make_handler(route, handlers))
        if route.path != "/" and not route.path.endswith("}"):
            app.router.add_route(route.method, root + route.path + "/", _make_handler(route, handlers))

    async def not_found(request: web.Request) -> web.Response:
        return json_response({"error": f"no such API route: {request.method} {request.path}"}, 404)

    app.router.add_route("*", root + "/{tail:.*}", not_found)
    return app
