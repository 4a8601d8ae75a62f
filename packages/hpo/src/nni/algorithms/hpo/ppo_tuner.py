"""PPO tuner (builtin name ``PPOTuner``): a reinforcement-learning policy over discrete choices.

Example config::

    tuner:
      name: PPOTuner
      classArgs:
        optimize_mode: maximize
        trials_per_update: 20
        lr: 0.05

Search spaces: top-level ``choice`` parameters and the classic NAS ``mutable_layer`` blocks that
NNI annotation generates (``{"_type": "mutable_layer", "_value": {"mutable_layer_0":
{"layer_choice": [...], "optional_inputs": [...], "optional_input_size": n or [min, max]}}}``;
the trial gets ``{"mutable_layer_0": {"chosen_layer": ..., "chosen_inputs": [...]}}``). Any other
type is rejected: PPO learns a policy over a finite sequence of decisions.

How it works: one configuration is one episode of decisions, in search-space order: one per
``choice``; per mutable layer one for the layer, then up to ``max`` picks among the optional
inputs (each pick is an input not yet chosen, or *stop* once at least ``min`` are chosen). The
reward is the trial's metric (negated under ``minimize``), given at the last decision.
Advantages use GAE (``gamma``, ``lam``) on a learned value baseline and are normalised per
update; every ``trials_per_update`` results the policy is trained for ``epochs_per_update``
epochs over minibatches of ``minibatch_size`` trials with the clipped PPO objective
(``cliprange``), value loss (``vf_coef``), entropy bonus (``ent_coef``), global gradient-norm
clipping (``max_grad_norm``) and Adam (``lr``).

Decisions where the docs are silent (they list PPOTuner but document nothing):

* The policy is numpy, not NNI's LSTM: each decision has its own softmax whose logits are
  learned per *previous decision's option* (a first-order, tabular policy; the value baseline is
  learned the same way). It is exact for small NAS spaces, needs no torch, and suggests in
  microseconds.
* The classArgs and defaults are NNI's (``lr`` 3e-4 was chosen for the LSTM: with this tabular
  policy it moves a logit by about ``lr`` per Adam step, so a value around 0.05 learns in a few
  updates; the default is kept for compatibility).
* Trials without a final result are left out of the updates. ``import_data`` adds the imported
  configurations to the next update as episodes (their sampling probabilities are the current
  policy's).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nni.tuner import Tuner
from nni.utils import ClassArgsError, ClassArgsValidator, extract_scalar_reward

from ._tuner_support import check_search_space, parse_optimize_mode

__all__ = ["PPOTuner", "PPOClassArgsValidator"]

_logger = logging.getLogger(__name__)


class PPOClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(kwargs, optional={
            "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
            "trials_per_update": self.range("trials_per_update", int, 1, 99999),
            "epochs_per_update": self.range("epochs_per_update", int, 1, 99999),
            "minibatch_size": self.range("minibatch_size", int, 1, 99999),
            "ent_coef": self.range("ent_coef", float, 0.0, None),
            "lr": self.range("lr", float, 1e-12, None),
            "vf_coef": self.range("vf_coef", float, 0.0, None),
            "max_grad_norm": self.range("max_grad_norm", float, 1e-12, None),
            "gamma": self.range("gamma", float, 0.0, 1.0),
            "lam": self.range("lam", float, 0.0, 1.0),
            "cliprange": self.range("cliprange", float, 1e-6, 1.0),
            "seed": self.range("seed", int, 0, None),
        })
        if kwargs.get("minibatch_size", 4) > kwargs.get("trials_per_update", 20):
            raise ClassArgsError(f"classArgs.minibatch_size must be at most trials_per_update "
                                 f"({kwargs.get('trials_per_update', 20)}), got {kwargs.get('minibatch_size', 4)}")


@dataclass
class _Step:
    """One decision: ``size`` options (plus ``stop`` for an input pick); ``prev`` is the option
    count of the decision before it (1 for the first)."""
    size: int
    prev: int
    kind: str  # "choice" | "layer" | "input"
    key: str
    layer: str | None = None
    low: int = 0  # input picks: how many must be chosen before stop is allowed


@dataclass
class _Episode:
    actions: np.ndarray
    masks: list
    old_logp: np.ndarray
    values: np.ndarray
    reward: float | None = None


class PPOTuner(Tuner):
    """Proximal Policy Optimization over ``choice`` / ``mutable_layer`` search spaces.

    Args:
        optimize_mode: ``'maximize'`` (default) or ``'minimize'``.
        trials_per_update: results collected before each policy update (20).
        epochs_per_update: passes over those results per update (4).
        minibatch_size: trials per gradient step (4).
        ent_coef: entropy bonus weight (0.0).
        lr: Adam learning rate (3e-4; see the module doc).
        vf_coef: value-loss weight (0.5).
        max_grad_norm: global gradient-norm clip (0.5).
        gamma: discount over the decisions of one configuration (0.99).
        lam: GAE lambda (0.95).
        cliprange: PPO ratio clip (0.2).
        seed: random seed (``None``: not reproducible).
    """

    class_args_validator = PPOClassArgsValidator

    def __init__(self, optimize_mode: str = "maximize", trials_per_update: int = 20, epochs_per_update: int = 4,
                 minibatch_size: int = 4, ent_coef: float = 0.0, lr: float = 3e-4, vf_coef: float = 0.5,
                 max_grad_norm: float = 0.5, gamma: float = 0.99, lam: float = 0.95, cliprange: float = 0.2,
                 seed: int | None = None):
        PPOClassArgsValidator().validate_class_args(
            trials_per_update=trials_per_update, epochs_per_update=epochs_per_update, minibatch_size=minibatch_size,
            ent_coef=ent_coef, lr=lr, vf_coef=vf_coef, max_grad_norm=max_grad_norm, gamma=gamma, lam=lam,
            cliprange=cliprange)
        self.optimize_mode = parse_optimize_mode(optimize_mode, "PPOTuner")
        self.trials_per_update = trials_per_update
        self.epochs_per_update = epochs_per_update
        self.minibatch_size = minibatch_size
        self.ent_coef, self.lr, self.vf_coef = float(ent_coef), float(lr), float(vf_coef)
        self.max_grad_norm, self.gamma, self.lam, self.cliprange = float(max_grad_norm), float(gamma), float(lam), float(cliprange)
        self.rng = np.random.default_rng(seed)
        self.search_space: dict | None = None
        self.steps: list[_Step] = []
        self._pending: dict[Any, _Episode] = {}
        self._batch: list[_Episode] = []
        self.updates = 0

    # ------------------------------------------------------------------ search space
    @staticmethod
    def validate_search_space(search_space: Any) -> None:
        """Reject a space PPOTuner cannot search (one-line ``ValueError``); used by the config
        check, which would otherwise refuse the non-standard ``mutable_layer`` type."""
        PPOTuner._parse_steps(search_space)

    def update_search_space(self, search_space: dict) -> None:
        steps = self._parse_steps(search_space)
        self.search_space = search_space
        self.steps = steps
        # policy logits and value baseline, one row per option of the previous decision
        self.theta = [np.zeros((s.prev, s.size + (1 if s.kind == "input" else 0))) for s in steps]
        self.vtab = [np.zeros(s.prev) for s in steps]
        self._adam = [(np.zeros_like(p), np.zeros_like(p)) for p in self.theta + self.vtab]
        self._adam_t = 0
        self._pending, self._batch = {}, []

    @staticmethod
    def _parse_steps(search_space: Any) -> list[_Step]:
        if not isinstance(search_space, dict) or not search_space:
            raise ValueError("search space must be a non-empty mapping of parameter names to {_type, _value}")
        plain = {k: v for k, v in search_space.items() if not (isinstance(v, dict) and v.get("_type") == "mutable_layer")}
        if plain:
            try:
                check_search_space(plain, "PPOTuner", ["choice"], nested=False)
            except ValueError as err:
                raise ValueError(f"{err} (PPOTuner learns a policy over discrete decisions: choice and "
                                 f"mutable_layer only)") from None
        steps: list[_Step] = []
        for key, spec in search_space.items():
            if spec.get("_type") == "mutable_layer":
                steps += PPOTuner._layer_steps(key, spec.get("_value"))
            else:
                steps.append(_Step(len(spec["_value"]), 1, "choice", key))
        for t in range(1, len(steps)):
            steps[t].prev = steps[t - 1].size + (1 if steps[t - 1].kind == "input" else 0)
        return steps

    @staticmethod
    def _layer_steps(key: str, layers: Any) -> list[_Step]:
        if not isinstance(layers, dict) or not layers:
            raise ValueError(f"search space {key!r}: mutable_layer _value must be a mapping of layer names to "
                             f"{{layer_choice, optional_inputs, optional_input_size}}, got {layers!r}")
        steps = []
        for name, layer in layers.items():
            where = f"search space {key!r}/{name}"
            if not isinstance(layer, dict):
                raise ValueError(f"{where}: must be a mapping with layer_choice, optional_inputs, optional_input_size")
            choices = layer.get("layer_choice")
            if not isinstance(choices, list) or not choices:
                raise ValueError(f"{where}: layer_choice must be a non-empty list, got {choices!r}")
            inputs = layer.get("optional_inputs") or []
            if not isinstance(inputs, list):
                raise ValueError(f"{where}: optional_inputs must be a list, got {inputs!r}")
            size = layer.get("optional_input_size", 0 if not inputs else 1)
            ok_int = isinstance(size, int) and not isinstance(size, bool)
            ok_range = isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
            if not (ok_int or ok_range):
                raise ValueError(f"{where}: optional_input_size must be an integer or [min, max], got {size!r}")
            low, high = (size, size) if ok_int else size
            if not 0 <= low <= high or low > len(inputs):
                raise ValueError(f"{where}: optional_input_size must satisfy 0 <= min <= max and min <= "
                                 f"{len(inputs)} optional inputs, got {size!r}")
            steps.append(_Step(len(choices), 1, "layer", key, name))
            for _ in range(min(high, len(inputs))):
                steps.append(_Step(len(inputs), 1, "input", key, name, low))
        return steps

    # ------------------------------------------------------------------ policy
    def _state(self, t: int, actions: np.ndarray) -> int:
        return 0 if t == 0 else int(actions[t - 1])

    def _mask(self, t: int, actions: np.ndarray) -> np.ndarray:
        """Allowed options of decision ``t`` given the earlier ones (input picks only)."""
        step = self.steps[t]
        if step.kind != "input":
            return np.ones(step.size, dtype=bool)
        mask = np.ones(step.size + 1, dtype=bool)
        first = t
        while first > 0 and self.steps[first - 1].kind == "input" and self.steps[first - 1].layer == step.layer \
                and self.steps[first - 1].key == step.key:
            first -= 1
        earlier = [int(a) for a in actions[first:t]]
        if step.size in earlier:  # stopped already: only stop
            mask[:] = False
            mask[step.size] = True
            return mask
        mask[earlier] = False
        mask[step.size] = len(earlier) >= step.low
        return mask

    def _probs(self, t: int, state: int, mask: np.ndarray) -> np.ndarray:
        z = np.where(mask, self.theta[t][state], -np.inf)
        z = z - z[mask].max()
        p = np.exp(z)
        return p / p.sum()

    def _sample(self) -> _Episode:
        n = len(self.steps)
        actions = np.zeros(n, dtype=int)
        masks, logp, values = [], np.zeros(n), np.zeros(n)
        for t in range(n):
            state = self._state(t, actions)
            mask = self._mask(t, actions)
            p = self._probs(t, state, mask)
            a = int(self.rng.choice(len(p), p=p))
            actions[t], logp[t], values[t] = a, math.log(p[a]), self.vtab[t][state]
            masks.append(mask)
        return _Episode(actions, masks, logp, values)

    def _to_parameters(self, actions: np.ndarray) -> dict:
        assert self.search_space is not None
        out: dict = {}
        for t, step in enumerate(self.steps):
            a = int(actions[t])
            spec = self.search_space[step.key]
            if step.kind == "choice":
                out[step.key] = spec["_value"][a]
            elif step.kind == "layer":
                out.setdefault(step.key, {})[step.layer] = {
                    "chosen_layer": spec["_value"][step.layer]["layer_choice"][a], "chosen_inputs": []}
            elif a < step.size:
                out[step.key][step.layer]["chosen_inputs"].append(spec["_value"][step.layer]["optional_inputs"][a])
        for key, spec in self.search_space.items():  # a mutable layer without input picks
            if spec.get("_type") == "mutable_layer":
                for name, layer in spec["_value"].items():
                    out.setdefault(key, {}).setdefault(name, {"chosen_layer": layer["layer_choice"][0], "chosen_inputs": []})
        return out

    def _from_parameters(self, params: dict) -> np.ndarray:
        """Decisions that give ``params`` (``ValueError`` when they are not in the space)."""
        assert self.search_space is not None
        actions = np.zeros(len(self.steps), dtype=int)
        picked: dict = {}
        for t, step in enumerate(self.steps):
            spec = self.search_space[step.key]
            if step.kind == "choice":
                options = spec["_value"]
                if params.get(step.key) not in options:
                    raise ValueError(f"{step.key}={params.get(step.key)!r} is not an option")
                actions[t] = options.index(params[step.key])
                continue
            layer = spec["_value"][step.layer]
            got = params[step.key][step.layer]
            if step.kind == "layer":
                actions[t] = layer["layer_choice"].index(got["chosen_layer"])
                picked[(step.key, step.layer)] = [layer["optional_inputs"].index(i) for i in got.get("chosen_inputs") or []]
            else:
                queue = picked[(step.key, step.layer)]
                actions[t] = queue.pop(0) if queue else step.size
        return actions

    # ------------------------------------------------------------------ tuner API
    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        if self.search_space is None:
            raise RuntimeError("PPOTuner: update_search_space() must be called before generate_parameters()")
        episode = self._sample()
        self._pending[parameter_id] = episode
        return self._to_parameters(episode.actions)

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        episode = self._pending.pop(parameter_id, None)
        if episode is None:
            episode = self._episode_of(parameters)
            if episode is None:
                return
        self._add(episode, value)

    def _add(self, episode: _Episode, value: Any) -> bool:
        reward = extract_scalar_reward(value)
        if not math.isfinite(reward):
            return False
        episode.reward = reward if self.optimize_mode.value == "maximize" else -reward
        self._batch.append(episode)
        if len(self._batch) >= self.trials_per_update:
            self._update(self._batch)
            self._batch = []
        return True

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        self._pending.pop(parameter_id, None)

    def _episode_of(self, parameters: Any) -> _Episode | None:
        try:
            actions = self._from_parameters(parameters)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
            _logger.warning("PPOTuner: ignoring a result whose parameters are not in the space: %s", err)
            return None
        masks, logp, values = [], np.zeros(len(actions)), np.zeros(len(actions))
        for t in range(len(actions)):
            state, mask = self._state(t, actions), self._mask(t, actions)
            p = self._probs(t, state, mask)
            masks.append(mask)
            logp[t], values[t] = math.log(max(p[actions[t]], 1e-12)), self.vtab[t][state]
        return _Episode(actions, masks, logp, values)

    def import_data(self, data: list[dict]) -> int:
        """Imported results become episodes of the next update."""
        if self.search_space is None:
            return 0
        used = 0
        for record in data:
            if not isinstance(record, dict) or "parameter" not in record or "value" not in record:
                continue
            episode = self._episode_of(record["parameter"])
            if episode is not None and self._add(episode, record["value"]):
                used += 1
        return used

    # ------------------------------------------------------------------ PPO update
    def _update(self, batch: list[_Episode]) -> None:
        n, T = len(batch), len(self.steps)
        adv = np.zeros((n, T))
        for i, ep in enumerate(batch):
            last = 0.0
            for t in reversed(range(T)):
                r = ep.reward if t == T - 1 else 0.0
                next_v = ep.values[t + 1] if t + 1 < T else 0.0
                delta = r + self.gamma * next_v - ep.values[t]
                last = delta + self.gamma * self.lam * last
                adv[i, t] = last
        returns = adv + np.array([ep.values for ep in batch])
        norm_adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        for _ in range(self.epochs_per_update):
            order = self.rng.permutation(n)
            for start in range(0, n, self.minibatch_size):
                self._gradient_step([batch[i] for i in order[start:start + self.minibatch_size]],
                                    norm_adv[order[start:start + self.minibatch_size]],
                                    returns[order[start:start + self.minibatch_size]])
        self.updates += 1

    def _gradient_step(self, episodes: list[_Episode], adv: np.ndarray, returns: np.ndarray) -> None:
        g_theta = [np.zeros_like(p) for p in self.theta]
        g_v = [np.zeros_like(v) for v in self.vtab]
        count = len(episodes) * len(self.steps)
        for i, ep in enumerate(episodes):
            for t in range(len(self.steps)):
                state, mask, a = self._state(t, ep.actions), ep.masks[t], int(ep.actions[t])
                p = self._probs(t, state, mask)
                ratio = math.exp(math.log(max(p[a], 1e-12)) - ep.old_logp[t])
                A = adv[i, t]
                # d(-min(r A, clip(r) A))/d logp: -r A where the unclipped term is the minimum
                active = (A >= 0 and ratio <= 1 + self.cliprange) or (A < 0 and ratio >= 1 - self.cliprange)
                dlogp = -A * ratio if active else 0.0
                onehot = np.zeros_like(p)
                onehot[a] = 1.0
                grad = dlogp * (onehot - p)
                if self.ent_coef:
                    logp = np.where(mask, np.log(np.maximum(p, 1e-12)), 0.0)
                    entropy = -(p * logp).sum()
                    grad += self.ent_coef * p * (logp + entropy)  # gradient of -ent_coef * H
                g_theta[t][state] += np.where(mask, grad, 0.0) / count
                g_v[t][state] += self.vf_coef * (self.vtab[t][state] - returns[i, t]) / count
        grads = g_theta + g_v
        norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
        scale = min(1.0, self.max_grad_norm / (norm + 1e-12))
        self._adam_t += 1
        b1, b2 = 0.9, 0.999
        for k, (param, g) in enumerate(zip(self.theta + self.vtab, grads)):
            m, v = self._adam[k]
            g = g * scale
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            m_hat = m / (1 - b1 ** self._adam_t)
            v_hat = v / (1 - b2 ** self._adam_t)
            param -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)

    def best_probability(self, parameters: dict) -> float:
        """The policy's probability of producing ``parameters`` (for inspection and tests)."""
        actions = self._from_parameters(parameters)
        prob = 1.0
        for t in range(len(actions)):
            p = self._probs(t, self._state(t, actions), self._mask(t, actions))
            prob *= float(p[actions[t]])
        return prob
