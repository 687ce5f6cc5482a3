"""Benchmark: what the default greedy evaluation of ``twinrl.train`` costs on every registered env,
as the ratio of a run with the default evaluation to the same run without evaluation (same seed,
same algorithm, measured in one process). The target is at most 1.10.

    python benchmarks/eval_overhead.py [--budget 2000] [--repeats 3]

The MultiUAV row trains DQN when torch is installed (the issue's case: 200 iterations with
default arguments), else tabular-free rows only.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from typing import Any

import gymnasium as gym

import twinrl
from twinrl.algorithms import build_algorithm

CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("twinrl/EdgeScheduling-v0", "ql", {"n_tasks": 5}, 2000),
    ("twinrl/EdgeScheduling-v0", "dteql", {"n_tasks": 6}, 2000),
    ("twinrl/EdgeScheduling-v0", "ql", {"n_tasks": 5, "formulation": "sequential"}, 2000),
    ("twinrl/APSelection-v0", "ql", {}, 2000),
    ("twinrl/MultiUAV-v0", "dqn", {}, 200),
]


def seconds(env_id: str, algo: str, kwargs: dict[str, Any], budget: int, evaluate: bool) -> float:
    env = gym.make(env_id, **kwargs)
    extra = {"n_trials": 50} if algo == "dteql" else {}
    agent, assists = build_algorithm(algo, env, 0, **extra)
    start = time.process_time()
    twinrl.train(env, agent, assists=assists, budget=budget, seed=0, evaluate=evaluate)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    has_torch = importlib.util.find_spec("torch") is not None
    print("| env | algorithm | iterations | CPU s without evaluation | with default | ratio |")
    print("|---|---|---|---|---|---|")
    for env_id, algo, kwargs, budget in CASES:
        if algo == "dqn" and not has_torch:
            print(f"| {env_id} | {algo} | skipped: needs the torch extra | | | |")
            continue
        seconds(env_id, algo, kwargs, min(budget, 20), True)  # warm up (numba, torch)
        off = min(seconds(env_id, algo, kwargs, budget, False) for _ in range(args.repeats))
        on = min(seconds(env_id, algo, kwargs, budget, True) for _ in range(args.repeats))
        label = f"{env_id} {kwargs}" if kwargs else env_id
        print(f"| {label} | {algo} | {budget} | {off:.3f} | {on:.3f} | {on / off:.3f} |")


if __name__ == "__main__":
    main()
