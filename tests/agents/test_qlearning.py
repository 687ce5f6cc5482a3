from __future__ import annotations

import math

import numpy as np
import pytest

from twinrl.agents import QLearning, QLearningConfig, Transitions
from twinrl.agents.selection import epsilon_at, epsilon_greedy, sample_distinct


def test_terminal_update_matches_hand_computed_value() -> None:
    agent = QLearning(1, 3, QLearningConfig(lr=0.1, q_init=0.0, reward_offset=1.0), rng=0)
    agent.learn(Transitions.single(0, 2, -5.0, 0, True))
    # Q = 0 + 0.1 * ((-5 + 1) - 0) = -0.4
    assert agent.q[0, 2] == pytest.approx(-0.4)
    agent.learn(Transitions.single(0, 2, -5.0, 0, True))
    # Q = -0.4 + 0.1 * (-4 - (-0.4)) = -0.76
    assert agent.q[0, 2] == pytest.approx(-0.76)
    assert agent.q[0, 0] == 0.0


def test_bootstrapped_update_uses_masked_max() -> None:
    agent = QLearning(2, 3, QLearningConfig(lr=0.5, gamma=0.9), rng=0)
    agent.q[1] = [10.0, 2.0, 1.0]
    mask = np.array([0, 1, 1], dtype=np.int8)  # action 0 invalid next: max over {2, 1} = 2
    agent.learn(Transitions.single(0, 1, 1.0, 1, False, mask))
    # Q = 0 + 0.5 * (1 + 0.9 * 2 - 0) = 1.4
    assert agent.q[0, 1] == pytest.approx(1.4)


def test_epsilon_schedule_follows_algorithm_line_3() -> None:
    assert epsilon_at(1, 0.1, 0.9, 5000) == pytest.approx(0.1 + 0.9 * math.exp(-1 / 5000))
    assert epsilon_at(5000, 0.1, 0.9, 5000) == pytest.approx(0.1 + 0.9 / math.e)
    assert epsilon_at(10**9, 0.1, 0.9, 5000) == pytest.approx(0.1)


def test_epsilon_greedy_ties_and_exploration() -> None:
    q = np.array([1.0, 3.0, 3.0, 0.0, 3.0])
    valid = np.arange(5)
    # greedy: ties {1, 2, 4}; u_choice picks the floor(u * 3)-th
    assert epsilon_greedy(q, valid, 0.0, 0.5, 0.0, True) == 1
    assert epsilon_greedy(q, valid, 0.0, 0.5, 0.5, True) == 2
    assert epsilon_greedy(q, valid, 0.0, 0.5, 0.99, True) == 4
    assert epsilon_greedy(q, valid, 0.0, 0.5, 0.99, False) == 1
    # explore: floor(u * n_valid)-th valid action
    assert epsilon_greedy(q, np.array([0, 3]), 1.0, 0.2, 0.7, True) == 3
    # greedy respects the valid set
    assert epsilon_greedy(q, np.array([0, 3]), 0.0, 0.5, 0.0, True) == 0


def test_sample_distinct_is_distinct_and_uniform() -> None:
    rng = np.random.default_rng(0)
    marks = np.zeros(10, dtype=np.int64)
    counts = np.zeros(10)
    for call in range(1, 4001):
        picks = sample_distinct(10, rng.random(3), marks, call)
        assert len(set(picks.tolist())) == 3 and picks.min() >= 0 and picks.max() < 10
        counts[picks] += 1
    # each element is picked with probability 3/10: 1200 expected, sd ~29
    assert np.all(np.abs(counts - 1200) < 150)


def test_state_dict_round_trip_and_shape_check() -> None:
    a = QLearning(2, 4, rng=0)
    a.q[1, 2] = 7.0
    a.begin_iteration(12)
    b = QLearning(2, 4, rng=1)
    b.load_state_dict(a.state_dict())
    assert np.array_equal(a.q, b.q) and b.iteration == 12
    with pytest.raises(ValueError, match="shape"):
        QLearning(3, 4).load_state_dict(a.state_dict())


def test_act_rejects_bad_observation_and_empty_mask() -> None:
    agent = QLearning(2, 3, rng=0)
    with pytest.raises(ValueError, match="state index"):
        agent.act(5, explore=True)
    with pytest.raises(ValueError, match="mask"):
        agent.act(0, explore=True, mask=np.zeros(3, dtype=np.int8))


@pytest.mark.parametrize(
    ("field", "value"),
    [("lr", 1.5), ("lr", -0.1), ("gamma", 2.0), ("eps_min", -1.0), ("beta", 0.0),
     ("tie_break", "last"), ("lr", "fast"), ("q_init", float("nan"))],
)  # fmt: skip
def test_bad_config_raises_naming_the_field(field: str, value: object) -> None:
    with pytest.raises((ValueError, TypeError), match=field):
        QLearningConfig(**{field: value})  # type: ignore[arg-type]


def test_for_env_needs_discrete_spaces() -> None:
    import gymnasium as gym

    import twinrl  # noqa: F401

    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=3, observation="features")
    with pytest.raises(TypeError, match="observation='index'"):
        QLearning.for_env(env)
