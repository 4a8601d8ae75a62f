"""PruningScheduler: runs a task generator's tasks with a v2 pruner (prune → speedup → finetune → evaluate)."""
from __future__ import annotations

import copy
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .basic_pruner import Pruner
from .tools.task_generator import Task, TaskGenerator, TaskResult

Masks = Dict[str, Dict[str, Tensor]]


def _apply_masks(model: nn.Module, masks: Masks) -> None:
    with torch.no_grad():
        for name, mask in masks.items():
            module = model.get_submodule(name)
            module.weight.data.mul_(mask['weight'])
            if mask.get('bias') is not None and getattr(module, 'bias', None) is not None:
                module.bias.data.mul_(mask['bias'])


class PruningScheduler:
    """Iterative pruning driven by ``task_generator``, each step done by ``pruner`` (built with model=None).

    Per task: reset the pruner with the task's model, masks and config_list; generate masks; with
    ``reset_weight`` put the origin weights back (masked: the lottery-ticket rewind, done before
    fine-tuning so the ticket is trained from its initial weights); speed the model up (``speed_up``, needs
    ``dummy_input`` and :class:`nni.compression.pytorch.ModelSpeedup`); ``finetuner(model)``;
    ``evaluator(model) -> score``; hand the :class:`TaskResult` back to the generator.
    """

    def __init__(self, pruner: Pruner, task_generator: TaskGenerator, finetuner: Optional[Callable[[nn.Module], None]] = None,
                 speed_up: bool = False, dummy_input: Optional[Tensor] = None,
                 evaluator: Optional[Callable[[nn.Module], float]] = None, reset_weight: bool = False):
        if not isinstance(pruner, Pruner):
            raise ValueError(f'pruner: must be a v2 Pruner, got {type(pruner).__name__}')
        if speed_up and dummy_input is None:
            raise ValueError('dummy_input: required when speed_up=True (the model is traced to speed it up)')
        if speed_up and reset_weight:
            raise ValueError('reset_weight: cannot be combined with speed_up=True (the sped-up model has other shapes)')
        self.pruner, self.task_generator = pruner, task_generator
        self.finetuner, self.speed_up, self.dummy_input = finetuner, speed_up, dummy_input
        self.evaluator, self.reset_weight = evaluator, reset_weight
        self._origin_state = copy.deepcopy(task_generator.origin_model.state_dict()) if reset_weight else None

    def pruning_one_step(self, task: Task) -> TaskResult:
        model, masks, config_list = task.load_data()
        self.pruner.reset(model, config_list)
        if masks:
            self.pruner.load_masks(masks)
        _, pruner_generated_masks = self.pruner.compress()
        compact_masks = copy.deepcopy(pruner_generated_masks)
        self.pruner._unwrap_model()
        if self.reset_weight:
            model.load_state_dict(self._origin_state)
            _apply_masks(model, compact_masks)
        if self.speed_up and task.speed_up:
            try:
                from nni.compression.pytorch import ModelSpeedup
            except ImportError as err:
                raise ValueError(f'speed_up: needs nni.compression.pytorch.ModelSpeedup, which is not available ({err})') from None
            ModelSpeedup(model, self.dummy_input, compact_masks).speedup_model()
            compact_masks = {}
        if compact_masks:
            self.pruner._wrap_model()  # fine-tune and evaluate with the masks in force
        if self.finetuner is not None and task.finetune:
            self.finetuner(model)
        score = self.evaluator(model) if self.evaluator is not None and task.evaluate else None
        if compact_masks:
            self.pruner._unwrap_model()
            _apply_masks(model, compact_masks)
        return TaskResult(task.task_id, model, compact_masks, pruner_generated_masks, score)

    def compress(self) -> None:
        """Run every task of the generator."""
        while True:
            task = self.task_generator.next()
            if task is None:
                break
            self.task_generator.receive_task_result(self.pruning_one_step(task))

    def get_best_result(self) -> Optional[Tuple[int, nn.Module, Masks, Optional[float], List[Dict]]]:
        """``(task_id, pruned model, masks, score, config_list)`` of the best task (None before ``compress()``)."""
        return self.task_generator.get_best_result()
