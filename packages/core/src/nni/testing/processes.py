"""Process checks shared by tests that kill managers, runners and trials."""
from __future__ import annotations

from pathlib import Path


def process_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (Linux ``/proc``); a zombie left to a non-reaping init
    counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")
