"""Random identifiers (experiment and trial ids).

Drawn from the operating system's generator, never from the ``random`` module: user code and
tuners seed ``random`` (``random.seed(0)`` in a script that starts two experiments), and ids
drawn from it would then repeat.
"""
from __future__ import annotations

import secrets
import string

__all__ = ["random_id", "EXPERIMENT_ID_CHARS"]

EXPERIMENT_ID_CHARS = string.ascii_lowercase + string.digits


def random_id(length: int = 8, alphabet: str = EXPERIMENT_ID_CHARS) -> str:
    """``length`` characters drawn uniformly from ``alphabet``."""
    return "".join(secrets.choice(alphabet) for _ in range(length))
