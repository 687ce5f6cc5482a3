"""The ``per_uav`` observation of MultiUAV-v0 against hand-computed blocks."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import twinrl  # noqa: F401  (registers the envs)
from twinrl.envs.multi_uav import MultiUAVParams, MultiUAVState, observe, observe_per_uav


def two_by_two(params: MultiUAVParams) -> MultiUAVState:
    """UAVs at (10, 10) and (60, 10); users at (20, 10) and (90, 50) (area side 100 m)."""
    users = np.array([[20.0, 10.0], [90.0, 50.0]])
    return MultiUAVState(
        uav_pos=np.array([[10.0, 10.0], [60.0, 10.0]]),
        user_pos=users,
        user_vel=np.zeros_like(users),
        step=np.array(0),
        noise_key=np.array(7, dtype=np.uint64),
    )


def test_blocks_by_hand() -> None:
    params = MultiUAVParams(n_uavs=2, n_users=2, observation="per_uav")
    # UAV 0: own (0.1, 0.1); UAV 1 at offset (0.5, 0); users by distance from UAV 0: user 0 at
    # 10 m, offset (0.1, 0), served by UAV 0; user 1 at 89 m, offset (0.8, 0.4), served by UAV 1.
    # UAV 1: own (0.6, 0.1); UAV 0 at (-0.5, 0); user 0 at 40 m (-0.4, 0), not its own; user 1 at
    # 50 m (0.3, 0.4), its own.
    expected = [0.1, 0.1, 0.5, 0.0, 0.1, 0.0, 1.0, 0.8, 0.4, 0.0,
                0.6, 0.1, -0.5, 0.0, -0.4, 0.0, 0.0, 0.3, 0.4, 1.0]  # fmt: skip
    obs = observe(params, two_by_two(params))
    assert obs.dtype == np.float32 and obs.shape == (params.obs_size,) == (20,)
    np.testing.assert_allclose(obs, expected, atol=1e-7)


def test_hidden_users_read_zero_and_sort_last() -> None:
    params = MultiUAVParams(n_uavs=2, n_users=2, observation="per_uav", sensing_radius=15.0)
    state = two_by_two(params)
    # user 0 is 10 m from UAV 0 (sensed); user 1 is 50 m from UAV 1 (not sensed): zeros, last
    expected = [0.1, 0.1, 0.5, 0.0, 0.1, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0,
                0.6, 0.1, -0.5, 0.0, -0.4, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]  # fmt: skip
    np.testing.assert_allclose(observe(params, state), expected, atol=1e-7)
    seen = observe(params, state, global_view=True).reshape(2, -1)
    np.testing.assert_allclose(seen[1, 4:], [-0.4, 0.0, 0.0, 1.0, 0.3, 0.4, 1.0, 1.0], atol=1e-7)


def test_batched_equals_one_by_one_and_numbering_does_not_matter() -> None:
    env = gym.make("twinrl/MultiUAV-v0", observation="per_uav").unwrapped
    obs, _ = env.reset(seed=3)
    for _ in range(5):
        obs, *_ = env.step(np.array([1, 3, 1, 0]))
    state = env.get_state()  # type: ignore[attr-defined]
    params = env.params  # type: ignore[attr-defined]
    np.testing.assert_array_equal(obs, observe_per_uav(params, state))
    batched = observe_per_uav(params, state.tile(3))
    np.testing.assert_array_equal(batched, np.stack([obs] * 3))
    # renumbering the users leaves every block unchanged (they are sorted by distance)
    perm = np.random.default_rng(0).permutation(params.n_users)
    shuffled = MultiUAVState(state.uav_pos, state.user_pos[perm], state.user_vel[perm],
                             state.step, state.noise_key)  # fmt: skip
    np.testing.assert_array_equal(observe_per_uav(params, shuffled), obs)
    assert env.observation_space.contains(obs)
