"""Capture what a tuner/advisor sends through the dispatcher protocol, in-process."""
from __future__ import annotations

import json
from typing import Any


class CommandRecorder:
    """Replace ``dispatcher.send`` with a recorder and feed it commands directly (no pipes).

    ``sent`` holds ``(command code, data)`` pairs, e.g. ``("TR", '{"parameter_id": 0, ...}')``.
    """

    def __init__(self, dispatcher: Any):
        self.dispatcher = dispatcher
        self.sent: list[tuple[str, str]] = []
        dispatcher.send = lambda command, data="": self.sent.append((command.value.decode(), data))

    def command(self, command: Any, payload: Any) -> None:
        """Process one ``CommandType``; a non-string ``payload`` is sent as JSON."""
        self.dispatcher.process_command(command, payload if isinstance(payload, str) else json.dumps(payload))

    def take(self, code: str = "TR") -> list:
        """Remove and return what was sent with ``code`` (``TR``/``SP`` payloads decoded from JSON)."""
        out = [json.loads(d) if code in ("TR", "SP") else d for c, d in self.sent if c == code]
        self.sent = [(c, d) for c, d in self.sent if c != code]
        return out
