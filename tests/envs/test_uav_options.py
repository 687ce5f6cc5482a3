"""The MultiUAV options of the ``prediction`` grid: reward (mean rate / coverage / periodic) and
user layout (uniform / migrating clusters); the defaults keep the env's behaviour bit for bit."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

from twinrl.envs import uav_kernels as k
from twinrl.envs.multi_uav import MultiUAVEnv, MultiUAVParams
from twinrl.errors import ConfigError
from twinrl.testing import check_twinnable


def trace_hash(**kwargs: Any) -> str:
    """SHA-256 of the observations and rewards of two episodes of seeded random moves."""
    env = MultiUAVEnv(**kwargs)
    h = hashlib.sha256()
    rng = np.random.default_rng(7)
    for episode in range(2):
        obs, _ = env.reset(seed=3 if episode == 0 else None)
        h.update(obs.tobytes())
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(rng.integers(0, 5, size=4))
            h.update(obs.tobytes())
            h.update(np.float64(reward).tobytes())
            done = terminated or truncated
    return h.hexdigest()


def test_defaults_reproduce_the_env_before_the_options_bit_for_bit() -> None:
    # hashes computed on main 664891d, before reward / user_layout existed
    assert trace_hash() == "7b19afa4acd2a476c08ffb61be75e1ca6ee4012160b5b0a9c4cf35facc9515be"
    assert trace_hash(reward_centre=20.0, episode_steps=30) == (
        "99417cc08ea8f48d973a402d9c1cd51165c0e8b7570586a53d191abe3a674822"
    )
    assert trace_hash(reward="mean_rate", user_layout="uniform") == trace_hash()


def _env_at(uavs: list[list[float]], users: list[list[float]], **kwargs: Any) -> MultiUAVEnv:
    env = MultiUAVEnv(n_uavs=len(uavs), n_users=len(users), user_speed_std=0.0, **kwargs)
    env.reset(seed=0, options={"user_positions": np.array(users, dtype=np.float64)})
    state = env.get_state()
    env.set_state(type(state)(np.array(uavs, dtype=np.float64), state.user_pos,
                              np.zeros_like(state.user_vel), state.step, state.noise_key))  # fmt: skip
    return env


def test_coverage_reward_is_the_share_of_users_above_the_threshold() -> None:
    # UAV at (0, 0) moves to (8, 0); users at ground distances 2, 18 and 60 m from (8, 0):
    # rates (Friis, 5 m height) about 26.2, 22.7 and 19.5 Mbit/s, so 1 of 3 is above 23 Mbit/s
    env = _env_at([[0.0, 0.0]], [[10.0, 0.0], [26.0, 0.0], [68.0, 0.0]], reward="coverage",
                  coverage_threshold=23.0, reward_centre=0.25)  # fmt: skip
    _, reward, *_, info = env.step(np.array([1]))
    assert reward == pytest.approx(1 / 3 - 0.25)
    assert (info["rate_per_user"] >= 23.0).sum() == 1
    p = env.params
    d = np.sqrt(np.array([2.0, 18.0, 60.0]) ** 2 + p.uav_height**2)
    rate = k.friis_rate(d, tx_power=p.tx_power, wavelength=p.wavelength,
                        bandwidth=p.bandwidth, noise_psd=p.noise_psd) / 1e6  # fmt: skip
    assert info["rate_per_user"] == pytest.approx(rate)


def test_periodic_reward_pays_the_scaled_rate_every_period_only() -> None:
    dense = _env_at([[50.0, 50.0]], [[40.0, 50.0], [70.0, 50.0]], reward_centre=20.0)
    periodic = _env_at([[50.0, 50.0]], [[40.0, 50.0], [70.0, 50.0]], reward_centre=20.0,
                       reward="periodic", reward_period=3)  # fmt: skip
    paid = []
    for t in range(1, 10):
        action = np.array([t % 5])
        _, r_dense, *_, info_dense = dense.step(action)
        _, r_periodic, *_, info = periodic.step(action)
        assert info["mean_rate"] == info_dense["mean_rate"]
        assert r_periodic == (pytest.approx(3 * r_dense) if t % 3 == 0 else 0.0)
        paid.append(r_periodic != 0.0)
    assert paid == [False, False, True] * 3


def test_clusters_start_together_and_move_with_their_cluster() -> None:
    p = dict(user_layout="clusters", n_clusters=2, n_users=10, cluster_spread=1.0,
             cluster_speed=4.0, user_speed_std=0.1, user_memory=0.99)  # fmt: skip
    env = MultiUAVEnv(**p)
    env.reset(seed=5)
    start = env.get_state()
    for cluster in (0, 1):
        members = np.arange(10) % 2 == cluster
        pos, vel = start.user_pos[members], start.user_vel[members]
        assert np.abs(pos - pos.mean(axis=0)).max() < 5.0  # within 5 spreads (1 m)
        assert np.linalg.norm(vel.mean(axis=0)) == pytest.approx(4.0, abs=0.3)
        assert np.abs(vel - vel.mean(axis=0)).max() < 0.5
    for _ in range(5):
        env.step(np.zeros(4, dtype=np.int64))
    moved = env.get_state().user_pos - start.user_pos
    assert np.median(np.linalg.norm(moved, axis=1)) > 15.0  # about 5 s x 4 m/s, unless reflected


def test_uniform_layout_draws_users_as_before_and_clusters_differ() -> None:
    uniform = MultiUAVEnv()
    clusters = MultiUAVEnv(user_layout="clusters")
    a, _ = uniform.reset(seed=1)
    b, _ = clusters.reset(seed=1)
    assert not np.array_equal(a, b)
    again = MultiUAVEnv(user_layout="clusters")
    c, _ = again.reset(seed=1)
    assert np.array_equal(b, c)


@pytest.mark.parametrize("kwargs", [{"reward": "coverage"}, {"reward": "periodic"},
                                    {"user_layout": "clusters"}])  # fmt: skip
def test_env_with_an_option_stays_twinnable(kwargs: dict[str, Any]) -> None:
    check_twinnable(MultiUAVEnv(episode_steps=12, **kwargs))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reward": "sparse"}, "reward"),
        ({"reward": None}, "reward"),
        ({"user_layout": "grid"}, "user_layout"),
        ({"reward_period": 0}, "reward_period"),
        ({"reward_period": 2.5}, "reward_period"),
        ({"n_clusters": 0}, "n_clusters"),
        ({"coverage_threshold": -1.0}, "coverage_threshold"),
        ({"coverage_threshold": float("nan")}, "coverage_threshold"),
        ({"cluster_spread": float("inf")}, "cluster_spread"),
        ({"cluster_speed": -0.5}, "cluster_speed"),
    ],
)
def test_bad_option_values_are_refused_by_name(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises((ConfigError, TypeError, ValueError), match=match):
        MultiUAVParams(**kwargs)
