from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import twinrl
from twinrl.agents import QLearning, QLearningConfig
from twinrl.algorithms import build_algorithm
from twinrl.assists import ActionTrials, TwinAgents


def test_action_trials_update_every_tried_action_with_its_own_reward() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=3)
    config = QLearningConfig(eps_min=0.0, eps0=0.0, tie_break="first")  # physical action: 0
    agent = QLearning.for_env(env, config, rng=0)
    trials = ActionTrials(6, 6, rng=0)  # all 3! = 6 orders every step
    twinrl.train(env, agent, assists=[trials], budget=1, seed=0, evaluate=False)
    rewards = []
    for a in range(6):
        env.reset()
        rewards.append(env.step(a)[1])
    r = np.array(rewards)
    expected = 0.1 * r  # each order tried once in the twin, from Q = 0 with lr = 0.1 ...
    expected[0] = 0.1 * r[0] + 0.1 * (r[0] - 0.1 * r[0])  # ... order 0 first physically, then again
    np.testing.assert_allclose(agent.q[0], expected, rtol=1e-12)


def test_dteql_converges_to_the_optimum_on_a_small_instance() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4)
    agent, assists = build_algorithm("dteql", env, 0, n_trials=12)
    run = twinrl.train(env, agent, assists=assists, budget=600, seed=1)
    rewards = []
    for a in range(24):
        env.reset(seed=1)
        rewards.append(env.step(a)[1])
    best = max(rewards)
    assert run.history["greedy_return"][-1] == best
    assert run.twin_evaluations == 600 * 12


def test_twin_agents_share_by_averaging() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=3)
    agent = QLearning.for_env(env, rng=0)
    twins = TwinAgents(2, sync_every=1, rng=0)
    twins.attach(agent)
    agent.q[0, 0] = 3.0
    twins.agents[0].q[0, 0] = 6.0
    twins.agents[1].q[0, 1] = 9.0
    twins.share(agent)
    np.testing.assert_allclose(agent.q[0, :2], [3.0, 3.0])  # (3 + 6 + 0) / 3, (0 + 0 + 9) / 3
    for twin in twins.agents:
        np.testing.assert_array_equal(twin.q, agent.q)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_assists_reject_bad_sizes(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        ActionTrials(bad, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TwinAgents(bad)  # type: ignore[arg-type]


def test_sequential_formulation_trials_respect_the_mask() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4, formulation="sequential")
    agent, assists = build_algorithm("dteql", env, 0, n_trials=10)  # more than the 4 valid tasks
    run = twinrl.train(env, agent, assists=assists, budget=40, seed=0)
    # 10 episodes of 4 steps: 4 + 3 + 2 + 1 valid actions tried per episode
    assert run.twin_evaluations == 10 * (4 + 3 + 2 + 1)
