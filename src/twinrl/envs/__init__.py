"""Physical environments, registered with gymnasium as ``twinrl/<Name>-v0``."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from twinrl.envs.ap_dynamics import APSelectionParams, APSelectionState
from twinrl.envs.ap_selection import APSelectionEnv
from twinrl.envs.edge_scheduling import EdgeParams, EdgeSchedulingEnv, EdgeState

ENV_IDS = ("twinrl/EdgeScheduling-v0", "twinrl/APSelection-v0")

if "twinrl/EdgeScheduling-v0" not in registry:
    register(
        id="twinrl/EdgeScheduling-v0",
        entry_point="twinrl.envs.edge_scheduling:EdgeSchedulingEnv",
        disable_env_checker=True,
    )
if "twinrl/APSelection-v0" not in registry:
    register(
        id="twinrl/APSelection-v0",
        entry_point="twinrl.envs.ap_selection:APSelectionEnv",
        disable_env_checker=True,
    )

__all__ = [
    "ENV_IDS",
    "APSelectionEnv",
    "APSelectionParams",
    "APSelectionState",
    "EdgeParams",
    "EdgeSchedulingEnv",
    "EdgeState",
]
