"""Agents: the :class:`Agent` protocol, tabular :class:`QLearning` (with :class:`Sarsa` and :class:`ExpectedSarsa`) and :class:`DQN` (torch extra;
torch is imported only when a DQN is built)."""

from __future__ import annotations

from twinrl.agents.base import PHYSICAL, Agent, Transitions
from twinrl.agents.dqn import DQN, DQNConfig
from twinrl.agents.qlearning import QLearning, QLearningConfig
from twinrl.agents.sarsa import ExpectedSarsa, Sarsa

__all__ = [
    "DQN",
    "PHYSICAL",
    "Agent",
    "DQNConfig",
    "ExpectedSarsa",
    "QLearning",
    "QLearningConfig",
    "Sarsa",
    "Transitions",
]
