"""The DDPG agent of :class:`~.amc_pruner.AMCPruner` (plain torch): actor / critic networks with
target copies updated by soft update, a ring-buffer replay memory and truncated-normal exploration.

The actor maps a layer's state to a preserve ratio in [0, 1] (sigmoid output); the critic scores a
(state, action) pair. An update samples a minibatch from the memory, regresses the critic on
``r + discount * (1 - done) * Q'(s', mu'(s'))`` and moves the actor along ``-Q(s, mu(s))``; then both
target networks move towards the learned ones by ``tau``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["DDPGAgent", "ReplayMemory", "truncated_normal"]


class _Actor(nn.Module):
    def __init__(self, state_dim: int, hidden1: int, hidden2: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(state_dim, hidden1), nn.ReLU(), nn.Linear(hidden1, hidden2), nn.ReLU(),
                                 nn.Linear(hidden2, 1), nn.Sigmoid())

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.net(state)


class _Critic(nn.Module):
    def __init__(self, state_dim: int, hidden1: int, hidden2: int):
        super().__init__()
        self.state_in = nn.Linear(state_dim, hidden1)
        self.action_in = nn.Linear(1, hidden1)
        self.net = nn.Sequential(nn.ReLU(), nn.Linear(hidden1, hidden2), nn.ReLU(), nn.Linear(hidden2, 1))

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(self.state_in(state) + self.action_in(action))


class ReplayMemory:
    """Fixed-capacity ring buffer of ``(state, action, reward, next_state, done)`` transitions."""

    def __init__(self, capacity: int, state_dim: int):
        self.capacity = capacity
        self.states = torch.zeros(capacity, state_dim)
        self.actions = torch.zeros(capacity, 1)
        self.rewards = torch.zeros(capacity, 1)
        self.next_states = torch.zeros(capacity, state_dim)
        self.dones = torch.zeros(capacity, 1)
        self.size = 0
        self._next = 0

    def __len__(self) -> int:
        return self.size

    def append(self, state: torch.Tensor, action: float, reward: float, next_state: torch.Tensor, done: bool) -> None:
        i = self._next
        self.states[i] = state
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_states[i] = next_state
        self.dones[i] = float(done)
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        idx = torch.randint(0, self.size, (min(batch_size, self.size),), generator=generator)
        return self.states[idx], self.actions[idx], self.rewards[idx], self.next_states[idx], self.dones[idx]


def truncated_normal(mean: float, std: float, low: float, high: float, generator: torch.Generator) -> float:
    """One sample of N(mean, std) truncated to [low, high] (inverse-CDF sampling)."""
    if std <= 1e-12:
        return min(max(mean, low), high)
    a = torch.special.ndtr(torch.tensor((low - mean) / std, dtype=torch.float64))
    b = torch.special.ndtr(torch.tensor((high - mean) / std, dtype=torch.float64))
    if float(b - a) < 1e-12:  # the mean lies far outside [low, high]: the nearer bound
        return low if mean < low else high
    u = a + (b - a) * torch.rand((), generator=generator, dtype=torch.float64)
    value = mean + std * float(torch.special.ndtri(u))
    return min(max(value, low), high)


class DDPGAgent:
    """Deep deterministic policy gradient over a 1-D action (the preserve ratio).

    Args:
        state_dim: size of a state vector.
        hidden1, hidden2: widths of the two hidden layers of actor and critic.
        lr_a, lr_c: Adam learning rates of actor and critic.
        discount: factor of the next state's target Q value.
        tau: soft-update rate of the target networks (``target = (1 - tau) * target + tau * learned``).
        bsize: minibatch size.
        memory_size: replay memory capacity (transitions).
        seed: seeds the agent's own generator (network init, sampling, noise).
    """

    def __init__(self, state_dim: int, hidden1: int, hidden2: int, lr_a: float, lr_c: float, discount: float,
                 tau: float, bsize: int, memory_size: int, seed: int | None = None):
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)
        else:
            self.generator.seed()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2 ** 31 - 1, (1,), generator=self.generator)))
            self.actor = _Actor(state_dim, hidden1, hidden2)
            self.critic = _Critic(state_dim, hidden1, hidden2)
        self.actor_target = _Actor(state_dim, hidden1, hidden2)
        self.critic_target = _Critic(state_dim, hidden1, hidden2)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=lr_a)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=lr_c)
        self.discount = discount
        self.tau = tau
        self.bsize = bsize
        self.memory = ReplayMemory(memory_size, state_dim)
        #: losses of the last update (None before the first one)
        self.last_actor_loss: float | None = None
        self.last_critic_loss: float | None = None
        self.updates = 0

    def select_action(self, state: torch.Tensor) -> float:
        """The actor's preserve ratio for ``state`` (no noise)."""
        with torch.no_grad():
            return float(self.actor(state.unsqueeze(0)).item())

    def observe(self, state, action, reward, next_state, done) -> None:
        """Store one transition in the replay memory."""
        self.memory.append(state, action, reward, next_state, done)

    def update_policy(self) -> None:
        """One DDPG step on a minibatch from the memory, then the soft update of the targets."""
        if len(self.memory) == 0:
            return
        states, actions, rewards, next_states, dones = self.memory.sample(self.bsize, self.generator)
        with torch.no_grad():
            next_q = self.critic_target(next_states, self.actor_target(next_states))
            target_q = rewards + self.discount * (1.0 - dones) * next_q
        critic_loss = nn.functional.mse_loss(self.critic(states, actions), target_q)
        self.critic_optim.zero_grad()
        critic_loss.backward()
        self.critic_optim.step()

        actor_loss = -self.critic(states, self.actor(states)).mean()
        self.actor_optim.zero_grad()
        actor_loss.backward()
        self.actor_optim.step()

        self._soft_update(self.actor_target, self.actor)
        self._soft_update(self.critic_target, self.critic)
        self.last_actor_loss = float(actor_loss.item())
        self.last_critic_loss = float(critic_loss.item())
        if not (math.isfinite(self.last_actor_loss) and math.isfinite(self.last_critic_loss)):
            raise RuntimeError(f"AMCPruner: the DDPG losses diverged (actor {self.last_actor_loss}, critic "
                               f"{self.last_critic_loss}); lower lr_a / lr_c")
        self.updates += 1

    def _soft_update(self, target: nn.Module, source: nn.Module) -> None:
        with torch.no_grad():
            for t, s in zip(target.parameters(), source.parameters()):
                t.mul_(1.0 - self.tau).add_(s, alpha=self.tau)
