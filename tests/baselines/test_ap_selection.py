from __future__ import annotations

import numpy as np
import pytest

from tests.ap_hand import HAND, P
from twinrl.baselines import (
    AP_POLICIES,
    cheapest_feasible_ap,
    evaluate_policy,
    fastest_ap,
    nearest_ap,
    twin_oracle_ap,
)
from twinrl.baselines.ap_selection import feasible_aps, immediate_rewards
from twinrl.envs.ap_dynamics import APSelectionParams, initial_state
from twinrl.envs.ap_selection import APSelectionEnv


def test_heuristics_on_hand_cases() -> None:
    s = initial_state(P, np.array([1] + [0] * 9))  # x = 0, 3 Mbit due in 10 s
    assert nearest_ap(P, s) == 1  # AP1 at 30 m is nearest
    assert fastest_ap(P, s) == 0  # only AP0 covers x = 0
    assert feasible_aps(P, s).tolist() == [True, True, False]  # AP2: see below
    assert cheapest_feasible_ap(P, s) == 1
    # rewards: AP0 10 - 3 - 6 = 1; AP1 starts at 2 s, ends 3.5 s: 10 - 3.5 - 1.5 = 5;
    # AP2 starts at 7 s, ends 10 s > exit 9 s: failure.
    np.testing.assert_array_equal(immediate_rewards(P, s), [1.0, 5.0, -10.0])
    assert twin_oracle_ap(P, s) == 1


def test_twin_oracle_picks_lowest_index_on_ties() -> None:
    params = APSelectionParams(**{**HAND, "ap_prices": (0.5, 0.5, 1.0),  # type: ignore[arg-type]
                                  "ap_rates": (2e6, 2e6, 1e6), "ap_radii": (50.0, 40.0, 10.0)})  # fmt: skip
    s = initial_state(params, np.zeros(10, dtype=np.int64))  # AP0 and AP1 both cover x = 0
    rewards = immediate_rewards(params, s)
    assert rewards[0] == rewards[1] and twin_oracle_ap(params, s) == 0


def test_twin_oracle_immediate_reward_dominates_every_baseline_on_visited_states() -> None:
    params = APSelectionParams()
    env = APSelectionEnv()
    rng = np.random.default_rng(0)
    checked = strictly_better = 0
    for episode in range(5):
        env.reset(seed=3 if episode == 0 else None)
        terminated = False
        while not terminated:
            state = env.get_state()
            rewards = immediate_rewards(params, state)
            best = rewards[twin_oracle_ap(params, state)]
            for policy in AP_POLICIES.values():
                assert best >= rewards[policy(params, state)]
            strictly_better += best > rewards[nearest_ap(params, state)]
            checked += 1
            _, _, terminated, _, _ = env.step(int(rng.integers(params.n_aps)))
    assert checked == 100 and strictly_better > 0


def test_cheapest_feasible_never_fails_when_some_ap_is_feasible() -> None:
    params = APSelectionParams()
    env = APSelectionEnv()
    env.reset(seed=1)
    terminated = False
    while not terminated:
        state = env.get_state()
        any_feasible = bool(feasible_aps(params, state).any())
        _, _, terminated, _, info = env.step(cheapest_feasible_ap(params, state))
        assert info["failed"] == (not any_feasible)


def test_evaluate_policy_is_deterministic_and_counts_failures() -> None:
    a = evaluate_policy(P, nearest_ap, episodes=4, seed=2)
    b = evaluate_policy(P, nearest_ap, episodes=4, seed=2)
    assert a == b and a["tasks"] == 40 and a["episodes"] == 4
    assert a["failure_ratio"] == a["failures"] / 40
    assert evaluate_policy(P, nearest_ap, episodes=4, seed=3) != a
    always_behind = evaluate_policy(P, lambda p, s: 1, episodes=2, seed=0)  # AP1 ends at 4 s
    assert always_behind["failures"] >= 2 * 5  # epochs 5..9 are past AP1 every pass


@pytest.mark.parametrize("episodes", [0, -1, 2.5, True])
def test_evaluate_policy_rejects_bad_episode_counts(episodes: object) -> None:
    with pytest.raises(ValueError, match="episodes"):
        evaluate_policy(P, nearest_ap, episodes=episodes, seed=0)  # type: ignore[arg-type]


def test_defaults_make_nearest_and_fastest_suboptimal() -> None:
    params = APSelectionParams()
    results = {name: evaluate_policy(params, pol, 20, 0) for name, pol in AP_POLICIES.items()}
    oracle = results["twin_oracle"]
    for name in ("nearest", "fastest"):
        assert oracle["mean_reward"] > results[name]["mean_reward"] + 20.0
        assert oracle["failure_ratio"] < results[name]["failure_ratio"]
    assert oracle["mean_reward"] > 0  # a good policy earns a positive return per pass
    macro_only = evaluate_policy(params, lambda p, s: 0, 20, 0)
    assert oracle["mean_reward"] > macro_only["mean_reward"]
