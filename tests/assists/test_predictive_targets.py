"""PredictiveTargets: k-step returns from m twin trajectories, checked by hand and against the
physical env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import twinrl
from twinrl.agents import QLearning, QLearningConfig
from twinrl.assists.base import StepContext
from twinrl.assists.predictive_targets import PredictiveTargets
from twinrl.twin import DigitalTwin


class _Chain(gym.Env[Any, int]):
    """Cells 0..5; action 1 moves right (+1), action 0 stays; reward = the cell reached; cell 5 is
    terminal."""

    def __init__(self) -> None:
        self.observation_space = spaces.Discrete(6)
        self.action_space = spaces.Discrete(2)
        self.cell = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.cell = 0
        return self.cell, {}

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self.cell = min(self.cell + int(action), 5)
        return self.cell, float(self.cell), self.cell == 5, False, {}

    def get_state(self) -> int:
        return self.cell

    def set_state(self, state: int) -> None:
        self.cell = int(state)


def _ctx(env: _Chain, cell: int, action: int) -> StepContext:
    env.reset(seed=0)
    env.cell = cell
    twin = DigitalTwin(env)
    twin.sync(env.get_state())
    return StepContext(1, cell, None, action, twin)


def test_k_step_return_and_discount_by_hand() -> None:
    env = _Chain()
    agent = QLearning(6, 2, QLearningConfig(gamma=0.5), rng=0)
    agent.q[:, 1] = 1.0  # greedy: move right
    out = PredictiveTargets(k=3, m=2, gamma=0.5).rollout(_ctx(env, 1, 0), agent)
    # stay at 1 (r=1), then right to 2 (r=2), right to 3 (r=3): 1 + 0.5*2 + 0.25*3 = 2.75
    np.testing.assert_allclose(out.reward, [2.75, 2.75])
    np.testing.assert_array_equal(out.next_obs, [3, 3])
    np.testing.assert_allclose(out.discount, [0.125, 0.125])
    assert not out.terminated.any() and out.source.tolist() == [1, 2]
    assert out.obs.tolist() == [1, 1] and out.action.tolist() == [0, 0]
    # from cell 3 moving right: 4 (r=4), 5 (r=5, terminal): 4 + 0.5*5 = 6.5, no more steps
    end = PredictiveTargets(k=3, m=1, gamma=0.5).rollout(_ctx(env, 3, 1), agent)
    assert end.reward.tolist() == [6.5] and end.terminated.tolist() == [True]
    assert end.next_obs.tolist() == [5]


def test_q_learning_bootstraps_with_the_k_step_discount() -> None:
    env = _Chain()
    agent = QLearning(6, 2, QLearningConfig(gamma=0.5, lr=1.0), rng=0)
    agent.q[:, 1] = 1.0
    agent.q[3, 1] = 4.0
    PredictiveTargets(k=3, m=2, gamma=0.5).after_step(_ctx(env, 1, 0), agent)
    assert agent.q[1, 0] == pytest.approx(2.75 + 0.125 * 4.0)  # lr = 1: Q = G + gamma^k max Q'


def test_rollout_matches_the_physical_env_stepped_with_the_same_randomness() -> None:
    env = gym.make("twinrl/MultiUAV-v0")
    env.reset(seed=7)
    twin = DigitalTwin(env)
    twin.model = object()  # no reseed_domain: the domains share the physical future
    state = env.unwrapped.get_state()
    twin.sync(state)
    moves = [np.array([1, 3, 0, 2]), np.array([1, 1, 3, 0]), np.array([0, 4, 1, 3])]

    class Scripted:
        def __init__(self) -> None:
            self.calls = 0

        def act(self, obs: Any, *, explore: bool, mask: Any = None) -> Any:
            self.calls += 1
            return moves[1 + (self.calls - 1) // 2]  # two domains per look-ahead step

    out = PredictiveTargets(k=3, m=2, gamma=0.9).rollout(
        StepContext(1, None, None, moves[0], twin), Scripted()
    )
    expected = 0.0
    for i, a in enumerate(moves):
        obs, r, *_ = env.step(a)
        expected += 0.9**i * r
    np.testing.assert_allclose(out.reward, [expected, expected], rtol=1e-12)
    np.testing.assert_array_equal(out.next_obs[0], obs)
    env.unwrapped.set_state(state)
    assert twin.evaluations == 6


def test_domains_get_their_own_futures_and_the_physical_env_is_untouched() -> None:
    env = gym.make("twinrl/MultiUAV-v0")
    env.reset(seed=7)
    before = env.unwrapped.get_state()
    twin = DigitalTwin(env)
    twin.sync(before)
    agent = twinrl.agents.DQN.for_env(env, rng=0) if _has_torch() else None
    if agent is None:
        pytest.skip("needs torch")
    out = PredictiveTargets(k=4, m=3, gamma=0.9, rng=1).rollout(
        StepContext(1, None, None, np.zeros(4, dtype=np.int64), twin), agent
    )
    assert len(set(out.reward.tolist())) == 3  # three different user futures
    after = env.unwrapped.get_state()
    np.testing.assert_array_equal(before.user_pos, after.user_pos)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k=0"):
        PredictiveTargets(k=0, gamma=0.9)
    with pytest.raises(ValueError, match="m=0"):
        PredictiveTargets(k=1, m=0, gamma=0.9)
    with pytest.raises(ValueError, match="gamma"):
        PredictiveTargets(k=1, gamma=1.5)


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def test_batched_greedy_policy_gives_the_same_rollout_as_one_act_per_domain() -> None:
    pytest.importorskip("torch")
    from twinrl.agents import DQN, DQNConfig

    env = gym.make("twinrl/MultiUAV-v0")
    obs, _ = env.reset(seed=3)
    twin = DigitalTwin(env)
    twin.sync(env.unwrapped.get_state())
    agent = DQN.for_env(env, DQNConfig(hidden=(16,)), rng=2)

    class ActOnly:  # the same policy without greedy_batch: one act() per domain
        def act(self, o: Any, *, explore: bool, mask: Any = None) -> Any:
            return agent.act(o, explore=explore, mask=mask)

    ctx = StepContext(1, obs, None, np.array([1, 3, 0, 2]), twin)
    batched = PredictiveTargets(k=4, m=3, gamma=0.9, rng=7).rollout(ctx, agent)
    looped = PredictiveTargets(k=4, m=3, gamma=0.9, rng=7).rollout(ctx, ActOnly())  # type: ignore[arg-type]
    for a, b in zip(batched, looped, strict=True):
        if a is not None:
            np.testing.assert_array_equal(a, b)
