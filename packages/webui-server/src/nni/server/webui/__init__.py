"""The web UI: static pages served by the manager, plus the experiment's log files.

:func:`setup` is the manager's hook (``Manager._extend_app``): it adds the access-token /
CORS middleware (:mod:`nni.server.security`), the UI pages and ``/logs/{name}``.

The UI is plain ES modules and one stylesheet shipped as package data; plotly.js is not
copied into this package: ``static/vendor/plotly.min.js`` is answered with the bundle that
the installed ``plotly`` Python package ships (``plotly/package_data/plotly.min.js``).
Nothing is loaded from the internet.

Pages are answered at ``/``, ``/oview``, ``/detail`` and ``/experiment`` (NNI's paths) under the
optional URL prefix; ``index.html``'s ``<base href>`` is set to the prefix so every relative
URL of the UI (static files, ``api/v1/nni/...``, ``logs/...``) follows it.
"""
from __future__ import annotations

import importlib.util
import logging
import mimetypes
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from aiohttp import web

from ..security import requires_token, resolve_token, security_middleware
from ..tensorboard import stop_every_task

_logger = logging.getLogger("nni.server.webui")

WEBUI_DIR = Path(__file__).resolve().parent
PAGES = ("", "oview", "detail", "experiment")
#: Log files of ``<experiment dir>/log/`` the UI may show and download.
LOG_FILES = ("nnimanager.log", "dispatcher.log", "nnictl_stdout.log", "nnictl_stderr.log")

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")


def plotly_bundle() -> Optional[Path]:
    """Path of plotly.js inside the installed ``plotly`` package (found without importing it)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    return None


def confined(root: Path, relative: str) -> Optional[Path]:
    """``root / relative`` if it stays inside ``root`` (no ``..``, no absolute path), else ``None``."""
    if not relative or relative.startswith(("/", "\\")) or "\x00" in relative:
        return None
    parts = relative.replace("\\", "/").split("/")
    if any(p in ("", ".", "..") for p in parts) or os.path.isabs(relative) or (len(relative) > 1 and relative[1] == ":"):
        return None
    root = root.resolve()
    path = (root / relative).resolve()
    try:
        path.relative_to(root)
    except ValueError:  # a symlink pointing out of root
        return None
    return path


def _index_html(prefix: str) -> str:
    html = (WEBUI_DIR / "index.html").read_text(encoding="utf-8")
    return html.replace('<base href="/">', f'<base href="{prefix}/">', 1)


def add_webui_routes(app: web.Application, prefix: str = "", log_dir: Optional[Callable[[], Optional[Path]]] = None) -> None:
    """Add the UI pages, its static files and ``/logs/{name}`` to ``app``.

    Args:
        app: the manager's application.
        prefix: URL prefix (``""`` or ``"/nni"``), without a trailing slash.
        log_dir: returns the experiment's ``log/`` folder (``None`` while unknown).
    """
    static_root = WEBUI_DIR / "static"

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=_index_html(prefix), content_type="text/html", headers={"Cache-Control": "no-cache"})

    async def static(request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        if rel == "vendor/plotly.min.js":
            bundle = plotly_bundle()
            if bundle is None:
                return web.Response(status=404, text="plotly is not installed: pip install plotly")
            return web.FileResponse(bundle, headers={"Cache-Control": "public, max-age=86400", "Content-Type": "text/javascript"})
        path = confined(static_root, rel)
        if path is None or not path.is_file():
            raise web.HTTPNotFound(text=f"no static file {rel!r}")
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return web.FileResponse(path, headers={"Cache-Control": "no-cache", "Content-Type": ctype})

    async def logs(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        folder = log_dir() if log_dir else None
        if name not in LOG_FILES or folder is None:
            raise web.HTTPNotFound(text=f"no log file {name!r}; log files: {', '.join(LOG_FILES)}")
        path = Path(folder) / name
        if not path.is_file():
            raise web.HTTPNotFound(text=f"{name} does not exist yet")
        return web.FileResponse(path, headers={"Cache-Control": "no-cache", "Content-Type": "text/plain; charset=utf-8"})

    for name in PAGES:
        app.router.add_get(f"{prefix}/{name}", page)
    if prefix:
        app.router.add_get(prefix, page)
    app.router.add_get(prefix + "/static/{path:.+}", static)
    app.router.add_get(prefix + "/logs/{name}", logs)

    async def unknown_api(request: web.Request) -> web.Response:
        return web.json_response({"error": f"no such API route: {request.method} {request.path}"}, status=404)

    # After the REST API's own routes: any other /api/... path is a JSON 404 (never the UI page).
    app.router.add_route("*", prefix + "/api/{tail:.*}", unknown_api)


def normalize_prefix(prefix: Optional[str]) -> str:
    """``"nni/"`` → ``"/nni"``; ``""`` / ``"/"`` → ``""``."""
    prefix = (prefix or "").strip().strip("/")
    return "/" + prefix if prefix else ""


def setup(app: web.Application, manager: Any) -> Optional[str]:
    """Add security, the UI and log routes to the manager's ``app``; returns the access token (or None).

    The token is the one given (``manager.options.access_token`` or ``$NNI_ACCESS_TOKEN``), or
    a new one when the manager binds anything but 127.0.0.1; a new token is printed once.
    """
    options = manager.options
    host = getattr(options, "host", "127.0.0.1") or "127.0.0.1"
    given = getattr(options, "access_token", None) or os.environ.get("NNI_ACCESS_TOKEN") or None
    token = resolve_token(host, given)
    app.middlewares.append(security_middleware(token))
    prefix = normalize_prefix(getattr(options, "url_prefix", ""))
    if token is not None and not given:
        url = f"http://{host}:{options.port}{prefix}/oview?token={token}"
        print(f"NNI access token (the manager is bound to {host}): {token}\nWeb UI: {url}", flush=True)
        _logger.info("Manager bound to %s: an access token is required on every route", host)
    elif requires_token(host):
        _logger.info("Manager bound to %s: the given access token is required on every route", host)

    def log_dir() -> Optional[Path]:
        store = getattr(manager, "store", None)
        if store is None:
            return None
        try:
            return Path(store.experiment_row().log_dir) / "log"
        except Exception:  # the store is not created yet
            return None

    add_webui_routes(app, prefix, log_dir)

    async def cleanup(_app: web.Application) -> None:
        await stop_every_task()

    app.on_cleanup.append(cleanup)
    return token
