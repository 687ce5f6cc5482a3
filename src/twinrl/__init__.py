"""twinrl: digital-twin-enhanced reinforcement learning for network resource management."""

from __future__ import annotations

from twinrl import envs as envs  # registers the environments with gymnasium

__version__ = "0.1.0"
