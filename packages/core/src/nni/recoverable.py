"""Checkpoint hooks shared by tuners, assessors and advisors."""
from __future__ import annotations

import os


class Recoverable:
    """Mixin with checkpoint hooks.

    ``load_checkpoint`` / ``save_checkpoint`` are "internal API under revising" in NNI v2.5 and
    do nothing by default; resuming an experiment replays finished trials through
    ``import_data`` instead. An algorithm that wants its own state files keeps them in
    :meth:`get_checkpoint_path` (``$NNI_CHECKPOINT_DIRECTORY``, set by the manager to a folder
    of the experiment).
    """

    def load_checkpoint(self) -> None:
        """Restore state from :meth:`get_checkpoint_path`; no-op by default."""

    def save_checkpoint(self) -> None:
        """Save state to :meth:`get_checkpoint_path`; no-op by default."""

    def get_checkpoint_path(self) -> str | None:
        """``$NNI_CHECKPOINT_DIRECTORY`` (created if missing), or ``None`` when not set."""
        ckp_path = os.getenv("NNI_CHECKPOINT_DIRECTORY")
        if ckp_path:
            os.makedirs(ckp_path, exist_ok=True)
            return ckp_path
        return None
