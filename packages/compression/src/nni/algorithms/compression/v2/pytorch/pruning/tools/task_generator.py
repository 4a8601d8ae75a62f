"""Tasks, task results and task generators: the schedule side of iterative pruning.

Files (docs' gap, decided): ``<log_dir>/<timestamp>/origin/``, ``.../<task_id>/`` (deleted once used
unless ``keep_intermediate_result``) and ``.../best_result/``, each holding ``model.pth`` (the whole
module, ``torch.save``), ``masks.pth`` and ``config_list.json``.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import random
import shutil
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .._config import WEIGHTED_MODULES, build_layer_groups, validate_config_list

_logger = logging.getLogger(__name__)

Masks = Dict[str, Dict[str, Tensor]]


def _save(folder: Path, model: nn.Module, masks: Masks, config_list: List[Dict]) -> Tuple[Path, Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / 'model.pth', folder / 'masks.pth', folder / 'config_list.json'
    torch.save(model, paths[0])
    torch.save(masks, paths[1])
    paths[2].write_text(json.dumps(config_list, indent=2))
    return paths


class Task:
    """One pruning step: the model and masks to start from (files) and the ``config_list`` goal.

    ``speed_up`` / ``finetune`` / ``evaluate`` let a generator switch those scheduler stages off for this task.
    """

    def __init__(self, task_id: int, model_path: str, masks_path: str, config_list_path: str,
                 speed_up: bool = True, finetune: bool = True, evaluate: bool = True):
        self.task_id = task_id
        self.model_path, self.masks_path, self.config_list_path = str(model_path), str(masks_path), str(config_list_path)
        self.speed_up, self.finetune, self.evaluate = speed_up, finetune, evaluate
        self.status = 'Pending'
        self.score: Optional[float] = None

    def load_data(self) -> Tuple[nn.Module, Masks, List[Dict]]:
        """Returns ``(model, masks, config_list)`` read from the task's files."""
        model = torch.load(self.model_path, weights_only=False)
        masks = torch.load(self.masks_path, weights_only=False)
        config_list = json.loads(Path(self.config_list_path).read_text())
        return model, masks, config_list

    def to_dict(self) -> Dict:
        return {k: getattr(self, k) for k in ('task_id', 'model_path', 'masks_path', 'config_list_path', 'speed_up',
                                              'finetune', 'evaluate', 'status', 'score')}


class TaskResult:
    """What the scheduler gives back for a task: the (possibly sped-up) model, its masks, the masks the pruner
    generated on the task's model, and the evaluator's score (None without an evaluator)."""

    def __init__(self, task_id: int, compact_model: nn.Module, compact_model_masks: Masks,
                 pruner_generated_masks: Masks, score: Optional[float]):
        self.task_id = task_id
        self.compact_model = compact_model
        self.compact_model_masks = compact_model_masks
        self.pruner_generated_masks = pruner_generated_masks
        self.score = score


