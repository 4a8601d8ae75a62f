"""AMC (v1): AutoML for Model Compression (He et al. 2018, https://arxiv.org/abs/1802.03494).

A DDPG agent (:mod:`.amc_ddpg`) walks the prunable layers of the model once per *episode* and picks
for each a preserve ratio of its output channels; the episode's reward is measured on the pruned
model with ``evaluator(val_loader, model)``. ``compress()`` runs ``train_episode`` episodes (the first
``warmup`` with uniform random actions, which only fill the replay memory) and ends with the masks
of the best episode applied.

Decisions where NNI's docs are silent (document-level reconstruction of the paper):

* **What is pruned**: the output channels (filters, with their bias) of the acted layers, ranked by
  the L1 norm of the filter (the ``L1FilterPrunerMasker``), so the masks are ordinary filter masks
  that ``export_model`` / ``ModelSpeedup`` understand. Removing layer ``t``'s filters removes the
  matching input channels of its consumers, which is how the paper counts the FLOPs of an action.
* **Acted layers**: the selected ``Conv2d`` (``groups == 1``) and ``Linear`` layers whose output
  reaches only other Conv2d / Linear layers through channel-wise ops (BN, activations, pooling,
  dropout, flatten, spatial means) or depth-wise convs (which follow their producer's channels, as
  in MobileNet). A layer whose output meets another tensor (residual ``add``, ``cat``) or reaches
  the model output is left whole: as in the paper for ResNet, only the layers inside a block are
  pruned. Other selected layers are wrapped with all-one masks.
* **Resource-constrained action** (the paper's Algorithm 2): the agent's ratio is clamped to
  ``[lbound, rbound]``, turned into a channel count rounded up to a multiple of ``channel_round``,
  then capped so that the FLOPs target ``flops_ratio`` stays reachable with every later layer at
  ``lbound`` (the cap rounds down to a multiple of ``channel_round`` where that still keeps
  ``lbound``). So every episode ends at or below the target. FLOPs are counted as
  ``count_flops_params`` counts Conv / Linear (per sample) on the model after ``ModelSpeedup``:
  ``base * kept_out / out * kept_in / in`` per layer.
* **State** (the paper's layer embedding): ``[t, out channels, in channels, h, w, stride, kernel,
  FLOPs of the layer]`` min-max normalised over the acted layers, plus the FLOPs already removed,
  the FLOPs of the later acted layers (both as fractions of the model's) and the previous action;
  ``window_length`` consecutive embeddings (zero-padded) form one state.
* **Weight reconstruction**: after layer ``t`` is pruned, each Conv2d / Linear consumer that reads
  its channels directly (not through a depth-wise conv) gets its weights refit by least squares so
  that its output on calibration features matches the unpruned model's (the paper's channel
  pruning step). Calibration features: the inputs of the first ``n_calibration_batches`` batches of
  ``val_loader``, ``n_points_per_layer`` random positions per image for a conv (every row for a
  Linear). ``n_calibration_batches=0`` turns reconstruction off (masks only). The refit weights are
  part of the model after ``compress()`` (and of ``export_model``'s state dict).
* **Reward**: ``evaluator`` returns an accuracy in percent; ``'acc_reward'`` = ``acc * 0.01``,
  ``'acc_flops_reward'`` = ``-(100 - acc) * 0.01 * log(flops)``. Every transition of an episode is
  stored with the episode's reward minus a moving-average baseline (rate 0.5); after warmup the
  agent makes one DDPG update per step.
* **Exploration**: truncated normal around the actor's ratio on ``[lbound, rbound]`` with standard
  deviation ``init_delta * delta_decay ** (episode - warmup)``, also decayed linearly to 0 over
  ``epsilon`` agent steps.
* ``train_episode`` is the total number of episodes (warmup included); ``rmsize`` transitions per
  acted layer are kept in the replay memory; an episode is one step per acted layer, which must not
  exceed ``max_episode_length``. ``model_type`` (``'mobilenet'``, ``'mobilenetv2'``, ``'resnet'``)
  and ``dataset`` are checked and recorded in the output only: the acted layers come from the
  traced graph for every model type.
* Output (``output_dir``, or ``output_dir/suffix``): ``best_policy.json`` (reward, accuracy, FLOPs,
  per-layer preserve ratios and channel counts), ``best_masks.pth`` (mask file of the best episode)
  and ``search_history.csv`` (one row per episode).
* ``seed`` seeds python's ``random`` and torch; ``torch.backends.cudnn.deterministic`` is always set
  (NNI 2.5 changelog).
"""
from __future__ import annotations

