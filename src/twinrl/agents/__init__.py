"""Agents: the :class:`Agent` protocol and tabular :class:`QLearning`."""

from __future__ import annotations

from twinrl.agents.base import PHYSICAL, Agent, Transitions
from twinrl.agents.qlearning import QLearning, QLearningConfig

__all__ = ["PHYSICAL", "Agent", "QLearning", "QLearningConfig", "Transitions"]
