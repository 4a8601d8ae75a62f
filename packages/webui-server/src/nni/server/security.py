"""Who may talk to the manager: an access token on every address, a Host check, no CORS.

As in Jupyter, every manager requires an access token, on every route (API and web UI): the
one given (``$NNI_ACCESS_TOKEN``, which nnictl and ``Experiment.start()`` set, or
``--access-token``) or a new one that is printed once. It is kept in the experiment's folder
(``access_token``, mode 0600: :mod:`nni.runtime.access`), where local clients find it. A
request carries it as ``Authorization: Bearer <token>``, as ``?token=<token>`` (a browser
opening the printed URL: a page request is answered with an HttpOnly, SameSite=Strict cookie
and a redirect to the clean URL, so the UI's own requests carry it), or as that cookie.
``--no-token`` (``$NNI_NO_TOKEN=1``) turns it off, on a loopback bind only.

The ``Host`` header must name the manager: ``127.0.0.1``, ``localhost``, ``[::1]``, the bound
address, and for other binds the machine's host name and (bound to ``0.0.0.0``) its
addresses. Anything else is refused with 403, so a DNS-rebinding page cannot drive the API.

CORS is closed: no ``Access-Control-Allow-*`` header is ever sent, so another web site's
script cannot read an answer; and a state-changing request (POST / PUT / DELETE) whose
``Origin`` is not the manager's own is refused, so such a site cannot trigger one either.
"""
from __future__ import annotations

import hmac
import socket
from typing import Awaitable, Callable, Optional
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from nni.runtime.access import DEFAULT_HOST, check_no_token, is_loopback, local_addresses, new_token

COOKIE = "nni_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def requires_token(host: str, no_token: bool = False) -> bool:
    """True unless ``no_token`` was asked for a loopback bind (``ValueError`` off loopback)."""
    if no_token:
        check_no_token(host)
        return False
    return True


def resolve_token(host: str, given: Optional[str], no_token: bool = False) -> Optional[str]:
    """The token the manager checks: ``given``, else a new one; ``None`` with ``no_token``."""
    if not requires_token(host, no_token):
        return None
    return given or new_token()


def cookie_name(port: Optional[int]) -> str:
    """Cookies ignore ports: one name per port, so two managers of one host keep their own."""
    return f"{COOKIE}_{port}" if port else COOKIE


def allowed_hosts(host: str) -> frozenset[str]:
    """Names a request's ``Host`` header may give for a manager bound to ``host``."""
    host = (host or DEFAULT_HOST).strip().strip("[]").lower()
    names = {"127.0.0.1", "localhost", "::1", host}
    if not is_loopback(host):
        try:
            names.add(socket.gethostname().lower())
        except OSError:
            pass
        if host in ("0.0.0.0", "", "::"):
            names.update(local_addresses())
    return frozenset(names)


def host_name(header: str) -> str:
    """``'[::1]:8080'`` -> ``'::1'``, ``'Example:80'`` -> ``'example'``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


def request_token(request: web.Request, port: Optional[int] = None) -> Optional[str]:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if request.headers.get("X-NNI-Token"):
        return request.headers["X-NNI-Token"].strip()
    if "token" in request.query:
        return request.query["token"]
    return request.cookies.get(cookie_name(port))


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


def _clean_url(request: web.Request) -> str:
    rest = [(k, v) for k, v in request.query.items() if k != "token"]
    return request.path + ("?" + urlencode(rest) if rest else "")


def security_middleware(token: Optional[str], host: str = DEFAULT_HOST, port: Optional[int] = None, api_prefix: str = "/api/") -> Callable:
    """The aiohttp middleware: Host check, token check (if ``token``), origin check, no CORS."""
    allowed = allowed_hosts(host)
    cookie = cookie_name(port)

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        given_host = request.headers.get("Host")
        if given_host is not None and host_name(given_host) not in allowed:
            return _json_error(403, f"Host header {given_host!r} does not name this manager; "
                                    f"use one of: {', '.join(sorted(allowed))}")
        if token is not None:
            supplied = request_token(request, port)
            if supplied is None or not hmac.compare_digest(supplied.encode(), token.encode()):
                return _json_error(401, "access token required: open the URL printed by nnictl / Experiment.start() "
                                        "(…/?token=<token>, also 'nnictl webui url') or send 'Authorization: Bearer <token>'")
        if request.method not in _SAFE_METHODS:
            origin = request.headers.get("Origin")
            if origin and origin != "null" and not _same_origin(request, origin):
                return _json_error(403, f"cross-origin request from {origin} refused (CORS is closed)")
            if origin == "null":
                return _json_error(403, "cross-origin request from an opaque origin refused (CORS is closed)")
        if request.method == "OPTIONS":  # a CORS preflight: answer without any Allow-* header
            return web.Response(status=403, text="CORS is closed")
        if token is not None and request.method == "GET" and "token" in request.query and api_prefix not in request.path:
            # A browser opening the printed URL: keep the token in a cookie, out of the address bar.
            response = web.Response(status=302, headers={"Location": _clean_url(request)})
            response.set_cookie(cookie, token, httponly=True, samesite="Strict", path="/")
            return response
        return await handler(request)

    return middleware
