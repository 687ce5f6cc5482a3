"""Diagnostic: how much do the twin's m futures change a k-step return on MultiUAV-v0?

For states along a random-move trajectory, the k-step return ``G`` of ``PredictiveTargets`` is
computed for 5 random first actions, each over the same 8 twin futures (domains with their own
user mobility noise). Printed per k: the spread (std) of ``G`` over the futures, averaged over actions
and states, next to the spread of the futures' mean over the first actions. Averaging m futures
(DT-DQL) shrinks the first by sqrt(m); it matters when the first is large against the second.
Needs the torch extra (the greedy continuation is a DQN's, untrained, seed 0).

    python benchmarks/uav_target_spread.py [--states 200]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

import twinrl  # noqa: F401
from twinrl.agents import DQN, DQNConfig
from twinrl.assists.base import StepContext
from twinrl.assists.predictive_targets import PredictiveTargets
from twinrl.twin import DigitalTwin


def spreads(k: int, states: int, *, futures: int = 8, actions: int = 5) -> tuple[float, float]:
    """(mean std of G over futures, mean std over first actions of G's mean over futures)."""
    env = gym.make("twinrl/MultiUAV-v0", reward_centre=20.0)
    agent = DQN.for_env(env, DQNConfig(), rng=0)
    rng = np.random.default_rng(0)
    twin = DigitalTwin(env)
    obs, _ = env.reset(seed=1)
    within, across = [], []
    for _ in range(states):
        twin.sync(env.unwrapped.get_state())  # type: ignore[attr-defined]
        returns, keys = [], int(rng.integers(2**63))  # the same 8 futures for every first action
        for _ in range(actions):
            ctx = StepContext(1, obs, None, rng.integers(0, 5, 4), twin)
            targets = PredictiveTargets(k, futures, gamma=0.95, rng=keys)
            returns.append(targets.rollout(ctx, agent).reward)
        g = np.array(returns)  # (actions, futures)
        within.append(g.std(axis=1, ddof=1).mean())
        across.append(g.mean(axis=1).std(ddof=1))
        obs, _, terminated, truncated, _ = env.step(rng.integers(0, 5, 4))
        if terminated or truncated:
            obs, _ = env.reset()
    return float(np.mean(within)), float(np.mean(across))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=200)
    args = parser.parse_args()
    for k in (1, 3, 5):
        within, across = spreads(k, args.states)
        print(f"k={k}: std of G over 8 twin futures {within:.3f} Mbit/s; "
              f"std over 5 random first actions {across:.3f} Mbit/s")  # fmt: skip


if __name__ == "__main__":
    main()
