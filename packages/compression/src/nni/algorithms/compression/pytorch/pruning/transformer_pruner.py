"""TransformerHeadPruner: prunes whole attention heads (rows of Q/K/V, columns of the output projection)."""
from __future__ import annotations

import logging
import math
import operator
from typing import Callable

import torch
from torch import fx, nn

from nni.compression.pytorch.compressor import Pruner, PrunerModuleWrapper
from nni.compression.pytorch.utils import _graph as g
from nni.compression.pytorch.utils.config_validation import ConfigListError

__all__ = ["TransformerHeadPruner"]

_logger = logging.getLogger(__name__)

RANKING_CRITERIA = ("l1_weight", "l2_weight", "l1_activation", "l2_activation", "taylorfo")
# ops a head's features pass through between the projections and the attention matmuls
_PASS_METHODS = {"view", "reshape", "transpose", "permute", "contiguous", "flatten", "float", "clone"}
_PASS_FUNCTIONS = {torch.transpose, torch.permute, torch.reshape, torch.flatten, torch.softmax,
                   nn.functional.softmax, nn.functional.dropout} | g.BINARY_FUNCTIONS
_PASS_MODULES = (nn.Dropout, nn.Identity, nn.Softmax)
_MATMUL = {torch.matmul, torch.bmm, operator.matmul}