import csv
import json
import logging
import math
import numbers
import random
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from nni.compression.pytorch.compressor import Pruner
from nni.compression.pytorch.utils import _graph as g
from nni.compression.pytorch.utils.config_validation import ConfigListError, validate_config_list
from nni.compression.pytorch.utils.counter import count_flops_params

from .amc_ddpg import DDPGAgent, truncated_normal
from .structured_pruning_masker import L1FilterPrunerMasker

__all__ = ["AMCPruner"]

_logger = logging.getLogger(__name__)

REWARDS = ("acc_reward", "acc_flops_reward")
MODEL_TYPES = ("mobilenet", "mobilenetv2", "resnet")
_SUPPORTED_TYPES = ("Conv2d", "Linear")
_PASS_KINDS = ("channelwise", "reduce", "flatten")


def _batch_input(batch: Any) -> Any:
    """The model input of a data loader batch: ``x`` of ``(x, y)``, or the batch itself."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _is_depthwise(mod: nn.Module) -> bool:
    return isinstance(mod, nn.Conv2d) and mod.groups > 1 and mod.groups == mod.in_channels == mod.out_channels


class _Layer:
    """An acted layer: its module, channel count, static embedding and direct consumers."""

    def __init__(self, name: str, module: nn.Module, embedding: list[float], flops: float):
        self.name = name
        self.module = module
        self.channels = module.weight.shape[0]
        self.embedding = embedding
        self.flops = flops
        self.consumers: list[str] = []


class AMCPruner(Pruner):
    """AMC: a DDPG agent learns per-layer channel preserve ratios that meet a FLOPs budget.

    Usage::

        pruner = AMCPruner(model, [{'op_types': ['Conv2d', 'Linear']}], evaluator, val_loader, flops_ratio=0.5)
        pruner.compress()     # the best episode's masks are applied
        pruner.export_model('model.pth', 'mask.pth')

    Args:
        model: the (trained) model to prune.
        config_list: entries with ``op_types`` (``Conv2d`` / ``Linear`` / ``'default'``), ``op_names``,
            ``exclude``; no sparsity (the budget is ``flops_ratio``).
        evaluator: ``evaluator(val_loader, model) -> accuracy`` (percent) of the masked model.
        val_loader: validation batches (``(x, y)`` or ``x``); also the calibration data.
        suffix: names a sub-folder of ``output_dir`` for this run.
        model_type: ``'mobilenet'``, ``'mobilenetv2'`` or ``'resnet'`` (recorded).
        dataset: the dataset's name (recorded).
        flops_ratio: fraction of the model's FLOPs to keep.
        lbound / rbound: smallest / largest preserve ratio of a layer.
        reward: ``'acc_reward'`` or ``'acc_flops_reward'``.
        n_calibration_batches: batches of ``val_loader`` used for weight reconstruction (0: none).
        n_points_per_layer: feature points sampled per image for a conv's reconstruction.
        channel_round: kept channel counts are multiples of this where the budget allows.
        hidden1 / hidden2: hidden widths of the actor and critic.
        lr_c / lr_a: learning rates of critic and actor.
        warmup: episodes of random actions before the agent is trained.
        discount: discount of the next state's Q value.
        bsize: DDPG minibatch size.
        rmsize: replay memory size per acted layer.
        window_length: consecutive layer embeddings that form a state.
        tau: soft-update rate of the target networks.
        init_delta / delta_decay: exploration noise std and its decay per episode.
        max_episode_length: most steps (acted layers) an episode may have.
        output_dir: where ``best_policy.json``, ``best_masks.pth``, ``search_history.csv`` go.
        debug: log every step at INFO level.
        train_episode: episodes in total (warmup included).
        epsilon: agent steps over which the exploration noise decays linearly to zero.
        seed: random seed (python ``random``, torch, the agent).
    """

    default_op_types = _SUPPORTED_TYPES

    def __init__(self, model: nn.Module, config_list: list[dict], evaluator: Callable[[Any, nn.Module], float],
                 val_loader, suffix: str | None = None, model_type: str = "mobilenet", dataset: str = "cifar10",
                 flops_ratio: float = 0.5, lbound: float = 0.2, rbound: float = 1.0, reward: str = "acc_reward",
                 n_calibration_batches: int = 60, n_points_per_layer: int = 10, channel_round: int = 8,
                 hidden1: int = 300, hidden2: int = 300, lr_c: float = 1e-3, lr_a: float = 1e-4, warmup: int = 100,
                 discount: float = 1.0, bsize: int = 64, rmsize: int = 100, window_length: int = 1,
                 tau: float = 0.01, init_delta: float = 0.5, delta_decay: float = 0.99,
                 max_episode_length: float = 1e9, output_dir: str = "./logs", debug: bool = False,
                 train_episode: int = 800, epsilon: int = 50000, seed: int | None = None):
        self._check_args(locals())
        torch.backends.cudnn.deterministic = True
        if seed is not None:
            random.seed(seed)
            torch.manual_seed(seed)
        self.evaluator = evaluator
        self.val_loader = val_loader
        self.suffix = suffix
        self.model_type = model_type
        self.dataset = dataset
        self.flops_ratio = float(flops_ratio)
        self.lbound, self.rbound = float(lbound), float(rbound)
        self.reward_name = reward
        self.n_calibration_batches = n_calibration_batches
        self.n_points_per_layer = n_points_per_layer
        self.channel_round = channel_round
        self.warmup = warmup
        self.window_length = window_length
        self.init_delta, self.delta_decay, self.epsilon = float(init_delta), float(delta_decay), epsilon
        self.output_dir = Path(output_dir) / suffix if suffix else Path(output_dir)
        self.debug = debug
        self.train_episode = train_episode
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)
        else:
            self.generator.seed()

        batches = self._calibration_batches(val_loader, max(1, n_calibration_batches))
        self._device = next((p.device for p in model.parameters()), torch.device("cpu"))
        dummy = _batch_input(batches[0])
        self._calibration = [_batch_input(b) for b in batches[:n_calibration_batches]]
        self._modules = dict(model.named_modules())  # the module objects survive wrapping
        # FLOPs per module as count_flops_params counts them (per sample, Conv / Linear only)
        sample = dummy[:1] if isinstance(dummy, torch.Tensor) else tuple(t[:1] for t in g.as_tuple(dummy))
        self.original_flops, _, results = count_flops_params(model, sample, verbose=False)
        self._module_flops = {name: float(sum(entry["flops"])) for name, entry in results.items()}
        gm = g.trace(model, sample)

        super().__init__(model, config_list)
        selected = {w.name for w in self.get_modules_wrapper()}
        self._analyse(gm, selected)
        if not self.layers:
            raise ConfigListError("config_list: AMCPruner found no layer to prune: select Conv2d (groups=1) / Linear "
                                  "layers whose output feeds only other Conv2d / Linear layers (through BN, "
                                  "activations, pooling, flatten)")
        if len(self.layers) > max_episode_length:
            raise ValueError(f"max_episode_length={max_episode_length} is shorter than the {len(self.layers)} layers "
                             "AMCPruner prunes per episode; raise it or select fewer layers")
        self.target_flops = self.flops_ratio * self.original_flops
        self._min_keep = [max(1, math.ceil(self.lbound * layer.channels - 1e-9)) for layer in self.layers]
        lowest = self.flops({layer.name: k for layer, k in zip(self.layers, self._min_keep)})
        if lowest > self.target_flops * (1 + 1e-9):
            raise ValueError(f"flops_ratio={flops_ratio} cannot be reached: with every prunable layer at "
                             f"lbound={lbound} the model keeps {lowest / self.original_flops:.4f} of its FLOPs; "
                             "raise flops_ratio, lower lbound or select more layers")
        self._embed_dim = len(self.layers[0].embedding) + 3
        self.agent = DDPGAgent(self._embed_dim * window_length, hidden1, hidden2, lr_a, lr_c, discount, tau, bsize,
                               rmsize * len(self.layers), seed=seed)
        self.masker = L1FilterPrunerMasker(model, self)
        self._wrappers = {w.name: w for w in self.get_modules_wrapper()}
        # every episode starts from these weights (masks are applied in place, reconstruction rewrites)
        self._snapshot = [(t, t.detach().clone()) for name, t in self._state_tensors()]
        self._targets = self._reconstruction_targets() if self._calibration else {}
        #: per episode: episode, reward, accuracy, flops, strategy (layer -> preserve ratio)
        self.history: list[dict] = []
        #: the best episode (same keys as a history row, plus ``kept``: layer -> channels)
        self.best: dict | None = None
        #: actions the agent has taken after warmup (drives the epsilon decay of the noise)
        self.agent_steps = 0

    # -- arguments -------------------------------------------------------------------------------
    @staticmethod
    def _check_args(args: dict) -> None:
        def number(name, low=None, high=None, low_open=False, high_open=False):
            value = args[name]
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"AMCPruner: {name} must be a number, got {value!r}")
            if low is not None and (value < low or (low_open and value == low)):
                raise ValueError(f"AMCPruner: {name} must be {'>' if low_open else '>='} {low}, got {value!r}")
            if high is not None and (value > high or (high_open and value == high)):
                raise ValueError(f"AMCPruner: {name} must be {'<' if high_open else '<='} {high}, got {value!r}")

        def integer(name, low):
            value = args[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"AMCPruner: {name} must be an integer >= {low}, got {value!r}")

        if not isinstance(args["model"], nn.Module):
            raise ValueError(f"AMCPruner: model must be a torch.nn.Module, got {type(args['model']).__name__}")
        if not callable(args["evaluator"]):
            raise ValueError("AMCPruner: evaluator must be a function evaluator(val_loader, model) -> accuracy")
        if args["reward"] not in REWARDS:
            raise ValueError(f"AMCPruner: reward must be one of {list(REWARDS)}, got {args['reward']!r}")
        if args["model_type"] not in MODEL_TYPES:
            raise ValueError(f"AMCPruner: model_type must be one of {list(MODEL_TYPES)}, got {args['model_type']!r}")
        if not isinstance(args["dataset"], str):
            raise ValueError(f"AMCPruner: dataset must be a string (its name), got {args['dataset']!r}")
        if args["suffix"] is not None and (not isinstance(args["suffix"], str) or not args["suffix"]
                                           or "/" in args["suffix"] or "\\" in args["suffix"]):
            raise ValueError(f"AMCPruner: suffix must be None or a folder name, got {args['suffix']!r}")
        if not isinstance(args["output_dir"], (str, Path)):
            raise ValueError(f"AMCPruner: output_dir must be a path, got {args['output_dir']!r}")
        number("flops_ratio", 0, 1, low_open=True)
        number("lbound", 0, 1, low_open=True)
        number("rbound", 0, 1, low_open=True)
        if args["lbound"] > args["rbound"]:
            raise ValueError(f"AMCPruner: lbound ({args['lbound']}) must not exceed rbound ({args['rbound']})")
        for name in ("lr_c", "lr_a", "init_delta"):
            number(name, 0, low_open=name != "init_delta")
        number("discount", 0, 1)
        number("tau", 0, 1, low_open=True)
        number("delta_decay", 0, 1, low_open=True)
        number("max_episode_length", 1)
        for name, low in (("n_calibration_batches", 0), ("n_points_per_layer", 1), ("channel_round", 1),
                          ("hidden1", 1), ("hidden2", 1), ("warmup", 0), ("bsize", 1), ("rmsize", 1),
                          ("window_length", 1), ("train_episode", 1), ("epsilon", 1)):
            integer(name, low)
        if args["seed"] is not None:
            integer("seed", 0)

    def validate_config(self, model, config_list):
        """Entries take ``op_types`` / ``op_names`` / ``exclude`` only; op types Conv2d and Linear."""
        if isinstance(config_list, (list, tuple)):
            for i, entry in enumerate(config_list):
                if not isinstance(entry, dict):
                    continue
                for key in entry:
                    if key not in ("op_types", "op_names", "exclude"):
                        raise ConfigListError(f"config_list[{i}] has key {key!r} that AMCPruner does not use; allowed "
                                              f"keys: 'op_types', 'op_names', 'exclude' (the budget is flops_ratio)")
            # the shared validator wants a sparsity on every entry: give it a neutral one
            config_list = [dict(e, sparsity=0.0) if isinstance(e, dict) and not e.get("exclude") else e
                           for e in config_list]
        canonical = validate_config_list(model, config_list, pruner=True, default_op_types=self.default_op_types)
        for i, entry in enumerate(canonical):
            entry.pop("sparsity", None)
            for op_type in entry.get("op_types", []) if not entry.get("exclude") else []:
                if op_type not in _SUPPORTED_TYPES:
                    raise ConfigListError(f"config_list[{i}]['op_types']: AMCPruner prunes only "
                                          f"{list(_SUPPORTED_TYPES)}, got {op_type!r}")
        return canonical

    def _wrap_modules(self, layer, config):
        if layer.type not in _SUPPORTED_TYPES:
            raise ConfigListError(f"config_list selects layer '{layer.name}' ({layer.type}) but AMCPruner prunes "
                                  f"only {list(_SUPPORTED_TYPES)}")
        return super()._wrap_modules(layer, config)

    @staticmethod
    def _calibration_batches(val_loader, count: int) -> list:
        batches = []
        try:
            for batch in val_loader:
                batches.append(batch)
                if len(batches) >= count:
                    break
        except TypeError:
            raise ValueError(f"AMCPruner: val_loader must be an iterable of batches, got "
                             f"{type(val_loader).__name__}") from None
        if not batches:
            raise ValueError("AMCPruner: val_loader yields no batch")
        return batches

    # -- graph analysis --------------------------------------------------------------------------
    def _analyse(self, gm, selected: set[str]) -> None:
        """Find the acted layers, their consumers and the FLOPs model on the traced graph."""
        modules = self._modules
        nodes = list(gm.graph.nodes)
        kind = {n: g.node_kind(n, modules) for n in nodes}
        calls: dict[str, int] = {}
        for n in nodes:
            if n.op == "call_module":
                calls[n.target] = calls.get(n.target, 0) + 1

        def dense(n) -> bool:
            if n.op != "call_module" or calls[n.target] != 1:
                return False
            mod = modules[n.target]
            if isinstance(mod, nn.Conv2d):
                return mod.groups == 1
            ins = g.tensor_inputs(n)
            return isinstance(mod, nn.Linear) and len(ins) == 1 and len(g.shape_of(ins[0])) == 2

        def consumers_of(start) -> list[tuple[str, bool]] | None:
            """Conv/Linear layers reading ``start``'s channels (name, direct?), None if they reach anything else."""
            found, stack, seen = [], [(start, True)], set()
            while stack:
                node, direct = stack.pop()
                for user in node.users:
                    if user in seen:
                        continue
                    seen.add(user)
                    k = kind[user]
                    if k == "shape":
                        continue  # x.size(0) and the like read no channel
                    if k in _PASS_KINDS and g.tensor_inputs(user)[:1] == [node]:
                        stack.append((user, direct))
                    elif k in ("conv", "linear") and dense(user):
                        found.append((user.target, direct))
                    elif k == "conv" and calls[user.target] == 1 and _is_depthwise(modules[user.target]):
                        stack.append((user, False))
                    else:
                        return None
            return found or None

        acted: dict[str, list[tuple[str, bool]]] = {}
        for n in nodes:
            if kind[n] in ("conv", "linear") and n.target in selected and dense(n):
                found = consumers_of(n)
                if found is not None:
                    acted[n.target] = found
        # the acted layer whose channels each tensor carries (through channel-wise ops / depth-wise convs)
        source: dict[Any, str | None] = {}
        self._flops_terms: list[tuple[float, str | None, str | None]] = []
        counted: set[str] = set()
        for n in nodes:
            ins = g.tensor_inputs(n)
            src = source.get(ins[0]) if ins else None
            k = kind[n]
            if n.op == "call_module" and n.target in acted:
                source[n] = n.target
            elif k in _PASS_KINDS or (k == "conv" and _is_depthwise(modules[n.target])):
                source[n] = src
            else:
                source[n] = None
            if k in ("conv", "linear") and n.target not in counted:
                counted.add(n.target)
                base = self._module_flops.get(n.target, 0.0)
                if calls[n.target] > 1:
                    src = None  # never fed by an acted layer (see dense())
                out = n.target if n.target in acted else None
                self._flops_terms.append((base, src, out))
        static, self.layers = [], []
        for idx, n in enumerate(n for n in nodes if n.op == "call_module" and n.target in acted):
            mod = modules[n.target]
            in_shape = g.shape_of(g.tensor_inputs(n)[0])
            if isinstance(mod, nn.Conv2d):
                row = [idx, mod.out_channels, mod.in_channels, in_shape[2], in_shape[3], mod.stride[0],
                       mod.kernel_size[0]]
            else:
                row = [idx, mod.out_features, mod.in_features, 1, 1, 0, 1]
            row.append(self._module_flops.get(n.target, 0.0))
            static.append(row)
            layer = _Layer(n.target, mod, row, row[-1])
            layer.consumers = [name for name, direct in acted[n.target] if direct]
            self.layers.append(layer)
        if not static:
            return
        columns = list(zip(*static))
        lows, highs = [min(c) for c in columns], [max(c) for c in columns]
        for layer in self.layers:
            layer.embedding = [0.0 if hi == lo else (v - lo) / (hi - lo)
                               for v, lo, hi in zip(layer.embedding, lows, highs)]

    def flops(self, kept: dict[str, int]) -> float:
        """FLOPs (per sample, Conv / Linear) of the model once ``kept`` channels stay in each acted layer
        (the others whole), as ``count_flops_params`` counts them after ``ModelSpeedup``."""
        ratio = {layer.name: kept.get(layer.name, layer.channels) / layer.channels for layer in self.layers}
        return sum(base * ratio.get(src, 1.0) * ratio.get(out, 1.0) for base, src, out in self._flops_terms)

    # -- episodes --------------------------------------------------------------------------------
    def _state_tensors(self):
        for name, tensor in list(self.bound_model.named_parameters()) + list(self.bound_model.named_buffers()):
            if not name.endswith(("weight_mask", "bias_mask")):
                yield name, tensor

    def _restore(self) -> None:
        with torch.no_grad():
            for tensor, saved in self._snapshot:
                tensor.copy_(saved)
            for wrapper in self.get_modules_wrapper():
                wrapper.weight_mask.fill_(1)
                if wrapper.bias_mask is not None:
                    wrapper.bias_mask.fill_(1)

    def _embedding(self, t: int, kept: dict[str, int], previous: float) -> torch.Tensor:
        layer = self.layers[t]
        reduced = self.original_flops - self.flops(kept)
        rest = sum(later.flops for later in self.layers[t + 1:])
        total = self.original_flops or 1.0
        return torch.tensor(layer.embedding + [reduced / total, rest / total, previous], dtype=torch.float32)

    def _state(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        window = embeddings[-self.window_length:]
        pad = [torch.zeros(self._embed_dim)] * (self.window_length - len(window))
        return torch.cat(pad + window)

    def _constrain(self, t: int, action: float, kept: dict[str, int]) -> int:
        """Channels layer ``t`` keeps for ``action``: rounded to ``channel_round``, within the FLOPs budget."""
        layer = self.layers[t]
        n, step = layer.channels, self.channel_round
        action = min(max(action, self.lbound), self.rbound)
        # FLOPs are linear in this layer's ratio with the earlier ones fixed and the later ones at lbound
        trial = dict(kept)
        for later, low in zip(self.layers[t + 1:], self._min_keep[t + 1:]):
            trial[later.name] = low
        f0 = self.flops(dict(trial, **{layer.name: 0}))
        f1 = self.flops(dict(trial, **{layer.name: n}))
        max_keep = n if f1 <= self.target_flops else math.floor((self.target_flops - f0) / (f1 - f0) * n + 1e-9)
        max_keep = min(n, max(max_keep, self._min_keep[t]))
        count = min(n, math.ceil(action * n / step - 1e-9) * step)
        if count > max_keep:
            count = (max_keep // step) * step
            if count < self._min_keep[t]:
                count = max_keep
        return max(count, 1)

    def _apply(self, kept: dict[str, int]) -> None:
        """Set the filter masks of ``kept`` (L1 ranking) layer by layer, refitting each one's consumers."""
        for t, layer in enumerate(self.layers):
            wrapper = self._wrappers[layer.name]
            count = kept[layer.name]
            if count < layer.channels:
                importance = self.masker.get_channel_sum(wrapper, t)
                masks = self.masker.mask_from_importance(self.masker.base_mask(wrapper), importance,
                                                         layer.channels - count)
                self._set_masks(wrapper, masks)
                if self._targets:
                    self._reconstruct([c for c in layer.consumers if c in self._targets])

    def _reward(self, accuracy: float, flops: float) -> float:
        if self.reward_name == "acc_reward":
            return accuracy * 0.01
        return -(100.0 - accuracy) * 0.01 * math.log(max(flops, 1.0))

    def _run_episode(self, episode: int) -> tuple[list, dict]:
        self._restore()
        kept: dict[str, int] = {}
        embeddings: list[torch.Tensor] = []
        states, actions = [], []
        previous = 0.0
        log = _logger.info if self.debug else _logger.debug
        for t, layer in enumerate(self.layers):
            embeddings.append(self._embedding(t, kept, previous))
            state = self._state(embeddings)
            if episode < self.warmup:
                action = self.lbound + (self.rbound - self.lbound) * float(torch.rand((), generator=self.generator))
            else:
                delta = self.init_delta * self.delta_decay ** (episode - self.warmup)
                delta *= max(0.0, 1.0 - self.agent_steps / self.epsilon)
                action = truncated_normal(self.agent.select_action(state), delta, self.lbound, self.rbound,
                                          self.generator)
                self.agent_steps += 1
            kept[layer.name] = self._constrain(t, action, kept)
            previous = kept[layer.name] / layer.channels
            log("AMC episode %d layer %s: action %.4f -> %d / %d channels", episode, layer.name, action,
                kept[layer.name], layer.channels)
            states.append(state)
            actions.append(previous)
        self._apply(kept)
        flops = self.flops(kept)
        accuracy = float(self.evaluator(self.val_loader, self.bound_model))
        reward = self._reward(accuracy, flops)
        row = {"episode": episode, "reward": reward, "accuracy": accuracy, "flops": flops,
               "flops_ratio": flops / self.original_flops,
               "strategy": {layer.name: kept[layer.name] / layer.channels for layer in self.layers},
               "kept": dict(kept)}
        return list(zip(states, actions)), row

    def compress(self) -> nn.Module:
        """Search for ``train_episode`` episodes; apply the best episode's masks and return the model."""
        baseline = None
        for episode in range(self.train_episode):
            steps, row = self._run_episode(episode)
            self.history.append(row)
            if self.best is None or row["reward"] > self.best["reward"]:
                self.best = row
            baseline = row["reward"] if baseline is None else baseline + 0.5 * (row["reward"] - baseline)
            advantage = row["reward"] - baseline
            for i, (state, action) in enumerate(steps):
                done = i == len(steps) - 1
                next_state = state if done else steps[i + 1][0]
                self.agent.observe(state, action, advantage, next_state, done)
            if episode >= self.warmup:
                for _ in steps:
                    self.agent.update_policy()
            _logger.info("AMC episode %d: reward %.4f, accuracy %.2f, FLOPs ratio %.4f", episode, row["reward"],
                         row["accuracy"], row["flops_ratio"])
        self._restore()
        self._apply(self.best["kept"])
        self._write_results()
        return self.bound_model

    def _write_results(self) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        best = self.best
        policy = {"reward": best["reward"], "accuracy": best["accuracy"], "episode": best["episode"],
                  "flops": best["flops"], "original_flops": self.original_flops, "flops_ratio": best["flops_ratio"],
                  "target_flops_ratio": self.flops_ratio, "strategy": best["strategy"], "kept_channels": best["kept"],
                  "model_type": self.model_type, "dataset": self.dataset, "suffix": self.suffix}
        (self.output_dir / "best_policy.json").write_text(json.dumps(policy, indent=2))
        torch.save(self.get_masks(), self.output_dir / "best_masks.pth")
        with open(self.output_dir / "search_history.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["episode", "reward", "accuracy", "flops", "flops_ratio", "strategy"])
            for row in self.history:
                writer.writerow([row["episode"], row["reward"], row["accuracy"], row["flops"], row["flops_ratio"],
                                 json.dumps(row["strategy"])])

    def calc_mask(self, wrapper, **kwargs):
        """AMC sets its masks in :meth:`compress`; nothing to compute per layer."""
        return None

    # -- reconstruction --------------------------------------------------------------------------
    def _reconstructable(self, name: str) -> bool:
        mod = self._modules[name]
        if isinstance(mod, nn.Linear):
            return True
        return (isinstance(mod, nn.Conv2d) and mod.groups == 1 and mod.padding_mode == "zeros"
                and not isinstance(mod.padding, str))

    def _features(self, names: list[str]) -> dict[str, torch.Tensor]:
        """Calibration rows (input patches) of layers ``names`` on the bound model as it is now."""
        rows: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        handles = []
        batch_index = [0]

        def hook_for(name):
            mod = self._modules[name]

            def hook(_module, args):
                x = args[0].detach()
                if isinstance(mod, nn.Linear):
                    rows[name].append(x.reshape(-1, x.shape[-1]).cpu())
                    return
                patches = nn.functional.unfold(x, mod.kernel_size, mod.dilation, mod.padding, mod.stride)
                idx = self._points[name][batch_index[0]].to(patches.device)
                picked = torch.gather(patches, 2, idx.unsqueeze(1).expand(-1, patches.shape[1], -1))
                rows[name].append(picked.permute(0, 2, 1).reshape(-1, patches.shape[1]).cpu())
            return hook

        for name in names:
            handles.append(self._modules[name].register_forward_pre_hook(hook_for(name)))
        was_training = self.bound_model.training
        self.bound_model.eval()
        try:
            with torch.no_grad():
                for i, x in enumerate(self._calibration):
                    batch_index[0] = i
                    self.bound_model(*g.as_tuple(_to(x, self._device)))
        finally:
            for handle in handles:
                handle.remove()
            self.bound_model.train(was_training)
        return {name: torch.cat(parts) for name, parts in rows.items()}

    def _reconstruction_targets(self) -> dict[str, torch.Tensor]:
        """Per consumer: the unpruned model's outputs (without bias) on the sampled calibration points."""
        names = sorted({c for layer in self.layers for c in layer.consumers if self._reconstructable(c)})
        self._points: dict[str, list[torch.Tensor]] = {}
        was_training = self.bound_model.training
        self.bound_model.eval()
        try:
            shapes: dict[str, list[int]] = {}
            handles = []
            for name in names:
                mod = self._modules[name]
                if isinstance(mod, nn.Conv2d):
                    def hook(_module, args, name=name, mod=mod):
                        x = args[0]
                        out_h, out_w = [(x.shape[2 + d] + 2 * mod.padding[d]
                                         - mod.dilation[d] * (mod.kernel_size[d] - 1) - 1) // mod.stride[d] + 1
                                        for d in range(2)]
                        shapes.setdefault(name, []).append((x.shape[0], out_h * out_w))
                    handles.append(mod.register_forward_pre_hook(hook))
            with torch.no_grad():
                for x in self._calibration:
                    self.bound_model(*g.as_tuple(_to(x, self._device)))
            for handle in handles:
                handle.remove()
        finally:
            self.bound_model.train(was_training)
        for name, per_batch in shapes.items():
            self._points[name] = [torch.randint(0, positions, (batch, min(self.n_points_per_layer, positions)),
                                                generator=self.generator) for batch, positions in per_batch]
        features = self._features(names)
        return {name: features[name] @ self._modules[name].weight.detach().reshape(
            self._modules[name].weight.shape[0], -1).t().cpu() for name in names}

    def _reconstruct(self, names: list[str]) -> None:
        """Refit the weights of ``names`` so their outputs on the calibration points match the unpruned model's."""
        if not names:
            return
        features = self._features(names)
        for name in names:
            weight = self._modules[name].weight
            # gelsd (SVD): the default gelsy misjudges the rank of features with zeroed (pruned) channels
            solution = torch.linalg.lstsq(features[name].double(), self._targets[name].double(),
                                          driver="gelsd").solution
            with torch.no_grad():
                weight.copy_(solution.t().reshape(weight.shape).to(weight.dtype))


def _to(x: Any, device: torch.device) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    return tuple(t.to(device) for t in x)
