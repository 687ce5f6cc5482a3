"""Pictures of multi-UAV runs: UAV trajectories over the users' paths."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.baselines.multi_uav import UAVPolicy
from twinrl.envs.multi_uav import MultiUAVEnv, MultiUAVParams
from twinrl.experiments.plotting import pyplot, save

Trajectory = tuple[NDArray[np.float64], NDArray[np.float64], float]
"""UAV positions ``(T + 1, M, 2)``, user positions ``(T + 1, N, 2)``, mean rate (Mbit/s)."""
Policy = Callable[[Any], Any]
"""Maps an observation to an action of the env (e.g. ``lambda o: agent.act(o, explore=False)``)."""


def rollout_positions(
    params: MultiUAVParams, policy: Policy | UAVPolicy, *, seed: int = 0, reads_state: bool = False
) -> Trajectory:
    """One episode of ``policy``: UAV positions ``(T + 1, M, 2)``, user positions
    ``(T + 1, N, 2)`` and the mean user rate per step (Mbit/s). ``reads_state``: ``policy`` is a
    reference policy of :mod:`twinrl.baselines.multi_uav`, called as ``policy(params, state,
    rng)`` with ``rng = default_rng(seed)``, instead of on the observation."""
    env = MultiUAVEnv(**{f.name: getattr(params, f.name) for f in fields(params)})
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    state = env.get_state()
    uavs, users, rewards = [state.uav_pos], [state.user_pos], []
    done = False
    while not done:
        action = policy(params, state, rng) if reads_state else policy(obs)  # type: ignore[call-arg,arg-type]
        obs, _, terminated, truncated, info = env.step(action)
        state = env.get_state()
        uavs.append(state.uav_pos)
        users.append(state.user_pos)
        rewards.append(info["mean_rate"])  # the rate, also when the reward is centred
        done = terminated or truncated
    return np.array(uavs), np.array(users), float(np.mean(rewards))


def plot_trajectories(params: MultiUAVParams, runs: dict[str, Trajectory], path: Path) -> None:
    """One panel per run of :func:`rollout_positions`: users' paths (grey, dot at the end), UAV
    paths (colours, from the hangar star). Writes nothing without matplotlib."""
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, len(runs), figsize=(4.6 * len(runs), 4.6), squeeze=False)
    for ax, (name, (uavs, users, rate)) in zip(axes[0], runs.items(), strict=True):
        uavs, users = np.asarray(uavs), np.asarray(users)
        for u in range(users.shape[1]):
            ax.plot(users[:, u, 0], users[:, u, 1], color="0.6", lw=0.8)
            ax.plot(users[-1, u, 0], users[-1, u, 1], "o", color="0.4", ms=3)
        for m in range(uavs.shape[1]):
            ax.plot(uavs[:, m, 0], uavs[:, m, 1], lw=1.6, label=f"UAV {m}")
            ax.plot(uavs[-1, m, 0], uavs[-1, m, 1], "s", color=ax.lines[-1].get_color(), ms=5)
        ax.plot(*params.hangar, "*", color="k", ms=12, label="hangar")
        side = params.area_side
        ax.set(xlim=(-2, side + 2), ylim=(-2, side + 2), aspect="equal",
               title=f"{name}: {rate:.2f} Mbit/s", xlabel="x (m)", ylabel="y (m)")  # fmt: skip
    axes[0][0].legend(loc="upper right", fontsize=7)
    fig.suptitle("UAV trajectories over the users' paths (one episode; squares: final positions)")
    save(plt, fig, path)
