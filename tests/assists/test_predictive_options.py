"""PredictiveTargets' options of the ``prediction`` arms: the physical future (the oracle arm) and
varied first actions, checked against the physical env stepped by hand."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import twinrl  # noqa: F401  (registers the envs)
from twinrl.assists.base import StepContext
from twinrl.assists.predictive_targets import PredictiveTargets
from twinrl.errors import ConfigError
from twinrl.twin import DigitalTwin

CONTINUATION = np.array([2, 0, 3, 1])
"""The scripted greedy policy's move after the first step (every domain, every step)."""


class Scripted:
    def act(self, obs: Any, *, explore: bool, mask: Any = None) -> Any:
        return CONTINUATION


def _setup(seed: int = 4) -> tuple[gym.Env[Any, Any], DigitalTwin, Any, Any]:
    env = gym.make("twinrl/MultiUAV-v0", reward_centre=20.0)
    obs, _ = env.reset(seed=seed)
    for _ in range(3):  # leave the hangar, so moves differ
        obs, *_ = env.step(np.array([1, 3, 1, 3]))
    twin = DigitalTwin(env)
    state = env.unwrapped.get_state()
    twin.sync(state)
    return env, twin, obs, state


def _physical_return(env: gym.Env[Any, Any], state: Any, first: Any, k: int, gamma: float) -> float:
    env.unwrapped.set_state(state)
    total = 0.0
    for i in range(k):
        _, reward, *_ = env.step(first if i == 0 else CONTINUATION)
        total += gamma**i * reward
    env.unwrapped.set_state(state)
    return total


def test_physical_future_replays_what_the_physical_env_will_do() -> None:
    env, twin, obs, state = _setup()
    first = np.array([1, 1, 4, 0])
    ctx = StepContext(1, obs, None, first, twin)
    oracle = PredictiveTargets(k=4, m=1, gamma=0.9, future="physical").rollout(ctx, Scripted())  # type: ignore[arg-type]
    expected = _physical_return(env, state, first, 4, 0.9)
    assert oracle.reward[0] == pytest.approx(expected, rel=1e-12)
    guesses = PredictiveTargets(k=4, m=3, gamma=0.9, rng=0).rollout(ctx, Scripted())  # type: ignore[arg-type]
    assert not np.isclose(guesses.reward, expected, rtol=1e-9).any()  # own futures differ


def test_varied_first_actions_start_each_future_with_its_own_action() -> None:
    env, twin, obs, state = _setup()
    taken = np.array([0, 0, 0, 0])
    ctx = StepContext(1, obs, None, taken, twin)
    assist = PredictiveTargets(k=2, m=5, gamma=0.5, rng=3, future="physical",
                               first_actions="varied", action_space=env.action_space)  # fmt: skip
    out = assist.rollout(ctx, Scripted())  # type: ignore[arg-type]
    assert out.action.shape == (5, 4) and (out.action[0] == taken).all()
    assert len({tuple(a) for a in out.action.tolist()}) == 5
    assert out.action.min() >= 0 and out.action.max() <= 4
    for row, first in enumerate(out.action):
        assert out.reward[row] == pytest.approx(_physical_return(env, state, first, 2, 0.5))
    again = PredictiveTargets(k=2, m=5, gamma=0.5, rng=3, future="physical",
                              first_actions="varied", action_space=env.action_space)  # fmt: skip
    np.testing.assert_array_equal(again.rollout(ctx, Scripted()).action, out.action)  # type: ignore[arg-type]


def test_varied_first_actions_on_a_discrete_space() -> None:
    assist = PredictiveTargets(k=1, m=4, gamma=0.9, rng=0, first_actions="varied",
                               action_space=gym.spaces.Discrete(7))  # fmt: skip
    drawn = assist._random_actions(50)
    assert drawn.shape == (50,) and drawn.min() >= 0 and drawn.max() <= 6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"future": "oracle"}, "future"),
        ({"future": None}, "future"),
        ({"first_actions": "random"}, "first_actions"),
        ({"first_actions": "varied"}, "action_space"),
        ({"first_actions": "varied", "action_space": gym.spaces.Box(0, 1)}, "action_space"),
    ],
)
def test_bad_options_are_refused_by_name(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PredictiveTargets(k=1, m=2, gamma=0.9, **kwargs)
