"""Policy-based reinforcement learning over the sequence of choices (plain torch; no tianshou).

The search space is seen as an episodic environment (:class:`ModelEvaluationEnv`): one episode builds one
model, step ``t`` picks a candidate of the ``t``-th choice of the dry-run space, and the only reward is the
model's metric at the end. A policy is an autoregressive controller (an LSTM cell over the choices, as in
Zoph & Le) updated by policy gradient after each collect.
"""
from __future__ import annotations

import abc
import contextlib
import logging
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn as nn

from .. import execution
from ..graph import Model
from ..mutator import InvalidMutation, Mutator
from .base import BaseStrategy
from .utils import ChoiceSpace, ModelTracker, metric_of

__all__ = ['ModelEvaluationEnv', 'ChoiceController', 'BasePolicy', 'PPOPolicy', 'ReinforcePolicy', 'PolicyBasedRL']

_logger = logging.getLogger(__name__)


class ModelEvaluationEnv:
    """The search space as an RL environment: ``num_steps`` decisions, step ``t`` with ``candidate_counts[t]`` actions.

    Attributes:
        candidate_counts: number of candidates of each choice, in the order the mutators ask them.
        names: a readable name per choice (the mutator label).
        num_steps: ``len(candidate_counts)``.
    """

    def __init__(self, candidate_counts: Sequence[int], names: Optional[Sequence[str]] = None):
        self.candidate_counts = list(candidate_counts)
        self.names = list(names) if names is not None else [str(i) for i in range(len(self.candidate_counts))]
        self.num_steps = len(self.candidate_counts)


class ChoiceController(nn.Module):
    """An LSTM-cell controller: at step ``t`` it outputs logits over the ``t``-th choice's candidates and
    feeds the embedding of the chosen one to the next step."""

    def __init__(self, candidate_counts: Sequence[int], hidden_size: int = 64):
        super().__init__()
        self.candidate_counts = list(candidate_counts)
        self.cell = nn.LSTMCell(hidden_size, hidden_size)
        self.start = nn.Parameter(torch.zeros(1, hidden_size))
        self.embeddings = nn.ModuleList(nn.Embedding(n, hidden_size) for n in self.candidate_counts)
        self.heads = nn.ModuleList(nn.Linear(hidden_size, n) for n in self.candidate_counts)

    def forward(self, batch_size: int, actions: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None):
        """Sample ``batch_size`` episodes (with ``generator``, if given) or score the given ``actions`` (``[B, T]``).

        Returns ``(actions [B, T], log_prob [B], entropy [B])``.
        """
        if actions is not None:
            batch_size = actions.shape[0]
        x = self.start.expand(batch_size, -1)
        state = None
        taken, log_prob, entropy = [], torch.zeros(batch_size), torch.zeros(batch_size)
        for t, head in enumerate(self.heads):
            h, c = self.cell(x, state)
            state = (h, c)
            dist = torch.distributions.Categorical(logits=head(h))
            if actions is not None:
                a = actions[:, t]
            else:
                a = torch.multinomial(dist.probs, 1, generator=generator).squeeze(1)
            taken.append(a)
            log_prob = log_prob + dist.log_prob(a)
            entropy = entropy + dist.entropy()
            x = self.embeddings[t](a)
        acts = torch.stack(taken, 1) if taken else torch.zeros(batch_size, 0, dtype=torch.long)
        return acts, log_prob, entropy


class BasePolicy(nn.Module, abc.ABC):
    """What :class:`PolicyBasedRL` needs from a policy: :meth:`sample` and :meth:`update`."""

    def __init__(self, env: ModelEvaluationEnv, hidden_size: int = 64, lr: float = 3e-3, entropy_coef: float = 1e-3):
        super().__init__()
        self.env = env
        self.controller = ChoiceController(env.candidate_counts, hidden_size)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr)
        self.entropy_coef = entropy_coef
        self.generator: Optional[torch.Generator] = None  # PolicyBasedRL(seed=...) sets a seeded one

    @torch.no_grad()
    def sample(self, n: int) -> List[List[int]]:
        """``n`` episodes: each a list of candidate indices, one per step."""
        actions, _, _ = self.controller(n, generator=self.generator)
        return actions.tolist()

    @abc.abstractmethod
    def update(self, actions: List[List[int]], rewards: List[float]) -> None:
        """Learn from finished episodes (their actions and final rewards)."""

    @staticmethod
    def _advantages(rewards: List[float]) -> torch.Tensor:
        r = torch.tensor(rewards, dtype=torch.float32)
        # one reward per episode: the batch mean is the baseline; scaling by the std makes the step size
        # independent of the metric's scale
        adv = r - r.mean()
        if len(rewards) > 1 and r.std() > 1e-8:
            adv = adv / r.std()
        return adv


class ReinforcePolicy(BasePolicy):
    """REINFORCE (Williams 1992) with the batch-mean baseline: one gradient step per collect."""

    def update(self, actions: List[List[int]], rewards: List[float]) -> None:
        if not actions:
            return
        adv = self._advantages(rewards)
        _, log_prob, entropy = self.controller(len(actions), torch.tensor(actions, dtype=torch.long))
        loss = -(adv * log_prob).mean() - self.entropy_coef * entropy.mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


