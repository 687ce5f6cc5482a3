"""Physical environments, registered with gymnasium as ``twinrl/<Name>-v0``."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from twinrl.envs.ap_dynamics import APSelectionParams, APSelectionState
from twinrl.envs.ap_selection import APSelectionEnv
from twinrl.envs.edge_scheduling import EdgeParams, EdgeSchedulingEnv, EdgeState
from twinrl.envs.multi_uav import MultiUAVEnv, MultiUAVParams, MultiUAVState
from twinrl.envs.scenarios import ScenarioSampler

ENV_IDS = ("twinrl/EdgeScheduling-v0", "twinrl/APSelection-v0", "twinrl/MultiUAV-v0")
_ENTRY_POINTS = {
    "twinrl/EdgeScheduling-v0": "twinrl.envs.edge_scheduling:EdgeSchedulingEnv",
    "twinrl/APSelection-v0": "twinrl.envs.ap_selection:APSelectionEnv",
    "twinrl/MultiUAV-v0": "twinrl.envs.multi_uav:MultiUAVEnv",
}
for _env_id, _entry in _ENTRY_POINTS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point=_entry, disable_env_checker=True)

__all__ = [
    "ENV_IDS",
    "APSelectionEnv",
    "APSelectionParams",
    "APSelectionState",
    "EdgeParams",
    "EdgeSchedulingEnv",
    "EdgeState",
    "MultiUAVEnv",
    "MultiUAVParams",
    "MultiUAVState",
    "ScenarioSampler",
]