class TaskGenerator:
    """Base task generator. Subclasses implement :meth:`init_pending_tasks` and :meth:`generate_tasks`.

    The best result is the highest score; on a tie, or when scores are None (no evaluator), the later
    task wins (so without an evaluator the best result is the latest, as the docs say).
    """

    def __init__(self, origin_model: nn.Module, origin_masks: Optional[Masks] = None,
                 origin_config_list: Optional[List[Dict]] = None, log_dir: str = '.',
                 keep_intermediate_result: bool = False):
        if not isinstance(origin_model, nn.Module):
            raise ValueError(f'origin_model: must be a torch.nn.Module, got {type(origin_model).__name__}')
        self.origin_model = origin_model
        self.origin_masks = origin_masks or {}
        self.origin_config_list = list(origin_config_list or [])
        self.keep_intermediate_result = keep_intermediate_result
        stamp = time.strftime('%Y-%m-%d-%H-%M-%S')
        root = Path(log_dir) / stamp
        suffix = 1
        while root.exists():
            root = Path(log_dir) / f'{stamp}-{suffix}'
            suffix += 1
        self.log_dir = root
        self._origin_paths = _save(root / 'origin', origin_model, self.origin_masks, self.origin_config_list)
        self._next_id = 0
        self._tasks: Dict[int, Task] = {}
        self._best: Optional[Tuple[int, Optional[float]]] = None
        self._pending: List[Task] = list(self.init_pending_tasks())

    # -- to implement --------------------------------------------------------------------------
    def init_pending_tasks(self) -> List[Task]:
        raise TypeError(f'{type(self).__name__} must implement init_pending_tasks()')

    def generate_tasks(self, task_result: TaskResult) -> List[Task]:
        raise TypeError(f'{type(self).__name__} must implement generate_tasks()')

    # -- used by subclasses and the scheduler -----------------------------------------------------
    def new_task(self, model: nn.Module, masks: Masks, config_list: List[Dict], **flags) -> Task:
        task_id = self._next_id
        self._next_id += 1
        paths = _save(self.log_dir / str(task_id), model, masks, config_list)
        task = Task(task_id, *paths, **flags)
        self._tasks[task_id] = task
        return task

    def next(self) -> Optional[Task]:
        """The next pending task (marked Running), or None when the schedule is over."""
        if not self._pending:
            return None
        task = self._pending.pop(0)
        task.status = 'Running'
        return task

    def receive_task_result(self, task_result: TaskResult) -> None:
        task = self._tasks[task_result.task_id]
        task.status, task.score = 'Finished', task_result.score
        if self._best is None or task_result.score is None or self._best[1] is None or task_result.score >= self._best[1]:
            self._best = (task.task_id, task_result.score)
            config_list = json.loads(Path(task.config_list_path).read_text())
            best_dir = self.log_dir / 'best_result'
            _save(best_dir, task_result.compact_model, task_result.compact_model_masks, config_list)
            (best_dir / 'task.json').write_text(json.dumps(task.to_dict(), indent=2))
        self._pending.extend(self.generate_tasks(task_result))
        if not self.keep_intermediate_result:
            shutil.rmtree(self.log_dir / str(task.task_id), ignore_errors=True)
        else:
            _save(self.log_dir / str(task.task_id) / 'result', task_result.compact_model,
                  task_result.compact_model_masks, [])

    def get_best_result(self) -> Optional[Tuple[int, nn.Module, Masks, Optional[float], List[Dict]]]:
        """``(task_id, compact model, masks on the compact model, score, config_list)``, or None before any result."""
        if self._best is None:
            return None
        best_dir = self.log_dir / 'best_result'
        model = torch.load(best_dir / 'model.pth', weights_only=False)
        masks = torch.load(best_dir / 'masks.pth', weights_only=False)
        config_list = json.loads((best_dir / 'config_list.json').read_text())
        return self._best[0], model, masks, self._best[1], config_list


def _scaled_config_list(config_list: List[Dict], factor_of) -> List[Dict]:
    out = []
    for cfg in config_list:
        cfg = dict(cfg)
        for key in ('sparsity', 'sparsity_per_layer', 'total_sparsity'):
            if key in cfg and not cfg.get('exclude'):
                cfg[key] = factor_of(cfg[key])
        out.append(cfg)
    return out


