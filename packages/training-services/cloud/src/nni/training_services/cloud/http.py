"""A small JSON-over-HTTP client with one-line errors (OpenPAI, PAI-DLC and DLTS use it)."""
from __future__ import annotations

import asyncio
import json
from typing import Any, Optional

from .base import CloudApiError

__all__ = ["HttpClient"]


class HttpClient:
    """``await client.request("GET", url)`` -> the decoded JSON answer (or text).

    Errors raise :class:`~.base.CloudApiError` naming the service, the request and the
    service's own message; network faults and 5xx answers are ``retryable``. ``secrets``: strings
    never to show in an error (tokens, keys)."""

    def __init__(self, service: str, timeout: float = 30.0, secrets: tuple = ()) -> None:
        self.service = service
        self.timeout = timeout
        self.secrets = tuple(s for s in secrets if s)
        self._session = None

    async def _get_session(self):
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    def _hide(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    async def request(self, method: str, url: str, *, headers: Optional[dict] = None, data: Any = None,
                      json_body: Any = None, what: str = "") -> Any:
        import aiohttp

        session = await self._get_session()
        label = what or f"{method} {url.split('?')[0]}"
        body = json.dumps(json_body).encode() if json_body is not None else data
        hdrs = dict(headers or {})
        if json_body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        try:
            async with session.request(method, url, headers=hdrs, data=body) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            detail = str(err) or type(err).__name__
            raise CloudApiError(self._hide(f"{self.service}: {label}: cannot reach the service ({detail})"), retryable=True) from None
        try:
            answer = json.loads(text) if text.strip() else None
        except ValueError:
            answer = text
        if status >= 400:
            message = answer
            if isinstance(answer, dict):
                message = answer.get("message") or answer.get("Message") or answer.get("error") or answer.get("code") or answer
            message = " ".join(str(message).split())[:300]
            raise CloudApiError(self._hide(f"{self.service}: {label}: HTTP {status}: {message}"), retryable=status >= 500 or status == 429,
                                status=status)
        return answer

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
