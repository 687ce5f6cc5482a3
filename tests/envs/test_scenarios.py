"""Scenarios: the typed value, every env's scenario/set_scenario, and the seeded sampler."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from twinrl.contract import Scenario, ScenarioChange
from twinrl.envs import ENV_IDS, ScenarioSampler
from twinrl.envs.scenarios import FAILED_RATE
from twinrl.errors import ConfigError, ConfigTypeError


def test_scenario_is_order_free_and_its_key_is_stable() -> None:
    a = Scenario.of(speed=20.0, ap_rates=[1.0, 2.0], name="a")
    b = Scenario.of({"ap_rates": (1.0, 2.0)}, speed=20, name="b")
    assert a.values == (("ap_rates", (1.0, 2.0)), ("speed", 20.0))
    assert a.key() == Scenario.of(ap_rates=(1.0, 2.0), speed=20.0).key()
    assert a.key() != Scenario.of(ap_rates=(1.0, 2.5), speed=20.0).key()
    assert b.key() == a.key() and a == b  # 20 == 20.0, as Python compares them
    assert Scenario.of(x=-0.0).key() == Scenario.of(x=0.0).key()
    assert a == Scenario.of(ap_rates=(1.0, 2.0), speed=20.0)  # the name is only a label
    assert a["speed"] == 20.0 and a.as_dict()["ap_rates"] == (1.0, 2.0)


def test_distance_and_similarity_against_hand_computed_values() -> None:
    a = Scenario.of(x=1.0, y=(2.0, 4.0))
    b = Scenario.of(x=2.0, y=(2.0, 2.0))
    # x: |1 - 2| / 2 = 0.5; y: (0 + 2 / 4) / 2 = 0.25; mean 0.375
    assert a.distance(b) == pytest.approx(0.375)
    assert b.distance(a) == pytest.approx(0.375)
    assert a.distance(a) == 0.0
    # a parameter only one gives, or tuples of other lengths, count 1: (0.5 + 1 + 1) / 3
    assert a.distance(Scenario.of(x=2.0, y=(2.0,), z=1.0)) == pytest.approx((0.5 + 1 + 1) / 3)
    assert a.similarity(b, 0.5) == pytest.approx(math.exp(-0.75))


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: Scenario.of(x=True), ConfigTypeError),
        (lambda: Scenario.of(x="fast"), ConfigTypeError),
        (lambda: Scenario.of(x=float("nan")), ConfigError),
        (lambda: Scenario((("x", 1.0), ("x", 2.0))), ConfigError),
        (lambda: Scenario([("x", 1.0)]), ConfigTypeError),  # type: ignore[arg-type]
        (lambda: Scenario.of(x=1.0).distance({"x": 1.0}), ConfigTypeError),  # type: ignore[arg-type]
        (lambda: Scenario.of(x=1.0).similarity(Scenario.of(x=1.0), 0.0), ConfigError),
        (lambda: ScenarioChange(0, Scenario.of(x=1.0)), ConfigError),
        (lambda: ScenarioChange(3, {"x": 1.0}), ConfigTypeError),  # type: ignore[arg-type]
    ],
)
def test_bad_scenarios_are_refused_by_name(make, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        make()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_env_exposes_and_sets_its_scenario(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=0)
    base = env.unwrapped.scenario  # type: ignore[attr-defined]
    assert set(base.as_dict()) == set(type(env.unwrapped.params).scenario_fields)  # type: ignore[attr-defined]
    new = ScenarioSampler(env_id, seed=3).sample()
    env.unwrapped.set_scenario(new)  # type: ignore[attr-defined]
    assert env.unwrapped.scenario == new  # type: ignore[attr-defined]
    env.step(env.action_space.sample())  # the state survives the change
    with pytest.raises(ConfigError, match="not scenario parameters"):
        env.unwrapped.set_scenario(Scenario.of(episode_steps=3))  # type: ignore[attr-defined]
    with pytest.raises(ConfigTypeError):
        env.unwrapped.set_scenario(new.as_dict())  # type: ignore[attr-defined]


def test_a_scenario_that_changes_the_spaces_is_refused() -> None:
    env = gym.make("twinrl/MultiUAV-v0")
    with pytest.raises(ConfigError, match="observation space"):
        env.unwrapped.set_scenario(Scenario.of(n_users=11))  # type: ignore[attr-defined]
    assert env.unwrapped.params.n_users == 10  # type: ignore[attr-defined]
    ap = gym.make("twinrl/APSelection-v0")
    with pytest.raises(ConfigError, match="ap_rates"):
        ap.unwrapped.set_scenario(Scenario.of(ap_rates=(1.0, 2.0)))  # type: ignore[attr-defined]


def test_uav_users_start_in_their_cluster() -> None:
    env = gym.make("twinrl/MultiUAV-v0", user_spread=0.2, user_offset=(30.0, -30.0))
    env.reset(seed=0)
    pos = env.unwrapped.get_state().user_pos  # type: ignore[attr-defined]
    centre = np.array([80.0, 20.0])
    assert np.all(np.abs(pos - centre) <= 10.0 + 1e-9)
    default = gym.make("twinrl/MultiUAV-v0")
    default.reset(seed=0)
    plain = gym.make("twinrl/MultiUAV-v0", user_spread=1.0, user_offset=(0.0, 0.0))
    plain.reset(seed=0)
    assert np.array_equal(default.unwrapped.get_state().user_pos,  # type: ignore[attr-defined]
                          plain.unwrapped.get_state().user_pos)  # type: ignore[attr-defined]  # fmt: skip
    with pytest.raises(ConfigError, match="user_spread"):
        gym.make("twinrl/MultiUAV-v0", user_spread=0.0)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_the_sampler_is_reproducible(env_id: str) -> None:
    keys = [s.key() for s in ScenarioSampler(env_id, seed=7).sample(5)]
    assert keys == [s.key() for s in ScenarioSampler(env_id, seed=7).sample(5)]
    assert keys != [s.key() for s in ScenarioSampler(env_id, seed=8).sample(5)]
    assert len(set(keys)) == 5
    fixed = ScenarioSampler(env_id, seed=7, spread=0.0)
    assert all(s == fixed.base for s in fixed.sample(3))


def test_ap_samples_stay_in_the_documented_ranges() -> None:
    sampler = ScenarioSampler("twinrl/APSelection-v0", seed=1, fail_prob=0.3)
    base = sampler.base.as_dict()
    failed = 0
    for s in sampler.sample(200):
        v = s.as_dict()
        for rate, r0 in zip(v["ap_rates"], base["ap_rates"], strict=True):  # type: ignore[arg-type]
            failed += rate == FAILED_RATE
            assert rate == FAILED_RATE or r0 / 2 <= rate <= 2 * r0
        assert 20 / 1.25 <= v["speed"] <= 20 * 1.25  # type: ignore[operator]
        shift = np.subtract(v["ap_positions"], base["ap_positions"])  # type: ignore[arg-type]
        assert np.all(np.abs(shift) <= 50.0)
        assert math.isclose(sum(v["task_probs"]), 1.0)  # type: ignore[arg-type]
    assert 0.2 < failed / 1000 < 0.4  # each of 5 APs fails with probability 0.3


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"spread": 2.0}, ConfigError),
        ({"fail_prob": -0.1}, ConfigError),
        ({"seed": -1}, ConfigError),
    ],
)
def test_bad_sampler_options_are_refused(kwargs, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        ScenarioSampler("twinrl/APSelection-v0", **kwargs)


def test_the_sampler_refuses_other_envs_and_misplaced_options() -> None:
    with pytest.raises(ConfigTypeError, match="ScenarioSampler"):
        ScenarioSampler(gym.make("CartPole-v1"))
    with pytest.raises(ConfigError, match="fail_prob"):
        ScenarioSampler("twinrl/MultiUAV-v0", fail_prob=0.1)


_values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.tuples(st.floats(-1e6, 1e6, allow_nan=False), st.floats(-1e6, 1e6, allow_nan=False)),
)


@given(
    st.dictionaries(st.sampled_from("abc"), _values),
    st.dictionaries(st.sampled_from("abc"), _values),
)
def test_distance_is_a_symmetric_score_in_0_1_that_is_0_for_equal_values(
    x: dict[str, Any], y: dict[str, Any]
) -> None:
    a, b = Scenario.of(x), Scenario.of(y)
    d = a.distance(b)
    assert 0.0 <= d <= 1.0 and d == b.distance(a)
    assert a.distance(Scenario.of(dict(x))) == 0.0
    assert (a.key() == b.key()) == (a == b)
