"""The error a route handler raises to answer with an HTTP status and ``{"error": message}``.

Its own module so that :mod:`.handlers` and :mod:`.ui_routes` both use it without importing
each other.
"""
from __future__ import annotations


class ApiError(Exception):
    """Answered with HTTP ``status`` and ``{"error": message}`` (one line, naming the field)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)
