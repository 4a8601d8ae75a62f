"""Resume: what a resumed experiment replays to its tuner and does with unfinished trials.

The finished trials of earlier runs (and imported data) are replayed to the new dispatcher
(:func:`replay_data`).

For each trial still WAITING or RUNNING in the store (the manager was stopped by a crash or
``kill -9``):

1. metric records the trial wrote after the manager died are read from its
   ``.nni/metrics`` and added to the store (none is lost);
2. if the trial finished meanwhile (its ``.nni/state`` holds ``<exit code> <epoch ms>``) it is
   recorded as SUCCEEDED / FAILED with that time;
3. otherwise its process group is killed (if still alive) and it becomes SYS_CANCELED with a
   message saying why (the local platform's trials stop by themselves within seconds of their
   manager's death and leave ``.nni/manager_died``, whose time becomes the end time); it no
   longer counts toward ``maxTrialNumber`` and its parameters are re-queued as a new trial,
   unless it had already reported its final result: then that result is its outcome (kept,
   counted, replayed to the tuner) and nothing is re-run.

Trials the previous manager itself cancelled because the experiment's dispatcher had died
(event ``REQUEUE`` in the store, see the scheduler) are re-queued the same way, once; so are
trials their platform lost (``StateEvent.requeue``) whose re-run the previous manager had not
created yet (no ``REQUEUED`` event).
"""
from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import Optional

from nni.runtime.states import UNFINISHED_STATES
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


MANAGER_DIED_FILE = "manager_died"  # nni.training_services.local writes it (no import: no dependency)
REQUEUE_EVENT = "REQUEUE"  # this trial's parameters are to be run again by the next resume
REQUEUED_EVENT = "REQUEUED"


def _first_int(path: Optional[Path]) -> Optional[int]:
    try:
        return int(path.read_text().split()[0])
    except (AttributeError, OSError, ValueError, IndexError):
        return None


def _state_time(path: Path) -> int:
    try:
        return int(path.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _has_final(store: ExperimentStore, trial_id: str) -> bool:
    m = store.m.Metric
    return m.select().where((m.trial_id == trial_id) & (m.type == "FINAL")).exists()


def _pending_requeues(store: ExperimentStore) -> list[str]:
    rows = store.db.connection().execute(
        "SELECT DISTINCT trial_id FROM trial_event WHERE event = ? AND trial_id NOT IN"
        " (SELECT trial_id FROM trial_event WHERE event = ?)",
        (REQUEUE_EVENT, REQUEUED_EVENT),
    ).fetchall()
    return [r[0] for r in rows]


def replay_data(store: ExperimentStore) -> list[dict]:
    """Finished trials of earlier runs and imported data, as ``FD`` items for the tuner of a
    resumed experiment (``parameter_id`` keeps ids unique)."""
    items = []
    finals: dict[str, dict] = {}
    for rec in store.metric_data(metric_type="FINAL"):
        finals.setdefault(rec["trialJobId"], rec)
    for row in store.trial_rows():
        rec = finals.get(row.trial_id)
        if rec is None:
            continue
        try:
            packed = json.loads(row.parameter)
        except ValueError:
            continue
        try:
            value = json.loads(rec["data"])
        except ValueError:
            value = rec["data"]
        items.append({"parameter": packed.get("parameters"), "value": value, "parameter_id": packed.get("parameter_id"), "trial_job_id": row.trial_id})
    items.extend(store.imported_data())
    return items


def recover_interrupted_trials(store: ExperimentStore, logger: logging.Logger) -> list[str]:
    """Settle unfinished trials (see the module doc); returns parameter strings to re-queue."""
    requeue = []
    for trial_id in _pending_requeues(store):
        row = store.trial_row(trial_id)
        if row is not None and row.status == "SYS_CANCELED" and not row.counted:
            requeue.append(row.parameter)
            logger.info("Trial %s was cancelled when the dispatcher died: re-queued", trial_id)
        store.add_event(trial_id, REQUEUED_EVENT, now_ms())
    for row in store.trial_rows():
        if row.status not in UNFINISHED_STATES:
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
        died_file = trial_dir / ".nni" / MANAGER_DIED_FILE if trial_dir is not None else None
        died_ms = _first_int(died_file)
        if row.status == "RUNNING" and state_file is not None and state_file.exists() and (
            died_ms is None or _state_time(state_file) < died_ms  # an exit caused by the watcher is not the trial's
        ):
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
        end = now_ms()
        if row.status == "RUNNING" and died_ms is not None:
            end = died_ms
            message = "manager died: the trial was stopped when its manager exited unexpectedly (crash or kill -9)"
        else:
            message = "manager died: the manager stopped while this trial was " + row.status.lower()
        if row.status == "RUNNING" and _has_final(store, row.trial_id):
            # the result the trial was run for exists: keep it (counted, replayed to the tuner)
            store.trial_state(row.trial_id, "SYS_CANCELED", end, message + "; its final result is kept")
            logger.info("Trial %s was interrupted after its final result: SYS_CANCELED, result kept", row.trial_id)
            continue
        store.trial_state(row.trial_id, "SYS_CANCELED", end, message + "; its parameters were re-queued", counted=False)
        requeue.append(row.parameter)
        logger.info("Trial %s was interrupted (%s): SYS_CANCELED, re-queued", row.trial_id, row.status)
    return requeue
