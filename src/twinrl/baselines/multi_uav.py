"""Reference policies for ``MultiUAV-v0``: hover at the hangar, random moves, static k-means.

A policy maps ``(params, state, rng)`` to per-UAV moves ``(M,)`` (0 stay, 1 +x, 2 -x, 3 +y, 4 -y).
The static k-means placement flies each UAV to a centroid of the users' starting positions and
hovers there: the reference for normalized reward in the ``fig5`` report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.envs.multi_uav import MultiUAVEnv, MultiUAVParams, MultiUAVState, encode_action

UAVPolicy = Callable[[MultiUAVParams, MultiUAVState, np.random.Generator], NDArray[np.int64]]


def kmeans(points: NDArray[np.float64], k: int, *, iterations: int = 50) -> NDArray[np.float64]:
    """Lloyd's k-means with a deterministic farthest-point start; returns ``(k, 2)`` centroids.

    The start is the point nearest the mean, then repeatedly the point farthest from the chosen
    ones, so equal inputs give equal centroids. An emptied cluster keeps its previous centroid.
    """
    points = np.asarray(points, dtype=np.float64)
    if not 1 <= k <= len(points):
        raise ValueError(f"k={k} is out of range; allowed: 1..{len(points)} (the number of points)")
    first = int(np.argmin(((points - points.mean(axis=0)) ** 2).sum(axis=1)))
    centres = [points[first]]
    for _ in range(1, k):
        d2 = ((points[:, None, :] - np.array(centres)[None]) ** 2).sum(axis=2).min(axis=1)
        centres.append(points[int(np.argmax(d2))])
    c = np.array(centres)
    for _ in range(iterations):
        label = ((points[:, None, :] - c[None]) ** 2).sum(axis=2).argmin(axis=1)
        new = np.array([points[label == j].mean(axis=0) if (label == j).any() else c[j]
                        for j in range(k)])  # fmt: skip
        if np.allclose(new, c):
            break
        c = new
    return c


def moves_toward(params: MultiUAVParams, uav_pos: NDArray[Any], targets: NDArray[Any]) -> NDArray:
    """Per UAV, the move that shortens the larger axis gap to its target by a full step, or stay
    when both gaps are under half a step."""
    step = params.uav_speed * params.slot
    gap = np.asarray(targets, dtype=np.float64) - np.asarray(uav_pos, dtype=np.float64)
    axis = np.argmax(np.abs(gap), axis=1)
    size = np.abs(gap[np.arange(len(gap)), axis])
    positive = gap[np.arange(len(gap)), axis] > 0
    move = np.where(axis == 0, np.where(positive, 1, 2), np.where(positive, 3, 4))
    return np.where(size < step / 2, 0, move).astype(np.int64)


def hover(params: MultiUAVParams, state: MultiUAVState, rng: np.random.Generator) -> NDArray:
    """Every UAV stays where it is (at the hangar from the start)."""
    return np.zeros(params.n_uavs, dtype=np.int64)


def random_moves(params: MultiUAVParams, state: MultiUAVState, rng: np.random.Generator) -> NDArray:
    """A uniformly random move per UAV."""
    return rng.integers(0, 5, size=params.n_uavs).astype(np.int64)


class StaticKMeans:
    """Fly to k-means centroids of the users' positions at the episode's first step, then hover.

    UAV ``m`` takes centroid ``m`` after sorting the centroids by angle around the hangar, so the
    assignment does not depend on the clustering's order.
    """

    def __init__(self) -> None:
        self._targets: NDArray[np.float64] | None = None

    def __call__(
        self, params: MultiUAVParams, state: MultiUAVState, rng: np.random.Generator
    ) -> NDArray[np.int64]:
        if self._targets is None or int(state.step) == 0:
            c = kmeans(state.user_pos, params.n_uavs)
            rel = c - np.asarray(params.hangar)
            self._targets = c[np.argsort(np.arctan2(rel[:, 1], rel[:, 0]), kind="stable")]
        return moves_toward(params, state.uav_pos, self._targets)


def uav_policies() -> dict[str, UAVPolicy]:
    """Fresh instances of the reference policies by name."""
    return {"hover": hover, "random": random_moves, "kmeans": StaticKMeans()}


def evaluate_uav_policy(
    params: MultiUAVParams, policy: UAVPolicy, *, episodes: int = 10, seed: int = 0
) -> dict[str, float]:
    """Mean user rate per step (Mbit/s) of ``policy`` over ``episodes`` episodes, and its mean
    reward per step (``mean_reward``: the env's reward, e.g. a coverage share).

    The env is reset with ``seed`` once and then without one, so every policy sees the same
    users for the same ``(params, seed)``; the policy's own randomness comes from
    ``SeedSequence([seed, 1])``.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    env = MultiUAVEnv(**{f.name: getattr(params, f.name) for f in fields(params)})
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    returns, rewards = [], []
    for episode in range(episodes):
        env.reset(seed=seed if episode == 0 else None)
        total, reward, steps, done = 0.0, 0.0, 0, False
        while not done:
            moves = policy(params, env.get_state(), rng)
            action = moves if params.action_space == "multi" else int(encode_action(params, moves))
            _, r, terminated, truncated, info = env.step(action)
            total, reward, steps = total + info["mean_rate"], reward + float(r), steps + 1
            done = terminated or truncated
        returns.append(total / steps)
        rewards.append(reward / steps)
    return {"mean_rate": float(np.mean(returns)), "std_rate": float(np.std(returns)),
            "mean_reward": float(np.mean(rewards)), "episodes": float(episodes)}  # fmt: skip
