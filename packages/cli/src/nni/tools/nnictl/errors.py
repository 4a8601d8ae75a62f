"""The one error type that nnictl commands raise for users."""
from __future__ import annotations


class NnictlError(Exception):
    """A user-facing failure: printed as one ``ERROR: ...`` line, exit code ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code
