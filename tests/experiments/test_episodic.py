from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import twinrl
from twinrl.agents import QLearning
from twinrl.experiments import episodic
from twinrl.experiments.episodic import moving_average, settling_episode, summarise


def test_moving_average_is_a_trailing_mean_with_a_short_start() -> None:
    got = moving_average([1.0, 3.0, 5.0, 7.0], 2)
    np.testing.assert_allclose(got, [1.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(moving_average([2.0, 4.0], 10), [2.0, 3.0])
    with pytest.raises(ValueError, match="window"):
        moving_average([1.0], 0)


def test_settling_episode_against_a_hand_built_curve() -> None:
    # start 0, final 10 (mean of the last 10% = last value): threshold 9.5
    curve = np.array([0, 2, 9.6, 9, 9.7, 9.8, 10, 10, 10, 10], dtype=float)
    assert settling_episode(curve) == 5  # dips to 9 at episode 4, stays >= 9.5 from 5
    assert settling_episode(np.array([5.0, 4.0, 3.0])) is None  # never rose


def test_train_stops_after_max_episodes_and_splits_history() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=3, formulation="sequential")
    agent = QLearning.for_env(env, rng=0)
    run = twinrl.train(env, agent, budget=1000, max_episodes=4, seed=0, evaluate=False,
                       track_info=("cost",))  # fmt: skip
    assert run.episodes == 4 and run.episode_lengths == [3, 3, 3, 3] and run.iterations == 12
    assert run.history["reward"].shape == (12,)
    returns = np.add.reduceat(run.history["reward"], [0, 3, 6, 9])
    np.testing.assert_allclose(run.episode_returns, returns)
    # 'cost' is reported at the end of each episode only: NaN elsewhere, minus the return there
    cost = run.history["cost"]
    assert np.isnan(cost[[0, 1, 3, 4]]).all()
    np.testing.assert_allclose(cost[[2, 5, 8, 11]], -returns)
    with pytest.raises(ValueError, match="max_episodes"):
        twinrl.train(env, agent, budget=10, max_episodes=0)


def test_summarise_uses_a_common_target_across_variants() -> None:
    fast = [0.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0]
    low = [0.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0]  # settles early, on a low plateau
    runs = [
        {"label": lb, "seed": s, "episode_return": curve, "episode_failures": [0.0] * 10,
         "twin_evaluations": 0}
        for lb, curve in (("fast", fast), ("low", low)) for s in (0, 1)
    ]  # fmt: skip
    st = summarise(runs, window=1)  # target: the best final reward, 10
    assert st["fast"]["target"] == pytest.approx(10.0)
    assert st["fast"]["reach_episodes"] == [2, 2] and st["fast"]["reach_median"] == 2
    assert st["low"]["reach_episodes"] == [None, None] and st["low"]["reach_median"] == np.inf
    assert st["low"]["settling_episodes"] == [2, 2]  # its own plateau, reached at once
    assert st["low"]["final_reward"].mean == pytest.approx(6.0)
    st = summarise(runs, window=1, reference="low")  # target: 6, reached by both at episode 2
    assert st["fast"]["reach_episodes"] == [2, 2] and st["low"]["reach_episodes"] == [2, 2]
    with pytest.raises(ValueError, match="reference"):
        summarise(runs, window=1, reference="QL")


def test_build_algorithm_rejects_bad_safety_mode_and_wrong_config_family() -> None:
    from twinrl.agents import QLearningConfig
    from twinrl.algorithms import build_algorithm

    env = gym.make("twinrl/APSelection-v0")
    with pytest.raises(ValueError, match="safe_exploration='always'"):
        build_algorithm("ql", env, 0, safe_exploration="always")
    with pytest.raises(TypeError, match="DQNConfig"):
        build_algorithm("dqn", env, 0, agent_config=QLearningConfig())
    with pytest.raises(TypeError, match="beta"):
        build_algorithm("dqn", env, 0, agent_config={"beta": 3.0})


def test_greedy_returns_match_the_reference_policy_evaluation() -> None:
    import gymnasium as gym

    from twinrl.baselines.multi_uav import evaluate_uav_policy, hover
    from twinrl.envs.multi_uav import MultiUAVParams

    class Hover:
        def act(self, obs: object, *, explore: bool, mask: object = None) -> np.ndarray:
            assert not explore
            return np.zeros(4, dtype=np.int64)

    values = episodic.greedy_returns(gym.make("twinrl/MultiUAV-v0"), Hover(), 3, seed=5)
    reference = evaluate_uav_policy(MultiUAVParams(), hover, episodes=3, seed=5)
    assert len(values) == 3 and np.mean(values) == pytest.approx(reference["mean_rate"])
