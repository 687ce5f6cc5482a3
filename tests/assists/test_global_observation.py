from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import twinrl  # noqa: F401
from twinrl.assists import GlobalObservation
from twinrl.envs.multi_uav import observe


def test_partial_view_becomes_the_global_view_without_touching_the_dynamics() -> None:
    partial = gym.make("twinrl/MultiUAV-v0", sensing_radius=15.0)
    wrapped = GlobalObservation(gym.make("twinrl/MultiUAV-v0", sensing_radius=15.0))
    o_partial, _ = partial.reset(seed=4)
    o_global, _ = wrapped.reset(seed=4)
    n_users = partial.unwrapped.params.n_users
    assert o_partial[-n_users:].sum() < n_users  # some users are hidden from the UAVs
    assert (o_global[-n_users:] == 1).all()  # the twin sees every user
    rng = np.random.default_rng(0)
    for _ in range(10):
        action = rng.integers(0, 5, size=4)
        o_partial, r1, *_ = partial.step(action)
        o_global, r2, *_ = wrapped.step(action)
        assert r1 == r2  # same physical dynamics and randomness
        state = partial.unwrapped.get_state()
        np.testing.assert_array_equal(o_global, observe(partial.unwrapped.params, state, True))
        assert wrapped.observation_space.contains(o_global)


def test_env_without_a_global_view_is_rejected() -> None:
    with pytest.raises(TypeError, match="global_observation"):
        GlobalObservation(gym.make("twinrl/EdgeScheduling-v0", n_tasks=3))
