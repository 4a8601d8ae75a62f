"""Who may talk to the manager: loopback by default, an access token off loopback, no CORS.

The manager binds ``127.0.0.1`` unless told otherwise. Binding any other address (even
another loopback address such as ``127.0.0.2``) requires an access token: the one given
(``--access-token`` / ``$NNI_ACCESS_TOKEN``) or a random one that is printed once. The token
is then checked on every route, the API and the web UI alike: as ``Authorization: Bearer
<token>``, as ``?token=<token>`` (a browser opening the printed URL; the answer sets an
HttpOnly, SameSite=Strict cookie so the UI's own requests carry it), or as that cookie.

CORS is closed: no ``Access-Control-Allow-*`` header is ever sent, so another web site's
script cannot read an answer; and a state-changing request (POST / PUT / DELETE) whose
``Origin`` is not the manager's own is refused, so such a site cannot trigger one either.
"""
from __future__ import annotations

import hmac
import secrets
from typing import Awaitable, Callable, Optional
from urllib.parse import urlsplit

from aiohttp import web

DEFAULT_HOST = "127.0.0.1"
COOKIE = "nni_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def requires_token(host: str) -> bool:
    """True unless the manager binds the default address (``127.0.0.1`` / ``localhost``)."""
    return host.strip().lower() not in (DEFAULT_HOST, "localhost")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def resolve_token(host: str, given: Optional[str]) -> Optional[str]:
    """The token the manager checks: ``given``, or a new one when ``host`` needs one, or None."""
    if given:
        return given
    return new_token() if requires_token(host) else None


def request_token(request: web.Request) -> Optional[str]:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if request.headers.get("X-NNI-Token"):
        return request.headers["X-NNI-Token"].strip()
    if "token" in request.query:
        return request.query["token"]
    return request.cookies.get(COOKIE)


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _same_origin(request: web.Request, origin: str) -> bool:
    """The page's origin is this server (directly, or through a proxy that says so)."""
    netloc = urlsplit(origin).netloc.lower()
    if not netloc:
        return False
    hosts = {(request.host or "").lower()}
    forwarded = request.headers.get("X-Forwarded-Host")
    if forwarded:
        hosts.add(forwarded.split(",")[0].strip().lower())
    return netloc in hosts


def security_middleware(token: Optional[str]) -> Callable:
    """The aiohttp middleware: token check (if ``token``), origin check, no CORS headers."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        if token is not None:
            supplied = request_token(request)
            if supplied is None or not hmac.compare_digest(supplied.encode(), token.encode()):
                return _json_error(401, "access token required: this manager is not bound to 127.0.0.1; "
                                        "open the URL with ?token=<token> or send 'Authorization: Bearer <token>'")
        if request.method not in _SAFE_METHODS:
            origin = request.headers.get("Origin")
            if origin and origin != "null" and not _same_origin(request, origin):
                return _json_error(403, f"cross-origin request from {origin} refused (CORS is closed)")
            if origin == "null":
                return _json_error(403, "cross-origin request from an opaque origin refused (CORS is closed)")
        if request.method == "OPTIONS":  # a CORS preflight: answer without any Allow-* header
            return web.Response(status=403, text="CORS is closed")
        response = await handler(request)
        if token is not None and "token" in request.query and request.query["token"] == token:
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    return middleware
