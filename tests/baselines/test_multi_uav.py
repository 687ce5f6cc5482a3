from __future__ import annotations

import numpy as np
import pytest

from twinrl.baselines.multi_uav import (
    StaticKMeans,
    evaluate_uav_policy,
    hover,
    kmeans,
    moves_toward,
    uav_policies,
)
from twinrl.envs.multi_uav import MultiUAVParams, initial_state


def test_kmeans_finds_well_separated_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[10.0, 10.0], [90.0, 10.0], [50.0, 90.0]])
    points = np.concatenate([c + rng.normal(0, 1.0, size=(20, 2)) for c in centres])
    got = kmeans(points, 3)
    for c in centres:
        assert np.min(np.linalg.norm(got - c, axis=1)) < 1.0
    np.testing.assert_array_equal(kmeans(points, 3), got)  # deterministic
    with pytest.raises(ValueError, match="k=4"):
        kmeans(points[:3], 4)


def test_moves_toward_takes_the_larger_gap_and_stops_within_half_a_step() -> None:
    p = MultiUAVParams()  # 8 m per step
    uav = np.array([[0.0, 0.0], [0.0, 0.0], [50.0, 50.0], [50.0, 50.0]])
    target = np.array([[30.0, 10.0], [5.0, -20.0], [47.0, 53.0], [40.0, 50.0]])
    np.testing.assert_array_equal(moves_toward(p, uav, target), [1, 4, 0, 2])


def test_reference_policies_rank_as_expected_and_are_deterministic() -> None:
    p = MultiUAVParams()
    scores = {n: evaluate_uav_policy(p, pol, episodes=4, seed=1)["mean_rate"]
              for n, pol in uav_policies().items()}  # fmt: skip
    assert scores["kmeans"] > scores["random"] > scores["hover"]
    again = evaluate_uav_policy(p, uav_policies()["random"], episodes=4, seed=1)["mean_rate"]
    assert again == scores["random"]
    with pytest.raises(ValueError, match="episodes"):
        evaluate_uav_policy(p, hover, episodes=0)


def test_static_kmeans_reaches_its_centroids_and_hovers() -> None:
    p = MultiUAVParams()
    state = initial_state(p, np.random.default_rng(3))
    policy = StaticKMeans()
    rng = np.random.default_rng(0)
    moves = policy(p, state, rng)
    assert moves.shape == (4,) and (moves != 0).any()
    targets = policy._targets
    assert targets is not None
    at_target = moves_toward(p, targets, targets)
    np.testing.assert_array_equal(at_target, np.zeros(4))
