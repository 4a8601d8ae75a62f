"""Standalone trial channel: the trial runs without an experiment (``python3 mnist.py``)."""
from __future__ import annotations

import json

from ..env_vars import TrialEnv


class StandaloneChannel:
    """``get_next_parameter()`` gives ``{}``; reported metrics are printed on stdout."""

    def __init__(self, env: TrialEnv):
        self.env = env

    def get_parameter(self, index: int, wait: bool = False) -> dict | None:
        return {"parameter_id": None, "parameter_source": "standalone", "parameters": {}, "parameter_index": index}

    def request_parameter(self, index: int) -> None:
        pass

    def send_metric(self, record: dict) -> None:
        value = json.loads(record["value"])
        if record["type"] == "FINAL":
            print(f"[nni standalone] Final result: {value}", flush=True)
        elif record["type"] == "PERIODICAL":
            print(f"[nni standalone] Intermediate result: {value}  (Index {record['sequence']})", flush=True)
