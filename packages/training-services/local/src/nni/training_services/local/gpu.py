"""GPU inventory and per-trial GPU placement for the local training service.

The inventory comes, in this order, from: an explicit JSON file or list given to the service,
the file named by ``$NNI_GPU_INVENTORY``, or ``nvidia-smi``. The JSON is the shape NNI's GPU
metrics collector writes::

    {"gpuCount": 2, "gpuInfos": [{"index": 0, "activeProcessNum": 0}, {"index": 1, "activeProcessNum": 1}]}

(a bare list of ``gpuInfos`` entries is accepted too). ``activeProcessNum`` counts processes
that are not this experiment's trials; with ``useActiveGpu: false`` such GPUs are skipped.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

INVENTORY_ENV = "NNI_GPU_INVENTORY"


@dataclass(frozen=True)
class GpuInfo:
    index: int
    active_process_num: int = 0


def parse_gpu_indices(value: Union[None, int, str, Sequence[int]]) -> Optional[list[int]]:
    """``gpuIndices`` as a list: ``"0,1"`` / ``1`` / ``[0, 1]`` -> ``[0, 1]``; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"gpuIndices: expected a list of ints, an int or a string like '0,1', got {value!r}")
    if isinstance(value, int):
        return [value]
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            return [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"gpuIndices: expected a string like '0,1', got {value!r}") from None
    return [int(v) for v in value]


def _from_json(data) -> list[GpuInfo]:
    infos = data.get("gpuInfos", []) if isinstance(data, dict) else data
    return [GpuInfo(int(g["index"]), int(g.get("activeProcessNum", 0))) for g in infos]


def query_nvidia_smi() -> list[GpuInfo]:
    """GPUs and their count of running compute processes, from ``nvidia-smi``; ``[]`` without one."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        gpus = subprocess.run(
            [exe, "--query-gpu=index,uuid", "--format=csv,noheader"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
        apps = subprocess.run(
            [exe, "--query-compute-apps=gpu_uuid,pid", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    busy: dict[str, int] = {}
    for line in apps.splitlines():
        if "," in line:
            uuid = line.split(",")[0].strip()
            busy[uuid] = busy.get(uuid, 0) + 1
    out = []
    for line in gpus.splitlines():
        if "," not in line:
            continue
        idx, uuid = (p.strip() for p in line.split(",", 1))
        out.append(GpuInfo(int(idx), busy.get(uuid, 0)))
    return out


class GpuInventory:
    """Where the GPU list comes from; :meth:`read` gives the current one."""

    def __init__(self, source: Union[None, str, os.PathLike, list, dict] = None) -> None:
        if source is None and os.environ.get(INVENTORY_ENV):
            source = os.environ[INVENTORY_ENV]
        self._source = source
        self._cache: Optional[tuple[float, list[GpuInfo]]] = None

    @property
    def description(self) -> str:
        if self._source is None:
            return "nvidia-smi" if shutil.which("nvidia-smi") else "nvidia-smi (not found)"
        if isinstance(self._source, (str, os.PathLike)):
            return f"GPU inventory file {self._source}"
        return "the given GPU inventory"

    #: seconds an ``nvidia-smi`` answer is reused (it takes tens of ms and blocks the caller)
    smi_ttl = 5.0

    def read(self) -> list[GpuInfo]:
        if self._source is None:
            now = time.monotonic()
            if self._cache is None or now - self._cache[0] > self.smi_ttl:
                self._cache = (now, query_nvidia_smi())
            return self._cache[1]
        if isinstance(self._source, (str, os.PathLike)):
            return _from_json(json.loads(Path(self._source).read_text(encoding="utf-8")))
        return _from_json(self._source)


class GpuScheduler:
    """Decides which GPUs a trial gets (``trialGpuNumber``, ``gpuIndices``,
    ``maxTrialNumberPerGpu``, ``useActiveGpu``) and keeps the reservations.

    GPUs with fewer trials are preferred, then lower indices ("recently idle" in spirit:
    spread load, reuse the emptiest).
    """

    def __init__(
        self,
        inventory: GpuInventory,
        gpu_indices: Optional[list[int]] = None,
        max_trial_number_per_gpu: int = 1,
        use_active_gpu: Optional[bool] = False,
    ) -> None:
        self.inventory = inventory
        self.gpu_indices = gpu_indices
        self.max_per_gpu = max(1, int(max_trial_number_per_gpu or 1))
        self.use_active_gpu = bool(use_active_gpu)
        self.reservations: dict[int, list[str]] = {}  # gpu index -> trial ids

    def usable(self, gpus: Optional[list[GpuInfo]] = None) -> list[GpuInfo]:
        gpus = self.inventory.read() if gpus is None else gpus
        if self.gpu_indices is not None:
            gpus = [g for g in gpus if g.index in self.gpu_indices]
        return gpus

    def check(self, gpu_number: Optional[int]) -> Optional[str]:
        """The reason a request for ``gpu_number`` GPUs can never be met, or ``None``."""
        if not gpu_number:
            return None
        gpus = self.usable()
        if gpu_number > len(gpus):
            where = f" among gpuIndices {self.gpu_indices}" if self.gpu_indices is not None else ""
            return (
                f"trialGpuNumber: each trial asks for {gpu_number} GPU(s) but only {len(gpus)} GPU(s) exist{where} "
                f"on this machine (source: {self.inventory.description}); lower trialGpuNumber or set gpuIndices"
            )
        return None

    def allocate(self, trial_id: str, gpu_number: int) -> tuple[Optional[list[int]], str]:
        """Reserve ``gpu_number`` GPUs for ``trial_id``: ``(indices, "")`` or ``(None, why it waits)``."""
        gpus = self.usable()
        free, busy_reasons = [], []
        for g in gpus:
            n = len(self.reservations.get(g.index, []))
            if n >= self.max_per_gpu:
                busy_reasons.append(f"GPU {g.index} runs {n}/{self.max_per_gpu} trial(s)")
            elif g.active_process_num > 0 and n == 0 and not self.use_active_gpu:
                busy_reasons.append(f"GPU {g.index} is used by another process (useActiveGpu is false)")
            else:
                free.append((n, g.index))
        if len(free) < gpu_number:
            why = f"waiting for {gpu_number} free GPU(s), {len(free)} available"
            if busy_reasons:
                why += ": " + "; ".join(busy_reasons)
            return None, why
        chosen = sorted(idx for _, idx in sorted(free)[:gpu_number])
        for idx in chosen:
            self.reservations.setdefault(idx, []).append(trial_id)
        return chosen, ""

    def release(self, trial_id: str) -> None:
        for idx, trials in self.reservations.items():
            if trial_id in trials:
                trials.remove(trial_id)
