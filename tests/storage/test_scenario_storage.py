"""Scenario-aware storage: sampling near a scenario follows the stated similarity weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twinrl.contract import Scenario, Transitions
from twinrl.errors import CheckpointError, ConfigError, ConfigTypeError
from twinrl.storage import Storage

A, B, C = Scenario.of(x=1.0), Scenario.of(x=2.0), Scenario.of(x=4.0)


def _batch(n: int, source: int, first: int) -> Transitions:
    obs = np.arange(first, first + n)
    return Transitions(obs, np.zeros(n, np.int64), np.zeros(n), obs, np.zeros(n, bool), None,
                       np.full(n, source, np.int64))  # fmt: skip


def _filled() -> Storage:
    """Physical: 10 rows of A, 30 of B; twin: 20 of C and 5 without a scenario (obs = row id)."""
    s = Storage(100, 1, seed=0)
    s.set_scenario(A)
    s.add(_batch(10, 0, 0))
    s.set_scenario(B)
    s.add(_batch(30, 0, 10))
    s.set_scenario(C)
    s.add(_batch(20, 1, 40))
    s.set_scenario(None)
    s.add(_batch(5, 1, 60))
    return s


def _groups(obs: np.ndarray) -> np.ndarray:
    return np.searchsorted([10, 40, 60], obs, side="right")  # 0: A, 1: B, 2: C, 3: none


def test_sampling_near_a_scenario_follows_the_similarity_weights() -> None:
    s, n = _filled(), 40_000
    # similarity to A at bandwidth 0.5: A 1, B exp(-0.5/0.5), C exp(-0.75/0.5), none exp(-2)
    sim = np.array([1.0, math.exp(-1.0), math.exp(-1.5), math.exp(-2.0)])
    expected = n * np.array([10, 30, 20, 5]) * sim / (np.array([10, 30, 20, 5]) @ sim)
    got = np.bincount(_groups(s.sample(n, near=A, bandwidth=0.5).obs), minlength=4)
    chi2 = float(((got - expected) ** 2 / expected).sum())
    assert chi2 < 16.27  # the 0.999 quantile of chi-square with 3 degrees of freedom
    probs = s.weights_near(A, 0.5)
    assert probs.sum() == pytest.approx(1.0)
    assert probs[0, 0] == pytest.approx(expected[0] / n / 10)


def test_near_sampling_keeps_the_fixed_mixture_of_domains() -> None:
    s, n = _filled(), 20_000
    got = s.sample(n, {0: 0.5, "twin": 0.5}, near=A, bandwidth=0.5)
    assert abs((got.source == 0).mean() - 0.5) < 0.02
    physical = _groups(got.obs[got.source == 0])
    # within the physical part: A rows weigh 10 x 1, B rows 30 x e^-1
    share_a = 10 / (10 + 30 * math.exp(-1.0))
    assert abs((physical == 0).mean() - share_a) < 0.02


def test_near_sampling_is_reproducible_and_uniform_sampling_is_unchanged() -> None:
    one, two = _filled(), _filled()
    assert np.array_equal(one.sample(50, near=B).obs, two.sample(50, near=B).obs)
    assert np.array_equal(one.sample(50).obs, two.sample(50).obs)


def test_bad_near_options_are_refused() -> None:
    s = _filled()
    with pytest.raises(ConfigTypeError, match="near"):
        s.sample(5, near={"x": 1.0})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="bandwidth"):
        s.sample(5, near=A, bandwidth=0.0)
    with pytest.raises(ConfigTypeError, match="Scenario"):
        s.set_scenario({"x": 1.0})  # type: ignore[arg-type]


def test_scenario_tags_survive_a_checkpoint() -> None:
    s = _filled()
    restored = Storage(100, 1)
    restored.load_state_dict(s.state_dict())
    assert restored.scenarios == [A, B, C]
    assert restored.scenario_tags(1).tolist() == [2] * 20 + [-1] * 5
    assert np.array_equal(restored.sample(30, near=C).obs, s.sample(30, near=C).obs)
    state = s.state_dict()
    state["buffer.scenario"] = np.full_like(state["buffer.scenario"], 7)
    with pytest.raises(CheckpointError, match="scenario"):
        Storage(100, 1).load_state_dict(state)
    state = s.state_dict()
    state["scenarios"] = np.frombuffer(b"[[1]]", dtype=np.uint8).copy()
    with pytest.raises(CheckpointError, match="scenarios"):
        Storage(100, 1).load_state_dict(state)


def test_stored_as_puts_a_block_under_another_domain() -> None:
    s = Storage(10, 2)
    with s.stored_as(2):
        s.add(_batch(3, 0, 0))
    s.add(_batch(1, 0, 3))
    assert s.sizes.tolist() == [1, 0, 3]
    with pytest.raises(ValueError, match="source=3"), s.stored_as(3):
        pass