class FunctionBasedTaskGenerator(TaskGenerator):
    """Prunes the previous step's model towards ``sparsity(k)`` for k = 1..total_iteration, where every
    sparsity of ``origin_config_list`` is replaced by :meth:`scheduled_sparsity`."""

    def __init__(self, total_iteration: int, origin_model: nn.Module, origin_config_list: List[Dict],
                 origin_masks: Optional[Masks] = None, log_dir: str = '.', keep_intermediate_result: bool = False):
        if isinstance(total_iteration, bool) or not isinstance(total_iteration, int) or total_iteration < 1:
            raise ValueError(f'total_iteration: must be a positive integer, got {total_iteration!r}')
        if not isinstance(origin_config_list, list):
            raise ValueError(f'origin_config_list: must be a list of dicts, got {type(origin_config_list).__name__}')
        self.total_iteration = total_iteration
        self.current_iteration = 1
        self._origin_rows = {n: m.weight.shape[0] for n, m in origin_model.named_modules()
                             if isinstance(getattr(m, 'weight', None), nn.Parameter) and m.weight.dim() > 0}
        super().__init__(origin_model, origin_masks, origin_config_list, log_dir, keep_intermediate_result)

    def scheduled_sparsity(self, final_sparsity: float, iteration: int) -> float:
        raise TypeError(f'{type(self).__name__} must implement scheduled_sparsity()')

    def config_list_for(self, iteration: int) -> List[Dict]:
        return _scaled_config_list(self.origin_config_list, lambda s: self.scheduled_sparsity(s, iteration))

    def init_pending_tasks(self) -> List[Task]:
        return [self.new_task(self.origin_model, self.origin_masks, self.config_list_for(1))]

    def generate_tasks(self, task_result: TaskResult) -> List[Task]:
        if self.current_iteration >= self.total_iteration:
            return []
        self.current_iteration += 1
        model = task_result.compact_model
        config_list = self._to_compact(model, self.config_list_for(self.current_iteration))
        return [self.new_task(model, task_result.compact_model_masks, config_list)]

    def _to_compact(self, model: nn.Module, config_list: List[Dict]) -> List[Dict]:
        """After a speedup, rewrite the goal (relative to the origin model) for the smaller model: a layer that
        must keep ``(1 - s) * rows_origin`` rows of its ``rows_now`` prunes ``1 - (1 - s) * rows_origin / rows_now``."""
        rows_now = {n: m.weight.shape[0] for n, m in model.named_modules()
                    if isinstance(getattr(m, 'weight', None), nn.Parameter) and m.weight.dim() > 0}
        if all(rows_now.get(n) == r for n, r in self._origin_rows.items()):
            return config_list
        valid = validate_config_list(config_list, pruner_name='the task generator',
                                     allowed_keys=('sparsity', 'sparsity_per_layer', 'total_sparsity',
                                                   'max_sparsity_per_layer', 'rho'),
                                     default_op_types=WEIGHTED_MODULES, supported_op_types=None)
        out = []
        for group in build_layer_groups(model, valid, pruner_name='the task generator', supported_op_types=None):
            kept = sum((1 - group.sparsity) * self._origin_rows[n] for n in group.names)
            now = sum(rows_now[n] for n in group.names)
            sparsity = min(max(0.0, 1 - kept / now), 0.999)
            cfg = {k: v for k, v in group.config.items() if k not in ('sparsity_per_layer', 'total_sparsity', 'op_types')}
            cfg['op_names'] = list(group.names)
            cfg['total_sparsity' if group.is_total else 'sparsity_per_layer'] = sparsity
            out.append(cfg)
        return out


class AGPTaskGenerator(FunctionBasedTaskGenerator):
    """Automated gradual pruning: ``s_k = s_f * (1 - (1 - k / n) ** 3)``, k = 1..n."""

    def scheduled_sparsity(self, final_sparsity, iteration):
        return final_sparsity * (1 - (1 - iteration / self.total_iteration) ** 3)


class LinearTaskGenerator(FunctionBasedTaskGenerator):
    """Linear schedule: ``s_k = s_f * k / n`` (final 0.5 over 5 iterations: 0.1, 0.2, 0.3, 0.4, 0.5)."""

    def scheduled_sparsity(self, final_sparsity, iteration):
        return final_sparsity * iteration / self.total_iteration


class LotteryTicketTaskGenerator(FunctionBasedTaskGenerator):
    """Each iteration prunes ``1 - (1 - P) ** (1 / n)`` of the surviving weights: ``s_k = 1 - (1 - P) ** (k / n)``."""

    def scheduled_sparsity(self, final_sparsity, iteration):
        return 1 - (1 - final_sparsity) ** (iteration / self.total_iteration)