class TransformerHeadPruner(Pruner):
    """Prunes attention heads of transformer models written with four separate Linear layers.

    Each attention group is ``[q, k, v, output]`` (Q/K/V in any order, the output projection
    last). Pruning a head zeroes its ``head_hidden_dim`` rows (and bias entries) in Q, K and V and
    the matching input columns of the output projection; the four masks are computed together.

    Args:
        model: the model to prune.
        config_list: entries with ``sparsity`` (fraction of heads) and ``op_types: ['Linear']`` or
            ``op_names``; the four layers of a group must get the same sparsity.
        head_hidden_dim: features per head (e.g. 64 for BERT).
        attention_name_groups: list of ``[q, k, v, output]`` module names; when None, found from
            ``dummy_input`` by tracing the model with torch.fx (``q @ k^T -> softmax -> @ v -> output``).
        dummy_input: example input for the grouping by graph.
        ranking_criterion: ``'l1_weight'``, ``'l2_weight'`` (norm of the head's Q/K/V weights),
            ``'l1_activation'``, ``'l2_activation'`` (norm of the head's attention output over
            ``forward_runner(model)``), ``'taylorfo'`` (sum of |output * gradient| over
            ``trainer(model, optimizer, criterion, None)``).
        global_sort: rank the heads of all groups together (all sparsities must be equal).
        num_iterations: pruning iterations; iteration ``i`` prunes to ``sparsity * i / num_iterations``.
        epochs_per_iteration: fine-tuning epochs between two iterations.
        optimizer, trainer, criterion: for fine-tuning (``trainer(model, optimizer, criterion, epoch)``)
            and for ``taylorfo``.
        forward_runner: ``forward_runner(model)`` runs the data forward, for the activation criteria.

    Example:
        >>> pruner = TransformerHeadPruner(model, [{'sparsity': 0.5, 'op_types': ['Linear']}],
        ...                                head_hidden_dim=64, attention_name_groups=[['q', 'k', 'v', 'o']])
        >>> pruner.compress()
    """

    default_op_types = ("Linear",)

    def __init__(self, model: nn.Module, config_list: list[dict], head_hidden_dim: int,
                 attention_name_groups: list | None = None, dummy_input=None, ranking_criterion: str = "l1_weight",
                 global_sort: bool = False, num_iterations: int = 1, epochs_per_iteration: int = 1,
                 optimizer: torch.optim.Optimizer | None = None, trainer: Callable | None = None,
                 criterion: Callable | None = None, forward_runner: Callable | None = None, **algo_kwargs):
        owner = type(self).__name__
        if isinstance(head_hidden_dim, bool) or not isinstance(head_hidden_dim, int) or head_hidden_dim < 1:
            raise ValueError(f"{owner}: head_hidden_dim must be a positive int, got {head_hidden_dim!r}")
        if ranking_criterion not in RANKING_CRITERIA:
            raise ValueError(f"{owner}: ranking_criterion must be one of {list(RANKING_CRITERIA)}, "
                             f"got {ranking_criterion!r}")
        for key, value in (("num_iterations", num_iterations), ("epochs_per_iteration", epochs_per_iteration)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{owner}: {key} must be an int >= 1, got {value!r}")
        if algo_kwargs:
            raise ValueError(f"{owner}: unknown argument {sorted(algo_kwargs)[0]!r}")
        if ranking_criterion in ("l1_activation", "l2_activation") and forward_runner is None:
            raise ValueError(f"{owner}: ranking_criterion {ranking_criterion!r} needs forward_runner(model)")
        if (ranking_criterion == "taylorfo" or num_iterations > 1) and (trainer is None or optimizer is None):
            why = "ranking_criterion 'taylorfo'" if ranking_criterion == "taylorfo" else "num_iterations > 1"
            raise ValueError(f"{owner}: {why} needs trainer(model, optimizer, criterion, epoch) and optimizer")
        self.head_hidden_dim = head_hidden_dim
        self.ranking_criterion = ranking_criterion
        self.global_sort = bool(global_sort)
        self.num_iterations = num_iterations
        self.epochs_per_iteration = epochs_per_iteration
        self.trainer, self.criterion, self.forward_runner = trainer, criterion, forward_runner
        self.dummy_input = dummy_input
        if attention_name_groups is None:
            if dummy_input is None:
                raise ValueError(f"{owner}: pass attention_name_groups ([[q, k, v, output], ...]) or dummy_input "
                                 "to find the groups from the traced graph")
            self.attention_name_groups = None
            self.group_weight_names_by_graph(model)
        else:
            self.attention_name_groups = self._check_name_groups(model, attention_name_groups)
        self.masking_groups: list[list[PrunerModuleWrapper]] = []
        super().__init__(model, config_list, optimizer)
        self.group_weights_by_name()
        self.validate_weight_groups()
        self._pruned_heads: list[torch.Tensor] = [torch.zeros(self._n_heads(grp), dtype=torch.bool)
                                                  for grp in self.masking_groups]
        self._pending: dict[str, dict] = {}

    # -- configuration -------------------------------------------------------------------------
    def validate_config(self, model, config_list):
        """Entries take ``sparsity`` on Linear layers only."""
        canonical = super().validate_config(model, config_list)
        for i, entry in enumerate(canonical):
            for key in ("sparsity_per_layer", "total_sparsity", "max_sparsity_per_layer", "rho", "prune_iterations"):
                if key in entry:
                    raise ConfigListError(f"config_list[{i}] has key {key!r}; {type(self).__name__} takes 'sparsity'")
            for op_type in entry.get("op_types", []):
                if op_type != "Linear" and not entry.get("exclude"):
                    raise ConfigListError(f"config_list[{i}]['op_types']: {type(self).__name__} prunes only "
                                          f"['Linear'], got {op_type!r}")
        return canonical

    @staticmethod
    def _check_name_groups(model: nn.Module, groups) -> list[list[str]]:
        modules = dict(model.named_modules())
        result = []
        for i, grp in enumerate(groups):
            grp = list(grp) if isinstance(grp, (list, tuple)) else grp
            if not isinstance(grp, list) or len(grp) != 4:
                raise ValueError(f"attention_name_groups[{i}]: expected 4 names [q, k, v, output], got {grp!r}")
            for name in grp:
                if not isinstance(modules.get(name), nn.Linear):
                    what = "no module" if name not in modules else type(modules[name]).__name__
                    raise ValueError(f"attention_name_groups[{i}]: {name!r} is {what}; expected a Linear module")
            result.append(grp)
        return result

    def _detect_modules_to_compress(self):
        if self.modules_to_compress is None:
            super()._detect_modules_to_compress()
            self.remove_ungrouped_modules()
        return self.modules_to_compress

    def remove_ungrouped_modules(self) -> None:
        """Drop layers selected by config_list that belong to no attention group (e.g. the feed-forward
        Linear layers matched by ``op_types: ['Linear']``)."""
        grouped = {name for grp in self.attention_name_groups for name in grp}
        dropped = [layer.name for layer, _ in self.modules_to_compress if layer.name not in grouped]
        if dropped:
            _logger.info("TransformerHeadPruner: not pruning %s (in no attention group)", dropped)
        self.modules_to_compress = [(layer, cfg) for layer, cfg in self.modules_to_compress if layer.name in grouped]

    def group_weight_names_by_graph(self, model: nn.Module | None = None) -> None:
        """Find ``[q, k, v, output]`` groups from the torch.fx graph traced with ``dummy_input``:
        ``q(x) @ k(x)^T``, a softmax, ``@ v(x)``, then the first Linear after it is the output."""
        model = self.bound_model if model is None else model
        gm = g.trace(model, self.dummy_input)
        modules = dict(model.named_modules())
        groups = []
        for node in gm.graph.nodes:
            if not _is_matmul(node):
                continue
            left = _upstream(node.args[0], lambda n: _is_softmax(n) or (
                n.op == "call_module" and isinstance(modules.get(n.target), nn.Softmax)), modules)
            if left is None:
                continue
            scores = _upstream(left.args[0], _is_matmul, modules)
            if scores is None:
                continue
            q = _upstream_linear(scores.args[0], modules)
            k = _upstream_linear(scores.args[1], modules)
            v = _upstream_linear(node.args[1], modules)
            o = _downstream_linear(node, modules)
            if None not in (q, k, v, o):
                groups.append([q, k, v, o])
        if not groups:
            raise ValueError("TransformerHeadPruner: found no attention (Linear q/k/v -> q @ k^T -> softmax -> @ v "
                             "-> Linear output) in the traced graph; pass attention_name_groups")
        _logger.info("TransformerHeadPruner: attention groups from the graph: %s", groups)
        self.attention_name_groups = groups

    def group_weights_by_name(self) -> None:
        """Fill ``self.masking_groups`` (lists of 4 wrappers) from ``attention_name_groups``; a group
        none of whose layers is selected by config_list is skipped."""
        wrappers = {w.name: w for w in self.get_modules_wrapper()}
        self.masking_groups = []
        for i, grp in enumerate(self.attention_name_groups):
            found = [wrappers.get(name) for name in grp]
            if all(w is None for w in found):
                continue
            if any(w is None for w in found):
                missing = [name for name, w in zip(grp, found) if w is None]
                raise ValueError(f"attention_name_groups[{i}]: config_list selects only part of the group "
                                 f"(not {missing}); the 4 layers of a group must be pruned together")
            self.masking_groups.append(found)

    def validate_weight_groups(self) -> None:
        """Q/K/V of a group have one shape, the output projection reads all their features, the four
        share one sparsity (one for all groups with global_sort), head_hidden_dim divides the features."""
        sparsities = set()
        for grp in self.masking_groups:
            names = [w.name for w in grp]
            shapes = [tuple(w.module.weight.shape) for w in grp[:3]]
            if len(set(shapes)) != 1:
                raise ValueError(f"attention group {names}: q/k/v weights have different shapes {shapes}")
            out_dim = shapes[0][0]
            if grp[3].module.weight.shape[1] != out_dim:
                raise ValueError(f"attention group {names}: output projection reads "
                                 f"{grp[3].module.weight.shape[1]} features, q/k/v produce {out_dim}")
            if out_dim % self.head_hidden_dim:
                raise ValueError(f"attention group {names}: head_hidden_dim {self.head_hidden_dim} does not "
                                 f"divide the projection size {out_dim}")
            group_sparsity = {w.config["sparsity"] for w in grp}
            if len(group_sparsity) != 1:
                raise ValueError(f"attention group {names}: the 4 layers have different sparsities "
                                 f"{sorted(group_sparsity)} in config_list; give them one")
            sparsities |= group_sparsity
        if self.global_sort and len(sparsities) > 1:
            raise ValueError(f"TransformerHeadPruner: global_sort=True needs one sparsity for all layers, "
                             f"config_list gives {sorted(sparsities)}")

    def _n_heads(self, grp) -> int:
        return grp[0].module.weight.shape[0] // self.head_hidden_dim

    # -- scores ----------------------------------------------------------------------------------
    def _head_scores(self) -> list[torch.Tensor]:
        if self.ranking_criterion in ("l1_weight", "l2_weight"):
            scores = []
            for grp in self.masking_groups:
                w = torch.cat([x.module.weight.detach() * x.weight_mask for x in grp[:3]], 1)
                per_head = w.reshape(self._n_heads(grp), -1).float().cpu()
                scores.append(per_head.abs().sum(1) if self.ranking_criterion == "l1_weight"
                              else per_head.pow(2).sum(1).sqrt())
            return scores
        return self._activation_scores()

    def _activation_scores(self) -> list[torch.Tensor]:
        """Per-head sums over the input of each output projection, collected while the user's
        forward_runner (activations) or trainer (taylorfo, epoch=None) runs."""
        sums = [torch.zeros(self._n_heads(grp)) for grp in self.masking_groups]
        handles = []
        taylor = self.ranking_criterion == "taylorfo"

        def make_hook(idx):
            def per_head(t):
                return t.detach().float().reshape(-1, sums[idx].numel(), self.head_hidden_dim).transpose(0, 1)

            def hook(_module, inputs):
                x = inputs[0]
                if taylor:
                    if x.requires_grad:
                        def grad_hook(grad):
                            sums[idx].add_((per_head(x) * per_head(grad)).abs().sum((1, 2)).cpu())
                        x.register_hook(grad_hook)  # returns None: the gradient is left unchanged
                elif self.ranking_criterion == "l1_activation":
                    sums[idx].add_(per_head(x).abs().sum((1, 2)).cpu())
                else:
                    sums[idx].add_(per_head(x).pow(2).sum((1, 2)).cpu())
            return hook

        for idx, grp in enumerate(self.masking_groups):
            handles.append(grp[3].register_forward_pre_hook(make_hook(idx)))
        try:
            if taylor:
                self.trainer(self.bound_model, self.optimizer, self.criterion, None)
            else:
                with torch.no_grad():
                    self.forward_runner(self.bound_model)
        finally:
            for handle in handles:
                handle.remove()
        if all(not s.any() for s in sums):
            what = "trainer computed no gradient" if taylor else "forward_runner ran no forward pass"
            raise ValueError(f"TransformerHeadPruner: ranking_criterion {self.ranking_criterion!r}: the {what} "
                             "through the attention output projections")
        return [s.sqrt() if self.ranking_criterion == "l2_activation" else s for s in sums]

    # -- masks -----------------------------------------------------------------------------------
    def _choose(self, scores: list[torch.Tensor], fraction: float) -> None:
        """Grow ``self._pruned_heads`` so that ``fraction`` of the heads are pruned (floor, >= 1 head
        stays per group); already pruned heads stay pruned."""
        if self.global_sort:
            total = sum(s.numel() for s in scores)
            target = int(total * fraction * self.masking_groups[0][0].config["sparsity"])
            candidates = sorted((float(s[h]), gi, h) for gi, s in enumerate(scores) for h in range(s.numel())
                                if not self._pruned_heads[gi][h])
            count = sum(int(p.sum()) for p in self._pruned_heads)
            for _score, gi, h in candidates:
                if count >= target:
                    break
                if int((~self._pruned_heads[gi]).sum()) > 1:
                    self._pruned_heads[gi][h] = True
                    count += 1
            return
        for gi, (grp, s) in enumerate(zip(self.masking_groups, scores)):
            n = s.numel()
            target = min(int(n * grp[0].config["sparsity"] * fraction), n - 1)
            missing = target - int(self._pruned_heads[gi].sum())
            if missing > 0:
                ranked = torch.where(self._pruned_heads[gi], torch.full_like(s, math.inf), s)
                order = torch.sort(ranked, stable=True).indices[:missing]
                self._pruned_heads[gi][order] = True

    def update_mask(self, fraction: float = 1.0) -> None:
        """Compute head scores, prune ``fraction`` of each configured sparsity (all groups ranked
        together with global_sort) and set the masks of the four layers of every group."""
        self._choose(self._head_scores(), fraction)
        self._pending = {}
        for grp, pruned in zip(self.masking_groups, self._pruned_heads):
            rows = pruned.repeat_interleave(self.head_hidden_dim)
            for w in grp[:3]:
                weight_mask = torch.ones_like(w.weight_mask)
                weight_mask[rows.to(weight_mask.device)] = 0
                masks = {"weight_mask": weight_mask}
                if w.bias_mask is not None:
                    bias_mask = torch.ones_like(w.bias_mask)
                    bias_mask[rows.to(bias_mask.device)] = 0
                    masks["bias_mask"] = bias_mask
                self._pending[w.name] = masks
            out_mask = torch.ones_like(grp[3].weight_mask)
            out_mask[:, rows.to(out_mask.device)] = 0
            self._pending[grp[3].name] = {"weight_mask": out_mask}
        super().update_mask()

    def calc_mask(self, wrapper: PrunerModuleWrapper, **kwargs) -> dict | None:
        """The masks :meth:`update_mask` computed for ``wrapper``'s group."""
        return self._pending.get(wrapper.name)

    def get_pruned_heads(self) -> dict[str, list[int]]:
        """Output-projection name -> indices of its pruned heads."""
        return {grp[3].name: torch.nonzero(p).flatten().tolist()
                for grp, p in zip(self.masking_groups, self._pruned_heads)}

    def compress(self) -> nn.Module:
        """Prune in ``num_iterations`` steps, fine-tuning ``epochs_per_iteration`` epochs between them."""
        epoch = 0
        for it in range(1, self.num_iterations + 1):
            self.update_mask((it / self.num_iterations))
            _logger.info("TransformerHeadPruner iteration %d: pruned heads %s", it, self.get_pruned_heads())
            if it < self.num_iterations:
                for _ in range(self.epochs_per_iteration):
                    self.trainer(self.bound_model, self.optimizer, self.criterion, epoch)
                    epoch += 1
        return self.bound_model


def _is_matmul(node) -> bool:
    return isinstance(node, fx.Node) and ((node.op == "call_function" and node.target in _MATMUL) or (
        node.op == "call_method" and node.target == "matmul"))


def _is_softmax(node) -> bool:
    return isinstance(node, fx.Node) and (
        (node.op == "call_function" and node.target in (torch.softmax, nn.functional.softmax))
        or (node.op == "call_method" and node.target == "softmax"))


def _passes(node: fx.Node, modules: dict) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(node.target), _PASS_MODULES)
    return (node.op == "call_method" and node.target in _PASS_METHODS | g.BINARY_METHODS | {"softmax"}) or (
        node.op == "call_function" and node.target in _PASS_FUNCTIONS)


def _upstream(node, stop, modules):
    """Follows the first tensor input up through view/transpose/scaling/dropout until ``stop``."""
    for _ in range(32):
        if not isinstance(node, fx.Node):
            return None
        if stop(node):
            return node
        if not _passes(node, modules):
            return None
        ins = [a for a in node.all_input_nodes if g.shape_of(a) is not None]
        if not ins:
            return None
        node = ins[0]
    return None


def _upstream_linear(node, modules) -> str | None:
    found = _upstream(node, lambda n: n.op == "call_module" and isinstance(modules.get(n.target), nn.Linear), modules)
    return found.target if found is not None else None


def _downstream_linear(node: fx.Node, modules) -> str | None:
    for _ in range(32):
        users = list(node.users)
        if len(users) != 1:
            return None
        node = users[0]
        if node.op == "call_module" and isinstance(modules.get(node.target), nn.Linear):
            return node.target
        if not _passes(node, modules):
            return None
    return None
