"""Provenance in the storage space: which learner owns a twin domain, and the parameter store."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twinrl.contract import Transitions
from twinrl.errors import CheckpointError, ConfigError
from twinrl.storage import Storage
from twinrl.storage.parameters import ParameterStore


def _rows(sources: list[int]) -> Transitions:
    n = len(sources)
    return Transitions(
        obs=np.arange(n), action=np.zeros(n, dtype=np.int64), reward=np.arange(n, dtype=float),
        next_obs=np.arange(n) + 1, terminated=np.zeros(n, dtype=bool), next_mask=None,
        source=np.asarray(sources, dtype=np.int64),
    )  # fmt: skip


def test_owned_by_returns_each_learners_domains_with_their_tags() -> None:
    storage = Storage(10, 4, seed=0)
    storage.assign([1, 2], 0)
    storage.assign(3, 1)
    storage.add(_rows([0, 1, 3, 2, 1, 4]))
    np.testing.assert_array_equal(storage.owners, [-1, 0, 0, 1, -1])
    mine = storage.owned_by(0)
    np.testing.assert_array_equal(mine.source, [1, 1, 2])  # domain by domain, oldest first
    np.testing.assert_array_equal(mine.reward, [1.0, 4.0, 3.0])
    np.testing.assert_array_equal(storage.owned_by(1).reward, [2.0])
    with pytest.raises(ValueError, match="no domain belongs to learner 7"):
        storage.owned_by(7)


def test_assign_refuses_the_physical_domain_and_unknown_domains() -> None:
    storage = Storage(10, 2)
    with pytest.raises(ValueError, match="physical"):
        storage.assign([0], 0)
    with pytest.raises(ValueError, match="domain 5 does not exist"):
        storage.assign([5], 0)
    with pytest.raises(ValueError, match="non-empty"):
        storage.assign([], 0)
    with pytest.raises(ConfigError, match="owner"):
        storage.assign([1], -2)


def test_owners_survive_a_checkpoint_and_old_checkpoints_load_without_them() -> None:
    storage = Storage(5, 2, seed=0)
    storage.assign([2], 3)
    storage.add(_rows([1, 2]))
    state = storage.state_dict()
    restored = Storage(5, 2)
    restored.load_state_dict(state)
    np.testing.assert_array_equal(restored.owners, [-1, -1, 3])
    old = {k: v for k, v in state.items() if k != "owner"}
    restored = Storage(5, 2)
    restored.load_state_dict(old)
    np.testing.assert_array_equal(restored.owners, [-1, -1, -1])
    with pytest.raises(CheckpointError, match="owner"):
        Storage(5, 2).load_state_dict({**state, "owner": np.array([0, -1, 3])})


def test_parameter_store_keeps_the_latest_per_learner_and_scenario() -> None:
    store = ParameterStore()
    q = np.zeros(3)
    store.put("a", {"q": q}, domains=(1,), iteration=10, score=1.0, scenario="x")
    q[:] = 9.0  # stored as a copy
    store.put("b", {"q": q}, domains=(2,), iteration=10, score=2.0, scenario="x")
    store.put("a", {"q": q}, domains=(1,), iteration=20, score=5.0, scenario="y")
    store.put("a", {"q": q + 1}, domains=(1,), iteration=30, score=0.5, scenario="x")
    assert len(store) == 3 and store.scenarios == ["x", "y"]
    assert store.best("x").learner == "b" and store.best("y").learner == "a"
    assert store.best("x", among=["a"]).iteration == 30
    np.testing.assert_array_equal(store.get("a", "x").params["q"], 10.0)
    store.put("c", {"q": q}, domains=(3,), iteration=1, scenario="z")  # not evaluated: NaN
    assert math.isnan(store.get("c", "z").score)
    with pytest.raises(ConfigError, match="no evaluated parameters for scenario 'z'"):
        store.best("z")
    with pytest.raises(ConfigError, match="no parameters of learner 'b' in scenario 'y'"):
        store.get("b", "y")
