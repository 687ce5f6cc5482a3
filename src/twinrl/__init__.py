"""twinrl: digital-twin-enhanced reinforcement learning for network resource management."""

from __future__ import annotations

__version__ = "0.1.0"

from twinrl import envs as envs  # registers the environments with gymnasium
from twinrl.contract import Scenario, ScenarioChange
from twinrl.training import Run, train

__all__ = ["Run", "Scenario", "ScenarioChange", "__version__", "envs", "train"]
