"""File trial channel (local mode, and remote modes whose training service copies files).

* Parameters: ``$NNI_SYS_DIR/parameter.cfg``, one JSON line per parameter set
  ``{"parameter_id", "parameter_source", "parameters", "parameter_index"}``. Line with
  ``parameter_index`` i (or the i-th line when lines carry no index) is the i-th set. The
  training service writes the file before starting the trial; a multi-phase trial appends a
  ``REQUEST_PARAMETER`` record to its metrics and waits until the line for the next index
  appears (``"parameters": null`` there means the tuner has nothing more).
* Metrics: appended to ``$NNI_OUTPUT_DIR/.nni/metrics`` with the ME framing of
  :mod:`nni.runtime.trial_metrics`, one ``write`` per record (``O_APPEND``), no ``fsync``: a
  record whose ``write`` returned is in the kernel's page cache, read by the training service
  and kept whatever process dies (``kill -9`` of the trial or of the manager). That is the
  guarantee of the experiment store too (SQLite WAL, ``synchronous=NORMAL``: no fsync per
  commit); an ``fsync`` per record only added power-loss durability the store does not have, at
  ~5-20 ms of a trial's wall time per record on a busy disk.
"""
from __future__ import annotations

import os
import time

from .. import json_lite as json  # json's own C parser without `import json` (see json_lite)
from ..env_vars import TrialEnv
from ..trial_metrics import encode_metric_record

PARAMETER_FILE = "parameter.cfg"
METRICS_FILE = os.path.join(".nni", "metrics")


def read_parameter_file(path: str) -> list[dict]:
    """Every complete JSON line of a ``parameter.cfg``."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    *complete, tail = text.split("\n")
    records = [json.loads(line) for line in complete if line.strip()]
    if tail.strip():  # no newline yet: a line being written, or a file written without one
        try:
            records.append(json.loads(tail))
        except ValueError:  # json.JSONDecodeError
            pass
    return records


def append_metric_file(path: str, data: bytes) -> None:
    """Append ``data`` with one ``write`` (O_APPEND); its folder is created when missing.

    No ``fsync`` (see the module docstring): the record survives the death of any process."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    try:
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fd = os.open(path, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)


def append_parameter_line(path: str, record: dict | str) -> None:
    """Add one parameter set to a ``parameter.cfg`` (training-service side).

    ``record`` is the ``TR`` / ``SP`` payload string of the dispatcher (written as is) or the
    record dict. One ``write`` per line, so the trial never reads half a line as complete.
    """
    line = record if isinstance(record, str) else json.dumps(record)
    if "\n" in line:
        line = json.dumps(json.loads(line))  # pretty-printed JSON from a custom advisor
    append_metric_file(path, (line + "\n").encode("utf-8"))


class FileChannel:
    poll_interval = 0.1

    def __init__(self, env: TrialEnv):
        self.env = env
        if not env.sys_dir and not env.output_dir:
            raise RuntimeError(f"NNI_PLATFORM={env.platform} but NNI_SYS_DIR / NNI_OUTPUT_DIR are not set")
        self.parameter_path = os.path.join(env.sys_dir or env.output_dir, PARAMETER_FILE)
        self.metrics_path = os.path.join(env.output_dir or env.sys_dir, METRICS_FILE)

    def get_parameter(self, index: int, wait: bool = False) -> dict | None:
        while True:
            records = read_parameter_file(self.parameter_path)
            for pos, rec in enumerate(records):
                if rec.get("parameter_index", pos) == index:
                    return rec
            if not wait:
                return None
            time.sleep(self.poll_interval)

    def request_parameter(self, index: int) -> None:
        from ..trial_metrics import make_metric_record

        record = make_metric_record(None, self.env.trial_job_id, "REQUEST_PARAMETER", 0, "", parameter_index=index)
        self.send_metric(record)

    def send_metric(self, record: dict) -> None:
        append_metric_file(self.metrics_path, encode_metric_record(record))
