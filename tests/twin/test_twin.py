from __future__ import annotations

import random
import threading
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import twinrl  # noqa: F401
from twinrl.envs.ap_selection import APSelectionEnv
from twinrl.envs.edge_scheduling import EdgeSchedulingEnv
from twinrl.testing import ConformanceError, check_twin_matches, check_twinnable
from twinrl.twin import DigitalTwin


@pytest.mark.parametrize("env_id", ["twinrl/EdgeScheduling-v0"])  # edge-specific kwargs
@pytest.mark.parametrize("formulation", ["order", "sequential"])
@pytest.mark.parametrize("backend", ["vectorized", "serial"])
def test_registered_envs_are_twinnable_and_twins_match(
    env_id: str, formulation: str, backend: str
) -> None:
    env = gym.make(env_id, n_tasks=5, formulation=formulation)
    check_twinnable(env)
    check_twin_matches(env, DigitalTwin(env, backend=backend), steps=30)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), prefix=st.lists(st.integers(0, 5), max_size=5, unique=True))
def test_vectorized_and_serial_backends_are_bit_identical(seed: int, prefix: list[int]) -> None:
    env = gym.make(
        "twinrl/EdgeScheduling-v0", n_tasks=6, formulation="sequential", observation="features"
    )
    env.reset(seed=seed)
    for task in prefix:
        env.step(task)
    state = env.unwrapped.get_state()
    actions = np.array([a for a in range(6) if a not in prefix])
    before = env.unwrapped.get_state()
    vec = DigitalTwin(env, backend="vectorized").trial(state, actions)
    ser = DigitalTwin(env, backend="serial").trial(state, actions)
    assert vec.reward.tobytes() == ser.reward.tobytes()
    assert vec.next_obs.tobytes() == ser.next_obs.tobytes()
    assert np.array_equal(vec.next_mask, ser.next_mask)
    np.testing.assert_array_equal(vec.terminated, ser.terminated)
    after = env.unwrapped.get_state()  # the twin never touches the physical env
    assert np.array_equal(before.order, after.order) and before.rng_state == after.rng_state


def test_twin_counts_evaluations_and_rejects_bad_calls() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4)
    env.reset(seed=0)
    twin = DigitalTwin(env)
    with pytest.raises(RuntimeError, match="synced"):
        _ = twin.identical_state
    twin.trial(env.unwrapped.get_state(), np.arange(10))
    assert twin.evaluations == 10
    with pytest.raises(ValueError, match="states"):
        twin.step_domains([env.unwrapped.get_state()], np.arange(2))
    with pytest.raises(ValueError, match="backend"):
        DigitalTwin(env, backend="gpu")


class _NoState(gym.Env[Any, int]):
    observation_space = gym.spaces.Discrete(1)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        return 0, {}

    def step(self, action: int) -> Any:
        return 0, 0.0, False, False, {}


class _ForgetsRng(EdgeSchedulingEnv):
    """Broken: set_state ignores the RNG, and step draws noise from it."""

    def set_state(self, state: Any) -> None:
        from dataclasses import replace

        super().set_state(replace(state, rng_state=None))

    def step(self, action: Any) -> Any:
        obs, reward, term, trunc, info = super().step(action)
        return obs, reward + float(self.np_random.random()), term, trunc, info


class _ViewState(EdgeSchedulingEnv):
    """Broken: get_state hands out a live array that later steps mutate in place."""

    def reset(self, **kwargs: Any) -> Any:
        self._live = np.zeros(())
        return super().reset(**kwargs)

    def get_state(self) -> Any:
        from dataclasses import replace

        return replace(super().get_state(), t_ready=self._live)

    def step(self, action: Any) -> Any:
        self._live += 1.0
        return super().step(action)


class _LyingTwin(EdgeSchedulingEnv):
    """Broken: the batched dynamics disagree with step()."""

    def step_batch(self, state: Any, actions: Any) -> Any:
        out = super().step_batch(state, actions)
        return out._replace(reward=out.reward * 1.01)


def test_env_without_state_methods_is_twinned_by_deep_copy() -> None:
    env = _NoState()
    check_twinnable(env)
    check_twin_matches(env)
    assert DigitalTwin(env).mode == "copy"


class _GlobalRng(_NoState):
    """Broken for a deep-copy twin: its randomness lives outside the env (a module-level RNG)."""

    def step(self, action: int) -> Any:
        return 0, random.random(), False, False, {}


class _Uncopyable(_NoState):
    """Holds what cannot be deep-copied (like an open render window)."""

    def __init__(self) -> None:
        self.window = threading.Lock()


def test_check_twinnable_rejects_env_with_outside_state() -> None:
    with pytest.raises(ConformanceError, match="outside"):
        check_twinnable(_GlobalRng())


def test_uncopyable_env_gets_a_message_that_says_what_to_do() -> None:
    with pytest.raises(ConformanceError, match="render_mode=None"):
        check_twinnable(_Uncopyable())
    with pytest.raises(ValueError, match="get_state"):
        DigitalTwin(_Uncopyable())


def test_check_twinnable_rejects_env_that_forgets_rng() -> None:
    with pytest.raises(ConformanceError, match="RNG"):
        check_twinnable(_ForgetsRng(n_tasks=4, formulation="sequential"))


def test_check_twinnable_rejects_live_view_snapshots() -> None:
    with pytest.raises(ConformanceError, match="snapshot"):
        check_twinnable(_ViewState(n_tasks=4, formulation="sequential"))


def test_check_twin_matches_rejects_wrong_batched_dynamics() -> None:
    env = _LyingTwin(n_tasks=4)
    with pytest.raises(ConformanceError, match="reward"):
        check_twin_matches(env, DigitalTwin(env, backend="vectorized"))
    check_twin_matches(env, DigitalTwin(env, backend="serial"))  # the serial twin uses step()


def test_vectorized_backend_needs_batched_dynamics() -> None:
    with pytest.raises(ValueError, match="step_batch"):
        DigitalTwin(_NoState(), backend="vectorized")
    wrapped = gym.wrappers.TimeLimit(EdgeSchedulingEnv(n_tasks=4), max_episode_steps=2)
    with pytest.raises(ValueError, match="wrapped"):
        DigitalTwin(wrapped, backend="vectorized")


class _HidesFailures(APSelectionEnv):
    """Broken: the batched dynamics never report a failure to the twin."""

    def step_batch(self, state: Any, actions: Any) -> Any:
        out = super().step_batch(state, actions)
        return out._replace(info={"failed": np.zeros_like(out.info["failed"])})


def test_check_twin_matches_rejects_wrong_declared_info() -> None:
    env = _HidesFailures()
    with pytest.raises(ConformanceError, match="failed"):
        check_twin_matches(env, DigitalTwin(env, backend="vectorized"), steps=60)
    check_twin_matches(env, DigitalTwin(env, backend="serial"), steps=60)
