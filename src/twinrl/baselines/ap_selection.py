"""Reference policies for URLLC access-point selection (paper 000, Section IV-A).

A policy maps ``(params, state)`` (an unbatched :class:`~twinrl.envs.ap_dynamics.APSelectionState`)
to an AP index. Ties are always broken towards the lowest AP index.

* :func:`nearest_ap`: the AP whose centre is nearest to the vehicle.
* :func:`fastest_ap`: the highest-rate AP covering the vehicle now (fallback: nearest).
* :func:`cheapest_feasible_ap`: the cheapest AP on which the task would not fail, judged by the
  dynamics (fallback: nearest).
* :func:`twin_oracle_ap`: tries every AP in a copy of the state with the batched dynamics (what a
  perfect twin does) and picks the best immediate reward. It is greedy per task, not optimal over
  the pass.

:func:`evaluate_policy` runs a policy for whole passes and reports the mean episode reward (the
reference for normalized reward), the URLLC failure count and ratio, and the mean latency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

import numpy as np
from numpy.typing import NDArray

from twinrl.envs.ap_dynamics import APSelectionParams, APSelectionState, step_batch, transmit
from twinrl.envs.ap_selection import APSelectionEnv

APPolicy = Callable[[APSelectionParams, APSelectionState], int]
"""A policy: ``policy(params, state) -> AP index``."""


def _position(params: APSelectionParams, state: APSelectionState) -> float:
    return float(params.speed * int(state.t) * params.dt)


def _all_aps(params: APSelectionParams) -> NDArray[np.int64]:
    return np.arange(params.n_aps, dtype=np.int64)


def nearest_ap(params: APSelectionParams, state: APSelectionState) -> int:
    """The AP whose position is nearest to the vehicle's."""
    distance = np.abs(np.asarray(params.ap_positions) - _position(params, state))
    return int(np.argmin(distance))


def fastest_ap(params: APSelectionParams, state: APSelectionState) -> int:
    """The highest-rate AP whose coverage contains the vehicle now; else the nearest AP."""
    distance = np.abs(np.asarray(params.ap_positions) - _position(params, state))
    inside = distance <= np.asarray(params.ap_radii)
    if not inside.any():
        return nearest_ap(params, state)
    return int(np.argmax(np.where(inside, np.asarray(params.ap_rates), -np.inf)))


def feasible_aps(params: APSelectionParams, state: APSelectionState) -> NDArray[np.bool_]:
    """Per AP, whether the current task would succeed on it (by the dynamics, queues included)."""
    return ~transmit(params, state.tile(params.n_aps), _all_aps(params)).failed


def cheapest_feasible_ap(params: APSelectionParams, state: APSelectionState) -> int:
    """The cheapest AP on which the current task would not fail; else the nearest AP."""
    feasible = feasible_aps(params, state)
    if not feasible.any():
        return nearest_ap(params, state)
    return int(np.argmin(np.where(feasible, np.asarray(params.ap_prices), np.inf)))


def immediate_rewards(params: APSelectionParams, state: APSelectionState) -> NDArray[np.float64]:
    """The reward of the current task on each AP, from one batched call of the dynamics."""
    _, reward, _ = step_batch(params, state.tile(params.n_aps), _all_aps(params))
    return reward


def twin_oracle_ap(params: APSelectionParams, state: APSelectionState) -> int:
    """Try every AP in a copy of the state and pick the best immediate reward (greedy twin)."""
    return int(np.argmax(immediate_rewards(params, state)))


AP_POLICIES: dict[str, APPolicy] = {
    "nearest": nearest_ap,
    "fastest": fastest_ap,
    "cheapest_feasible": cheapest_feasible_ap,
    "twin_oracle": twin_oracle_ap,
}
"""The reference policies by name."""


def evaluate_policy(
    params: APSelectionParams, policy: APPolicy, episodes: int = 20, seed: int = 0
) -> dict[str, float]:
    """Run ``policy`` for ``episodes`` passes of the road and summarize them.

    The env is reset with ``seed`` once, then without a seed, so the same ``(params, seed)``
    always gives the same passes whatever the policy.

    Returns:
        ``mean_reward`` and ``std_reward`` (per episode), ``failures`` (failed tasks in total),
        ``failure_ratio`` (failed / tasks), ``mean_latency`` (s, over successful tasks; NaN if
        none), ``episodes`` and ``tasks``.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    env = APSelectionEnv(**{f.name: getattr(params, f.name) for f in fields(params)})
    returns, latencies, failures, tasks = [], [], 0, 0
    for episode in range(episodes):
        env.reset(seed=seed if episode == 0 else None)
        total, terminated = 0.0, False
        while not terminated:
            _, reward, terminated, _, info = env.step(policy(params, env.get_state()))
            total += reward
            tasks += 1
            if info["failed"]:
                failures += 1
            else:
                latencies.append(info["latency"])
        returns.append(total)
    return {
        "mean_reward": float(np.mean(returns)),
        "std_reward": float(np.std(returns)),
        "failures": float(failures),
        "failure_ratio": failures / tasks,
        "mean_latency": float(np.mean(latencies)) if latencies else float("nan"),
        "episodes": float(episodes),
        "tasks": float(tasks),
    }