class PPOPolicy(BasePolicy):
    """PPO (Schulman et al. 2017) with the clipped surrogate objective, ``repeat`` epochs per collect, no value
    network (an episode is one decision sequence with one reward, so the batch-mean baseline is used)."""

    def __init__(self, env: ModelEvaluationEnv, hidden_size: int = 64, lr: float = 3e-3, entropy_coef: float = 1e-3,
                 clip: float = 0.2, repeat: int = 4):
        super().__init__(env, hidden_size, lr, entropy_coef)
        self.clip = clip
        self.repeat = repeat

    def update(self, actions: List[List[int]], rewards: List[float]) -> None:
        if not actions:
            return
        adv = self._advantages(rewards)
        acts = torch.tensor(actions, dtype=torch.long)
        with torch.no_grad():
            _, old_log_prob, _ = self.controller(len(actions), acts)
        for _ in range(self.repeat):
            _, log_prob, entropy = self.controller(len(actions), acts)
            ratio = torch.exp(log_prob - old_log_prob)
            surrogate = torch.min(ratio * adv, torch.clamp(ratio, 1 - self.clip, 1 + self.clip) * adv)
            loss = -surrogate.mean() - self.entropy_coef * entropy.mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()


@contextlib.contextmanager
def _single_thread():
    # the controller is tiny: torch's intra-op threads only add synchronisation (seconds per update on a busy
    # machine), so sampling and updates run on one thread (restored after)
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _default_policy_fn(env: ModelEvaluationEnv) -> BasePolicy:
    """The default policy: PPO over an LSTM controller."""
    return PPOPolicy(env)


class PolicyBasedRL(BaseStrategy):
    """Policy-based reinforcement learning: a controller samples architectures and learns from their metrics.

    Each collect samples ``trial_per_collect`` architectures from the policy, trains them (as many at a time as
    the engine allows), then updates the policy with their metrics as rewards (maximized; failed models are left
    out of the update). PPO by default, in plain torch (NNI v2.5 wraps tianshou's PPO).

    Args:
        max_collect: how many collects (policy updates) to run.
        trial_per_collect: models (episodes) per collect.
        policy_fn: ``policy_fn(env) -> policy`` with ``env`` a :class:`ModelEvaluationEnv`; the policy must have
            ``sample(n) -> list of index lists`` and ``update(actions, rewards)`` (e.g. a :class:`PPOPolicy` or
            :class:`ReinforcePolicy` with other settings: ``lambda env: ReinforcePolicy(env, lr=1e-2)``).
        seed: seeds the policy's initial weights and its sampling generator, leaving torch's global generator as it
            was (``None``: not reproducible). Not in NNI v2.5.
    """

    def __init__(self, max_collect: int = 100, trial_per_collect: int = 20,
                 policy_fn: Optional[Callable[[ModelEvaluationEnv], BasePolicy]] = None, seed: Optional[int] = None):
        for name, value in (('max_collect', max_collect), ('trial_per_collect', trial_per_collect)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'PolicyBasedRL: {name} must be an int >= 1, got {value!r}')
        if policy_fn is not None and not callable(policy_fn):
            raise ValueError(f'PolicyBasedRL: policy_fn must be a callable env -> policy, got {type(policy_fn).__name__}')
        self.max_collect = max_collect
        self.trial_per_collect = trial_per_collect
        self.policy_fn = policy_fn or _default_policy_fn
        self.seed = seed
        self.policy: Optional[BasePolicy] = None

    def run(self, base_model: Model, applied_mutators: List[Mutator]) -> None:
        space = ChoiceSpace(base_model, applied_mutators)
        env = ModelEvaluationEnv(space.counts, space.names)
        with _single_thread(), torch.random.fork_rng(devices=[]):
            if self.seed is not None:
                torch.manual_seed(self.seed)  # the policy's initial weights; the global generator is restored after
            self.policy = self.policy_fn(env)
        if self.seed is not None and hasattr(self.policy, 'generator'):
            self.policy.generator = torch.Generator().manual_seed(self.seed)
        for _ in range(self.max_collect):
            if not self._collect(space, base_model):
                return

    def _collect(self, space: ChoiceSpace, base_model: Model) -> bool:
        """One collect and update; False once the budget is exhausted."""
        assert self.policy is not None
        with _single_thread():
            episodes = self.policy.sample(self.trial_per_collect)
        submitted: List[tuple] = []
        tracker = ModelTracker()
        stopped = False
        for actions in episodes:
            if not tracker.next_slot():
                stopped = True
                break
            try:
                model = space.build(base_model, actions)
            except InvalidMutation:
                continue  # not trainable: no reward for it
            tracker.submit(model)
            submitted.append((actions, model))
        tracker.wait_all()
        rewards = [(actions, metric_of(model)) for actions, model in submitted]
        rewards = [(a, r) for a, r in rewards if r is not None]
        if rewards:
            with _single_thread():
                self.policy.update([a for a, _ in rewards], [r for _, r in rewards])
        return not stopped and not execution.budget_exhausted()