class SimulatedAnnealingTaskGenerator(TaskGenerator):
    """Searches the per-layer split of each config's sparsity (weighted by layer size it stays the configured
    one) by simulated annealing on the evaluator's score; every task prunes the origin model.

    Larger layers get larger sparsities (the docs' "enhanced" SA). A worse allocation is accepted with
    probability ``exp((score - current_score) / temperature)``; the temperature is multiplied by
    ``cool_down_rate`` after every task until it is at most ``stop_temperature``.
    """

    def __init__(self, origin_model: nn.Module, origin_config_list: List[Dict], origin_masks: Optional[Masks] = None,
                 start_temperature: float = 100, stop_temperature: float = 20, cool_down_rate: float = 0.9,
                 perturbation_magnitude: float = 0.35, log_dir: str = '.', keep_intermediate_result: bool = False,
                 seed: Optional[int] = None):
        if not 0 < cool_down_rate < 1:
            raise ValueError(f'cool_down_rate: must be in (0, 1), got {cool_down_rate!r}')
        if not start_temperature > stop_temperature > 0:
            raise ValueError(f'start_temperature / stop_temperature: need start > stop > 0, got '
                             f'{start_temperature!r} / {stop_temperature!r}')
        self.start_temperature, self.stop_temperature = start_temperature, stop_temperature
        self.current_temperature = start_temperature
        self.cool_down_rate, self.perturbation_magnitude = cool_down_rate, perturbation_magnitude
        self._rng = random.Random(seed)
        valid = validate_config_list(origin_config_list, pruner_name='SimulatedAnnealingTaskGenerator',
                                     allowed_keys=('sparsity', 'sparsity_per_layer', 'total_sparsity',
                                                   'max_sparsity_per_layer', 'rho'),
                                     default_op_types=WEIGHTED_MODULES, supported_op_types=None)
        groups: Dict[int, Dict] = {}
        for g in build_layer_groups(origin_model, valid, pruner_name='SimulatedAnnealingTaskGenerator',
                                    supported_op_types=None):
            key = id(g.config)
            entry = groups.setdefault(key, {'target': g.sparsity, 'names': [], 'config': g.config})
            entry['names'].extend(g.names)
        sizes = {n: m.weight.numel() for n, m in origin_model.named_modules()
                 if isinstance(getattr(m, 'weight', None), nn.Parameter)}
        self._groups = [dict(e, sizes=[sizes[n] for n in e['names']]) for e in groups.values()]
        self._current: Optional[List[List[float]]] = None
        self._current_score: Optional[float] = None
        self._candidate: Optional[List[List[float]]] = None
        super().__init__(origin_model, origin_masks, valid, log_dir, keep_intermediate_result)

    @staticmethod
    def _rescale(sparsities: List[float], sizes: List[int], target: float) -> List[float]:
        """Sort so larger layers are sparser, then scale so the size-weighted mean equals ``target`` (each < 1)."""
        order = sorted(range(len(sizes)), key=lambda i: sizes[i])
        values = sorted(min(max(s, 0.0), 0.99) for s in sparsities)
        out = [0.0] * len(sizes)
        for i, v in zip(order, values):
            out[i] = v
        total = sum(sizes)
        for _ in range(50):
            mean = sum(s * n for s, n in zip(out, sizes)) / total
            if abs(mean - target) < 1e-9 or mean == 0:
                break
            out = [min(s * target / mean, 0.99) for s in out]
        if all(s == 0 for s in out):
            out = [target] * len(out)
        return out

    def _config_list(self, allocation: List[List[float]]) -> List[Dict]:
        out = []
        for group, sparsities in zip(self._groups, allocation):
            for name, s in zip(group['names'], sparsities):
                out.append({'op_names': [name], 'sparsity_per_layer': float(s),
                            **{k: v for k, v in group['config'].items() if k == 'rho'}})
        return out

    def _propose(self) -> Task:
        if self._current is None:
            allocation = [self._rescale([self._rng.random() for _ in g['names']], g['sizes'], g['target'])
                          for g in self._groups]
        else:
            magnitude = self.perturbation_magnitude * self.current_temperature / self.start_temperature
            allocation = [self._rescale([s + self._rng.uniform(-magnitude, magnitude) for s in cur], g['sizes'], g['target'])
                          for g, cur in zip(self._groups, self._current)]
        self._candidate = allocation
        return self.new_task(self.origin_model, self.origin_masks, self._config_list(allocation))

    def init_pending_tasks(self) -> List[Task]:
        return [self._propose()]

    def generate_tasks(self, task_result: TaskResult) -> List[Task]:
        score = task_result.score
        if score is None:
            raise ValueError('evaluator: SimulatedAnnealingPruner needs an evaluator that returns a score')
        if self._current is None or score > self._current_score or \
                self._rng.random() < math.exp((score - self._current_score) / self.current_temperature):
            self._current, self._current_score = copy.deepcopy(self._candidate), score
        self.current_temperature *= self.cool_down_rate
        if self.current_temperature <= self.stop_temperature:
            return []
        return [self._propose()]
