"""The REST API of the manager, registered from :data:`nni.runtime.rest_api.ROUTES`."""
from __future__ import annotations

from .errors import ApiError
from .handlers import RestHandlers
from .rest_server import build_app

__all__ = ["ApiError", "RestHandlers", "build_app"]
