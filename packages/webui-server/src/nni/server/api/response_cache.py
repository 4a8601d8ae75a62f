"""Serialized answers of the big read routes, reused while the store has not changed.

The web UI polls ``trial-jobs`` and ``metric-data-latest`` every few seconds; with 10,000
trials these answers are megabytes of JSON. The cache keeps the encoded text per (route,
query) and reuses it as long as the store's SQLite connection reports no change: its own
``total_changes`` (writes by the manager) and ``PRAGMA data_version`` (commits by any other
connection) are both unchanged. Any write invalidates every entry.
"""
from __future__ import annotations

from typing import Callable, Hashable

from aiohttp import web


class ResponseCache:
    def __init__(self, store) -> None:
        self.store = store
        self._token: tuple = ()
        self._entries: dict[Hashable, bytes] = {}

    def _state(self) -> tuple:
        conn = self.store.db.connection()
        return (conn.total_changes, conn.execute("PRAGMA data_version").fetchone()[0])

    def json(self, key: Hashable, build: Callable[[], str]) -> web.Response:
        """A JSON response with ``build()``'s text, rebuilt only when the store changed."""
        state = self._state()
        if state != self._token:
            self._entries.clear()
            self._token = state
        body = self._entries.get(key)
        if body is None:
            body = build().encode("utf-8")
            self._entries[key] = body
        return web.Response(body=body, content_type="application/json")
