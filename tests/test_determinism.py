from __future__ import annotations

import gymnasium as gym
import pytest

import twinrl
from twinrl.algorithms import build_algorithm


@pytest.mark.parametrize("algo", ["ql", "dteql", "dtaql"])
@pytest.mark.parametrize("formulation", ["order", "sequential"])
def test_same_seed_same_bytes_other_seed_differs(algo: str, formulation: str) -> None:
    def once(seed: int) -> bytes:
        env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4, formulation=formulation)
        agent, assists = build_algorithm(algo, env, seed, n_trials=6, n_agents=3, sync_every=16)
        run = twinrl.train(env, agent, assists=assists, budget=120, seed=seed)
        return (
            agent.q.tobytes()
            + run.history["greedy_return"].tobytes()
            + run.history["reward"].tobytes()
        )

    assert once(3) == once(3)
    assert once(3) != once(4)
