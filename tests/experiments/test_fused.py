from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import twinrl
from twinrl.agents import QLearningConfig
from twinrl.algorithms import build_algorithm
from twinrl.envs.edge_scheduling import EdgeParams, sample_tasks
from twinrl.experiments.fused import run_fused

CASES = [
    (5, "ql", {}, None),
    (5, "dteql", {"n_trials": 30}, None),
    (4, "dteql", {"n_trials": 500}, QLearningConfig(q_init=-1.0)),  # more trials than actions
    (5, "dtaql", {"n_agents": 4, "sync_every": 50}, None),
    (
        4,
        "dtaql",
        {"n_agents": 3, "sync_every": 7},
        QLearningConfig(tie_break="first", reward_offset=5.0),
    ),
    (5, "dteql", {"n_trials": 10}, QLearningConfig(lr=0.3)),
    # a three-level tree; a sharing period longer than one chunk of uniforms
    (6, "dtaql", {"n_agents": 3, "sync_every": 600}, None),
    (6, "dteql", {"n_trials": 700}, QLearningConfig(q_init=-2.0)),
    # a short beta: epsilon sweeps its whole range, from 1.0 down to its floor, within the budget
    # (an off-by-one in either schedule shows up here)
    (5, "ql", {}, QLearningConfig(beta=40.0)),
    (5, "dteql", {"n_trials": 20}, QLearningConfig(beta=40.0)),
    (5, "dtaql", {"n_agents": 3, "sync_every": 30}, QLearningConfig(beta=40.0)),
    # the visit reading of Algorithm 1, line 12: optimistic and pessimistic starts (an offset that
    # makes every reward >= q_init, so the worst order's update leaves its entry unchanged), ties
    # broken both ways, a sharing period longer than one chunk, epsilon over its whole range
    (5, "dtaql-visit", {"n_agents": 4, "sync_every": 50}, None),
    (4, "dtaql-visit", {"n_agents": 3, "sync_every": 7}, QLearningConfig(tie_break="first")),
    (5, "dtaql-visit", {"n_agents": 5, "sync_every": 20}, QLearningConfig(reward_offset=40.0)),
    (6, "dtaql-visit", {"n_agents": 3, "sync_every": 600}, None),
    (5, "dtaql-visit", {"n_agents": 3, "sync_every": 30}, QLearningConfig(beta=40.0)),
    (5, "dtaql", {"n_agents": 5, "sync_every": 20}, QLearningConfig(reward_offset=40.0)),
]


@pytest.mark.parametrize(("n", "algo", "kwargs", "cfg"), CASES)
def test_fused_backend_is_bit_identical_to_train(
    n: int, algo: str, kwargs: dict, cfg: QLearningConfig | None
) -> None:
    _assert_fused_equals_train(n, algo, kwargs, cfg, budget=700)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["dteql", "ql"])
def test_fused_backend_equals_train_at_the_published_size(algo: str) -> None:
    """Table I's size: N = 8 (40,320 orders), phi = 500, the full 25,600-iteration budget."""
    _assert_fused_equals_train(8, algo, {"n_trials": 500}, None, budget=25_600)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["dtaql", "dtaql-visit"])
def test_fused_twin_agents_equal_train_at_the_published_size(algo: str) -> None:
    """Both readings of line 12 at Table I's size: N = 8 (40,320 orders), 500 twin agents sharing
    every 512 iterations. The general loop takes about a minute per 1,000 iterations here, so the
    budget is three sharing steps (and a tail after the last one, whose twin work the fused
    backend skips) and beta is short enough for epsilon to sweep from 1 to its floor."""
    cfg = QLearningConfig(beta=30.0)
    _assert_fused_equals_train(8, algo, {"n_agents": 500, "sync_every": 512}, cfg, budget=1_600)


def _assert_fused_equals_train(
    n: int, algo: str, kwargs: dict, cfg: QLearningConfig | None, *, budget: int
) -> None:
    params = EdgeParams(n_tasks=n, zeta=1.5)
    tasks = sample_tasks(params, np.random.default_rng(n))
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=n, zeta=1.5)
    agent, assists = build_algorithm(algo, env, 11, agent_config=cfg, **kwargs)
    run = twinrl.train(env, agent, assists=assists, budget=budget, eval_every=1,
                       reset_options={"tasks": tasks})  # fmt: skip
    fused = run_fused(algo, params, tasks, budget=budget, seed=11, agent_config=cfg, **kwargs)
    if cfg is not None and cfg.beta < budget / 10:  # the schedule reached its floor
        assert run.history["epsilon"][0] > 0.97
        assert run.history["epsilon"][-1] == pytest.approx(agent.config.eps_min)
    assert fused.epsilon.tobytes() == run.history["epsilon"].tobytes()
    assert fused.q.tobytes() == agent.q.tobytes()
    assert fused.greedy_return.tobytes() == run.history["greedy_return"].tobytes()
    assert fused.reward.tobytes() == run.history["reward"].tobytes()
    assert fused.twin_evaluations == run.twin_evaluations


def test_fused_rejects_sequential_and_unknown_algorithm() -> None:
    tasks = np.ones((3, 3))
    with pytest.raises(ValueError, match="order"):
        run_fused("ql", EdgeParams(n_tasks=3, formulation="sequential"), tasks, budget=5, seed=0)
    for name in ("sarsa", "dqn"):
        with pytest.raises(ValueError, match="no fused backend; choose one of ql, dteql, dtaql"):
            run_fused(name, EdgeParams(n_tasks=3), tasks, budget=5, seed=0)
