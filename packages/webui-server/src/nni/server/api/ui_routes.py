"""Handlers of the routes the web UI adds: trial files, TensorBoard tasks, the OpenAPI document
and ``POST /experiment``. Mixed into :class:`~nni.server.api.handlers.RestHandlers`, so they use
its ``store``, ``engine`` and ``experiment_id``. This module never imports ``handlers`` (the
error type both raise is in :mod:`.errors`): the import graph has no cycle.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from aiohttp import web

from nni.runtime.rest_api import TRIAL_FILES
from nni.runtime.rest_openapi import openapi_document

from ..tensorboard import TensorboardManager
from .errors import ApiError

_TEXT_FILES = {"trial.log", "stderr", "stdout"}


def trial_file_path(trial_dir: str | os.PathLike, filename: str) -> Path:
    """``trial_dir / filename`` for an allowed file name, never a path outside ``trial_dir``.

    Raises:
        ValueError: ``filename`` is not one of :data:`TRIAL_FILES` (``../x``, ``/etc/passwd`` ...).
        FileNotFoundError: the file does not exist, or resolves (symlink) outside ``trial_dir``.
    """
    if filename not in TRIAL_FILES:
        raise ValueError(f"filename: must be one of {', '.join(TRIAL_FILES)}, got {filename!r}")
    root = Path(trial_dir).resolve()
    path = (root / filename).resolve()
    try:
        path.relative_to(root)
    except ValueError:
        raise FileNotFoundError(f"{filename} leads outside the trial directory") from None
    if not path.is_file():
        raise FileNotFoundError(f"{filename} does not exist in the trial directory (yet)")
    return path


class UiRouteHandlers:
    """Route handlers for the web UI's extra routes (see :data:`nni.runtime.rest_api.ROUTES`)."""

    #: The URL prefix the app was built with (set by :func:`~nni.server.api.rest_server.build_app`), for the OpenAPI document's server URL.
    url_prefix = ""
    _tensorboard: Optional[TensorboardManager] = None

    # ----- helpers -----

    def _experiment_dir(self) -> Path:
        return Path(self.store.experiment_row().log_dir)  # type: ignore[attr-defined]

    def _trial_row(self, trial_id: str):
        row = self.store.trial_row(trial_id)  # type: ignore[attr-defined]
        if row is None:
            raise ApiError(404, f"trial {trial_id!r} not found")
        return row

    def _trial_dir(self, row) -> Path:
        exp_dir = self._experiment_dir().resolve()
        trial_dir = Path(row.working_directory or exp_dir / "trials" / row.trial_id).resolve()
        try:  # a trial directory recorded outside the experiment folder is not served
            trial_dir.relative_to(exp_dir)
        except ValueError:
            raise ApiError(404, f"trial {row.trial_id!r}: its directory is outside the experiment folder") from None
        return trial_dir

    @property
    def tensorboard(self) -> TensorboardManager:
        if self._tensorboard is None:
            self._tensorboard = TensorboardManager(self._experiment_dir() / "log")
        return self._tensorboard

    # ----- routes -----

    async def start_experiment(self, body: dict, **_: Any) -> dict:
        return {"experiment_id": self.experiment_id}  # type: ignore[attr-defined]

    async def get_trial_file(self, id: str, filename: str, **_: Any) -> web.StreamResponse:
        if filename not in TRIAL_FILES:
            raise ApiError(400, f"filename: must be one of {', '.join(TRIAL_FILES)}, got {filename!r}")
        row = self._trial_row(id)
        try:
            path = trial_file_path(self._trial_dir(row), filename)
        except FileNotFoundError as err:
            raise ApiError(404, f"trial {id!r}: {err}") from None
        if filename in _TEXT_FILES:
            return web.FileResponse(path, headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache"})
        return web.FileResponse(path, headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{id}-{filename}"',
        })

    async def start_tensorboard(self, body: dict, **_: Any) -> dict:
        ids = [t.strip() for t in body["trials"].split(",") if t.strip()]
        if not ids:
            raise ApiError(400, "body.trials: give at least one trial id (comma-separated)")
        trials = []
        for tid in ids:
            row = self._trial_row(tid)
            trials.append((row.trial_id, row.sequence_id, str(self._trial_dir(row))))
        try:
            return await self.tensorboard.start(trials)
        except RuntimeError as err:
            raise ApiError(400, str(err)) from None

    async def get_tensorboard(self, id: str, **_: Any) -> dict:
        info = self.tensorboard.get(id)
        if info is None:
            raise ApiError(404, f"TensorBoard task {id!r} not found")
        return info

    async def restart_tensorboard(self, id: str, **_: Any) -> dict:
        try:
            info = await self.tensorboard.restart(id)
        except RuntimeError as err:
            raise ApiError(400, str(err)) from None
        if info is None:
            raise ApiError(404, f"TensorBoard task {id!r} not found")
        return info

    async def stop_tensorboard(self, id: str, **_: Any) -> dict:
        info = await self.tensorboard.stop(id)
        if info is None:
            raise ApiError(404, f"TensorBoard task {id!r} not found")
        return info

    async def list_tensorboard_tasks(self, **_: Any) -> list:
        return self.tensorboard.list()

    async def stop_all_tensorboards(self, **_: Any) -> list:
        return await self.tensorboard.stop_all()

    async def get_openapi(self, **_: Any) -> dict:
        import nni

        return openapi_document(nni.__version__, self.url_prefix)
