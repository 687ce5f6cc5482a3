"""SARSA and Expected SARSA: hand-computed updates against QLearning's shared machinery."""

from __future__ import annotations

import numpy as np
import pytest

from twinrl.agents import ExpectedSarsa, QLearning, QLearningConfig, Sarsa, Transitions


def _agent(cls: type[QLearning], eps: float, rng: int = 7) -> QLearning:
    cfg = QLearningConfig(lr=0.5, gamma=0.9, eps_min=eps, eps0=0.0)
    agent = cls(2, 3, cfg, rng=rng)
    agent.q[1] = [1.0, 4.0, 1.0]
    return agent


def _step(mask: list[int] | None = None) -> Transitions:
    return Transitions.single(0, 0, 1.0, 1, False, None if mask is None else np.array(mask))


def test_expected_sarsa_bootstraps_on_the_policy_expectation() -> None:
    agent = _agent(ExpectedSarsa, eps=0.3)
    agent.learn(_step())
    # next value (1 - 0.3) * 4 + 0.3 * mean(1, 4, 1) = 3.4; target 1 + 0.9 * 3.4 = 4.06
    assert agent.q[0, 0] == pytest.approx(0.5 * 4.06)
    masked = _agent(ExpectedSarsa, eps=0.3)
    masked.learn(_step([1, 0, 1]))  # valid next actions 0 and 2: value 1
    assert masked.q[0, 0] == pytest.approx(0.5 * (1 + 0.9 * 1.0))


def test_sarsa_bootstraps_on_a_next_action_drawn_from_its_policy() -> None:
    greedy = _agent(Sarsa, eps=0.0)
    greedy.learn(_step())
    assert greedy.q[0, 0] == pytest.approx(0.5 * (1 + 0.9 * 4.0))  # eps = 0: the max
    random = _agent(Sarsa, eps=1.0, rng=7)
    random.learn(_step())
    u = np.random.default_rng(7).random(2)  # the agent's own stream: explore, then which action
    value = [1.0, 4.0, 1.0][int(u[1] * 3)]
    assert random.q[0, 0] == pytest.approx(0.5 * (1 + 0.9 * value))


def test_q_learning_keeps_the_max_and_terminal_rows_do_not_bootstrap() -> None:
    ql = _agent(QLearning, eps=1.0)
    ql.learn(_step())
    assert ql.q[0, 0] == pytest.approx(0.5 * (1 + 0.9 * 4.0))
    for cls in (Sarsa, ExpectedSarsa):
        agent = _agent(cls, eps=1.0)
        agent.learn(Transitions.single(0, 0, 1.0, 1, True))
        assert agent.q[0, 0] == pytest.approx(0.5)


def test_spawn_keeps_the_class_and_the_parameters() -> None:
    for cls in (Sarsa, ExpectedSarsa):
        agent = _agent(cls, eps=0.2)
        twin = agent.spawn(np.random.default_rng(1))
        assert type(twin) is cls
        np.testing.assert_array_equal(twin.q, agent.q)


def test_same_seed_same_table() -> None:
    tables = []
    for _ in range(2):
        agent = _agent(Sarsa, eps=0.5, rng=3)
        for _ in range(20):
            agent.learn(_step())
        tables.append(agent.q.copy())
    np.testing.assert_array_equal(*tables)
