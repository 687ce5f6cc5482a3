"""Physical environments, registered with gymnasium as ``twinrl/<Name>-v0``."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from twinrl.envs.edge_scheduling import EdgeParams, EdgeSchedulingEnv, EdgeState
from twinrl.envs.multi_uav import MultiUAVEnv, MultiUAVParams, MultiUAVState

ENV_IDS = ("twinrl/EdgeScheduling-v0", "twinrl/MultiUAV-v0")

if "twinrl/EdgeScheduling-v0" not in registry:
    register(
        id="twinrl/EdgeScheduling-v0",
        entry_point="twinrl.envs.edge_scheduling:EdgeSchedulingEnv",
        disable_env_checker=True,
    )

if "twinrl/MultiUAV-v0" not in registry:
    register(
        id="twinrl/MultiUAV-v0",
        entry_point="twinrl.envs.multi_uav:MultiUAVEnv",
        disable_env_checker=True,
    )

__all__ = [
    "ENV_IDS",
    "EdgeParams",
    "EdgeSchedulingEnv",
    "EdgeState",
    "MultiUAVEnv",
    "MultiUAVParams",
    "MultiUAVState",
]
