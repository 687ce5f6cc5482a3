"""Benchmark: one DTEQL iteration (phi = 500 trials, N = 8) with the vectorized twin vs the serial
(copy-and-step) twin, as a ratio measured in one run.

    python benchmarks/twin_backends.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import twinrl  # noqa: F401
from twinrl.agents import QLearning
from twinrl.assists import ActionTrials
from twinrl.assists.base import StepContext
from twinrl.twin import DigitalTwin


def iteration_seconds(backend: str, repeats: int, n_tasks: int = 8, phi: int = 500) -> float:
    """Median wall time of ActionTrials.after_step (sample, twin trial, learn) per iteration."""
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=n_tasks)
    obs, _ = env.reset(seed=0)
    twin = DigitalTwin(env, backend=backend)
    agent = QLearning.for_env(env, rng=0)
    trials = ActionTrials(phi, int(env.action_space.n), rng=0)
    twin.sync(env.unwrapped.get_state())
    ctx = StepContext(1, obs, None, 0, twin)
    trials.after_step(ctx, agent)  # warm up (numba compilation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        trials.after_step(ctx, agent)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def trial_seconds(backend: str, repeats: int, n_tasks: int = 8, phi: int = 500) -> float:
    """Median wall time of the twin alone: 500 actions tried from one synced state."""
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=n_tasks)
    env.reset(seed=0)
    twin = DigitalTwin(env, backend=backend)
    state = env.unwrapped.get_state()
    actions = np.random.default_rng(0).choice(int(env.action_space.n), phi, replace=False)
    twin.trial(state, actions)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        twin.trial(state, actions)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    vec = iteration_seconds("vectorized", args.repeats)
    ser = iteration_seconds("serial", max(3, args.repeats // 4))
    print(
        f"DTEQL iteration, phi=500, N=8: vectorized {vec * 1e3:.2f} ms, serial {ser * 1e3:.1f} ms"
    )
    print(f"speed-up of the vectorized twin per DTEQL iteration: {ser / vec:.0f}x")
    tv = trial_seconds("vectorized", args.repeats)
    ts = trial_seconds("serial", max(3, args.repeats // 4))
    print(
        f"twin.trial alone (500 actions): vectorized {tv * 1e3:.2f} ms, serial {ts * 1e3:.1f} ms, "
        f"speed-up {ts / tv:.0f}x"
    )


if __name__ == "__main__":
    main()
