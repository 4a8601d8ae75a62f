"""What a resumed experiment does with trials its previous manager left unfinished.

For each trial still WAITING or RUNNING in the store (the manager was stopped by a crash or
``kill -9``):

1. metric records the trial wrote after the manager died are read from its
   ``.nni/metrics`` and added to the store (none is lost);
2. if the trial finished meanwhile (its ``.nni/state`` holds ``<exit code> <epoch ms>``) it is
   recorded as SUCCEEDED / FAILED with that time;
3. otherwise its process group is killed (if still alive) and it becomes SYS_CANCELED with a
   message; it no longer counts toward ``maxTrialNumber`` and its parameters are re-queued
   as a new trial.
"""
from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path

from nni.runtime.training_service import now_ms
from nni.runtime.trial_metrics import MetricFormatError, MetricRecordReader

from .store import ExperimentStore


def _read_records(path: Path) -> list[dict]:
    try:
        data = path.read_bytes()
    except OSError:
        return []
    reader = MetricRecordReader()
    try:
        return list(reader.feed(data))  # an incomplete last record is left out
    except MetricFormatError:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def recover_interrupted_trials(store: ExperimentStore, logger: logging.Logger) -> list[str]:
    """Settle unfinished trials (see the module doc); returns parameter strings to re-queue."""
    requeue = []
    for row in store.trial_rows():
        if row.status not in ("WAITING", "RUNNING", "UNKNOWN"):
            continue
        trial_dir = Path(row.working_directory) if row.working_directory else None
        if trial_dir is not None:
            stored = store.m.Metric.select().where(store.m.Metric.trial_id == row.trial_id).count()
            records = _read_records(trial_dir / ".nni" / "metrics")
            missing = records[stored:]
            if missing:
                t = now_ms()
                store.add_metrics(
                    {
                        "trial_id": row.trial_id,
                        "parameter_id": None if r.get("parameter_id") is None else str(r.get("parameter_id")),
                        "type": r.get("type", "PERIODICAL"),
                        "sequence": int(r.get("sequence") or 0),
                        "data": r.get("value") if isinstance(r.get("value"), str) else json.dumps(r.get("value")),
                        "timestamp": t,
                    }
                    for r in missing
                    if r.get("type") != "REQUEST_PARAMETER"
                )
                logger.info("Trial %s: recovered %d metric record(s) written while the manager was down", row.trial_id, len(missing))
        state_file = trial_dir / ".nni" / "state" if trial_dir is not None else None
        if row.status == "RUNNING" and state_file is not None and state_file.exists():
            try:
                code_text, ms_text = state_file.read_text().split()[:2]
                code, end = int(code_text), int(ms_text)
            except (ValueError, OSError):
                code, end = 1, now_ms()
            status = "SUCCEEDED" if code == 0 else "FAILED"
            message = "" if code == 0 else f"exit code {code}"
            store.trial_state(row.trial_id, status, end, message, code)
            logger.info("Trial %s finished while the manager was down: %s", row.trial_id, status)
            continue
        if row.status == "RUNNING" and row.pid and _alive(row.pid):
            _kill_group(row.pid)
        message = "the manager stopped while this trial was " + row.status.lower() + "; its parameters were re-queued"
        store.trial_state(row.trial_id, "SYS_CANCELED", now_ms(), message, counted=False)
        requeue.append(row.parameter)
        logger.info("Trial %s was interrupted (%s): SYS_CANCELED, re-queued", row.trial_id, row.status)
    return requeue
