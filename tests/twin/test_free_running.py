"""Free-running domains (paper 000, Section II-A): their own trajectories between sync moments,
checked step by step against hand-driven copies of the physical env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import twinrl  # noqa: F401  (registers the envs)
from twinrl.errors import ConfigError
from twinrl.twin import DigitalTwin, FreeRunningDomains, VisitCounter


def _env() -> gym.Env:
    env = gym.make("twinrl/APSelection-v0", n_steps=6)
    env.reset(seed=3)
    return env


def _copy(env: gym.Env, state) -> gym.Env:
    """A hand-driven copy of the physical env, set to ``state``."""
    other = gym.make("twinrl/APSelection-v0", n_steps=6)
    other.reset(seed=0)
    other.unwrapped.set_state(state)
    return other


def test_domains_follow_their_own_trajectories_and_resync_at_the_stated_moments() -> None:
    env = _env()
    obs, _ = env.reset(seed=3)
    twin = DigitalTwin(env)
    free = FreeRunningDomains(twin, 2, sync_every=4)
    rng = np.random.default_rng(0)
    copies: list[gym.Env] = []
    synced_state = None
    left_physical = False
    for i in range(1, 14):
        if free.due(i):  # the stated moments: 1, 5, 9, 13
            synced_state = twin.capture(env)
            free.sync(synced_state, obs, iteration=i)
            copies = [_copy(env, synced_state), _copy(env, synced_state)]
        actions = rng.integers(0, 5, size=2)
        out = free.step(actions)
        for j in range(2):
            next_obs, reward, terminated, truncated, _ = copies[j].step(int(actions[j]))
            assert out.reward[j] == reward
            assert int(out.next_obs[j]) == int(next_obs)
            assert bool(out.terminated[j]) == terminated
            if terminated or truncated:  # the stated restart: the last synced state
                copies[j] = _copy(env, synced_state)
            else:
                assert int(free.obs[j]) == int(next_obs)
        physical_action = int(rng.integers(0, 5))
        left_physical |= bool((actions != physical_action).any())
        obs, _, terminated, truncated, _ = env.step(physical_action)
        if terminated or truncated:
            obs, _ = env.reset()
    assert free.synced_at == [1, 5, 9, 13]
    assert left_physical and free.restarts > 0


def test_domains_never_touch_the_physical_env_and_restart_where_told() -> None:
    env = _env()
    twin = DigitalTwin(env)
    before = twin.capture(env)
    free = FreeRunningDomains(twin, 3)
    free.sync(before, 0, iteration=1)
    restart = (before, 0, None)
    for _ in range(6):
        free.step(np.array([0, 1, 2]), restart=restart)
    after = twin.capture(env)
    assert all(np.array_equal(getattr(after, f), getattr(before, f))
               for f in ("t", "task_classes", "ap_free_at"))  # fmt: skip
    assert free.restarts == 3  # every domain ended its 6-step episode once, and restarted
    assert all(s is before for s in free.states)
    assert twin.evaluations == 18
    assert not free.due(2)  # on demand only: no schedule after the first sync


def test_bad_use_raises_clear_errors() -> None:
    twin = DigitalTwin(_env())
    with pytest.raises(ConfigError, match="n="):
        FreeRunningDomains(twin, 0)
    with pytest.raises(ConfigError, match="sync_every"):
        FreeRunningDomains(twin, 1, sync_every=0)
    free = FreeRunningDomains(twin, 2)
    with pytest.raises(ConfigError, match="synced"):
        free.step(np.array([0, 1]))
    free.sync(twin.capture(_env()), 0)
    with pytest.raises(ConfigError, match="3 actions for 2"):
        free.step(np.array([0, 1, 2]))


def test_visit_counter_counts_distinct_pairs() -> None:
    visits = VisitCounter()
    visits.add([1, 1, 2], [0, 0, 0])
    visits.add(np.array([[0.5, 1.0], [0.5, 1.0]]), [1, 2])
    assert len(visits) == 4
