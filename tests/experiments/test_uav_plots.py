from __future__ import annotations

from pathlib import Path

import numpy as np

from twinrl.envs.multi_uav import MultiUAVParams
from twinrl.experiments.uav_plots import plot_trajectories, rollout_positions


def test_rollout_positions_follow_the_policy(tmp_path: Path) -> None:
    p = MultiUAVParams(episode_steps=12)
    uavs, users, rate = rollout_positions(p, lambda o: np.array([1, 3, 0, 0]), seed=2)
    assert uavs.shape == (13, 4, 2) and users.shape == (13, 10, 2)
    np.testing.assert_allclose(uavs[-1, 0], [96.0, 0.0])  # 12 moves of 8 m in +x
    np.testing.assert_allclose(uavs[-1, 1], [0.0, 96.0])  # 12 moves of 8 m in +y
    np.testing.assert_allclose(uavs[-1, 2:], 0.0)  # stayed at the hangar
    assert ((users >= 0) & (users <= 100)).all() and 0 < rate < 30
    hover = rollout_positions(p, lambda o: np.zeros(4, dtype=np.int64), seed=2)
    plot_trajectories(p, {"hover": hover, "moves": (uavs, users, rate)}, tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 5_000


def test_rollout_rate_is_the_uncentred_mean_rate() -> None:
    hold = lambda o: np.zeros(4, dtype=np.int64)  # noqa: E731
    _, _, plain = rollout_positions(MultiUAVParams(episode_steps=5), hold, seed=3)
    _, _, centred = rollout_positions(
        MultiUAVParams(episode_steps=5, reward_centre=20.0), hold, seed=3
    )
    assert centred == plain
