from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from twinrl.agents.base import Transitions
from twinrl.storage import Storage


def batch(ids: Any, source: Any, *, mask: bool = False, action_dim: int = 0) -> Transitions:
    """Transitions whose every field encodes its id, so order and provenance are checkable."""
    ids = np.asarray(ids, dtype=np.int64)
    n = ids.shape[0]
    action = ids if action_dim == 0 else np.repeat(ids[:, None], action_dim, axis=1)
    return Transitions(
        obs=np.repeat(ids[:, None], 3, axis=1).astype(np.float32),
        action=action,
        reward=ids.astype(np.float64),
        next_obs=np.repeat(ids[:, None] + 1, 3, axis=1).astype(np.float32),
        terminated=ids % 2 == 0,
        next_mask=np.ones((n, 4), dtype=np.int8) if mask else None,
        source=np.broadcast_to(np.asarray(source, dtype=np.int64), (n,)).copy(),
    )


def with_field(t: Transitions, **fields: Any) -> Transitions:
    # Transitions overrides __len__, which NamedTuple._replace relies on; rebuild instead.
    return Transitions(**{**t._asdict(), **fields})


def test_capacity_and_per_domain_sizes() -> None:
    s = Storage(capacity=5, n_twin_domains=2, seed=0)
    assert len(s) == 0 and s.sizes.tolist() == [0, 0, 0]
    s.add(batch(range(3), 0))
    s.add(batch(range(10, 18), [1, 2, 1, 2, 1, 2, 1, 1]))
    assert s.sizes.tolist() == [3, 5, 3] and len(s) == 11
    s.add(batch(range(20, 40), 0))
    assert s.sizes.tolist() == [5, 5, 3]
    assert s.state_dict()["buffer.obs"].shape == (3, 5, 3)  # preallocated (K + 1, capacity, ...)


def test_fifo_overwrites_oldest_first() -> None:
    s = Storage(capacity=4, seed=0)
    s.add(batch([0, 1, 2], 0))
    s.add(batch([3, 4], 0))  # 0 is overwritten
    assert s.domain(0).reward.tolist() == [1, 2, 3, 4]
    s.add(batch([5, 6, 7, 8, 9, 10], 0))  # more than the capacity in one add: the last 4 win
    assert s.domain(0).reward.tolist() == [7, 8, 9, 10]
    s.add(batch([11], 0))
    out = s.domain(0)
    assert out.reward.tolist() == [8, 9, 10, 11]
    np.testing.assert_array_equal(out.obs[:, 0], [8, 9, 10, 11])
    np.testing.assert_array_equal(out.next_obs[:, 0], [9, 10, 11, 12])
    np.testing.assert_array_equal(out.terminated, [True, False, True, False])


def test_transitions_keep_their_source_tag() -> None:
    s = Storage(capacity=10, n_twin_domains=3, seed=0)
    s.add(batch(range(8), [0, 3, 1, 1, 2, 3, 0, 2]))
    for domain, ids in {0: [0, 6], 1: [2, 3], 2: [4, 7], 3: [1, 5]}.items():
        out = s.domain(domain)
        assert out.reward.tolist() == ids and out.source.tolist() == [domain] * 2
    sample = s.sample(200)
    expected = {0: {0, 6}, 1: {2, 3}, 2: {4, 7}, 3: {1, 5}}
    for r, src in zip(sample.reward, sample.source, strict=True):
        assert int(r) in expected[int(src)]


def test_vector_actions_and_masks_are_stored() -> None:
    s = Storage(capacity=4, n_twin_domains=1, seed=0)
    s.add(batch([1, 2], [0, 1], mask=True, action_dim=4))
    out = s.sample(6)
    assert out.action.shape == (6, 4) and out.action.dtype == np.int64
    assert out.next_mask is not None and out.next_mask.shape == (6, 4)
    np.testing.assert_array_equal(out.action[:, 0], out.reward)


def test_mixture_proportions_follow_the_weights() -> None:
    s = Storage(capacity=1000, n_twin_domains=3, seed=42)
    s.add(batch(range(1000), 0))
    s.add(batch(range(100), 1))  # twin domains of very different sizes
    s.add(batch(range(900), 2))
    n = 20_000
    out = s.sample(n, mixture={0: 0.3, "twin": 0.7})
    frac = np.bincount(out.source, minlength=4) / n
    # binomial std at p = 0.3, n = 20000 is 0.0032; 0.015 is more than 4 sigma
    assert frac[0] == pytest.approx(0.3, abs=0.015)
    # "twin" pools the stored twin transitions uniformly: 100 : 900 : 0
    assert frac[1] == pytest.approx(0.07, abs=0.015)
    assert frac[2] == pytest.approx(0.63, abs=0.015)
    assert frac[3] == 0
    per_domain = s.sample(n, mixture={0: 0.1, 1: 0.6, 2: 0.3})
    frac = np.bincount(per_domain.source, minlength=4) / n
    np.testing.assert_allclose(frac, [0.1, 0.6, 0.3, 0.0], atol=0.015)
    uniform = np.bincount(s.sample(n).source, minlength=4) / n  # proportional to sizes
    np.testing.assert_allclose(uniform, [0.5, 0.05, 0.45, 0.0], atol=0.015)
    # within a domain, every stored transition is about equally likely
    ids = per_domain.reward[per_domain.source == 1]
    counts = np.bincount(ids.astype(np.int64), minlength=100)
    assert counts.min() > 0.5 * counts.mean() and counts.max() < 1.5 * counts.mean()


def test_sampling_is_reproducible_and_shuffled() -> None:
    def draw(seed: int) -> bytes:
        s = Storage(capacity=50, n_twin_domains=1, seed=seed)
        s.add(batch(range(50), 0))
        s.add(batch(range(100, 150), 1))
        out = [s.sample(32, mixture={0: 0.5, "twin": 0.5}) for _ in range(3)]
        return b"".join(t.obs.tobytes() + t.source.tobytes() for t in out)

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)
    s = Storage(capacity=50, n_twin_domains=1, seed=0)
    s.add(batch(range(50), 0))
    s.add(batch(range(100, 150), 1))
    src = s.sample(64, mixture={0: 0.5, "twin": 0.5}).source
    assert not (np.all(np.diff(src) >= 0) or np.all(np.diff(src) <= 0))  # not grouped by domain


def test_state_dict_round_trip_restores_buffers_and_rng() -> None:
    s = Storage(capacity=6, n_twin_domains=2, seed=3)
    s.add(batch(range(9), [0, 1, 2, 0, 1, 2, 0, 0, 0]))
    s.add(batch(range(20, 25), 0))
    s.sample(5)
    state = s.state_dict()
    for value in state.values():
        assert isinstance(value, np.ndarray) and value.dtype != object
    buf = io.BytesIO()
    np.savez(buf, **state)  # plain arrays: loadable without pickle
    buf.seek(0)
    loaded = dict(np.load(buf, allow_pickle=False))
    t = Storage(capacity=6, n_twin_domains=2, seed=99)
    t.load_state_dict(loaded)
    assert t.sizes.tolist() == s.sizes.tolist()
    for d in range(3):
        assert t.domain(d).obs.tobytes() == s.domain(d).obs.tobytes()
    a, b = s.sample(16, {0: 0.5, "twin": 0.5}), t.sample(16, {0: 0.5, "twin": 0.5})
    assert a.obs.tobytes() == b.obs.tobytes() and a.source.tobytes() == b.source.tobytes()
    s.add(batch([77], 0))
    t.add(batch([77], 0))
    assert t.domain(0).reward.tolist() == s.domain(0).reward.tolist()
    with pytest.raises(ValueError, match="capacity"):
        Storage(capacity=7, n_twin_domains=2).load_state_dict(state)
    with pytest.raises(ValueError, match="lacks"):
        t.load_state_dict({"size": state["size"]})
    empty = Storage(capacity=6, n_twin_domains=2, seed=0)
    fresh = Storage(capacity=6, n_twin_domains=2, seed=5)
    fresh.load_state_dict(empty.state_dict())
    assert len(fresh) == 0


@pytest.mark.parametrize(
    ("mixture", "match"),
    [
        ({0: -0.5, "twin": 1.5}, ">= 0"),
        ({0: 0.5, "twin": 0.4}, "sum to 1"),
        ({0: 0.5, 2: 0.5}, "no transitions"),
        ({0: 0.5, 7: 0.5}, "does not exist"),
        ({0: 0.5, "sim": 0.5}, "'sim'"),
        ({1: 0.5, "twin": 0.5}, "overlaps"),
        ({}, "empty"),
    ],
)
def test_bad_mixtures_raise(mixture: dict[Any, float], match: str) -> None:
    s = Storage(capacity=4, n_twin_domains=2, seed=0)
    s.add(batch([0, 1], [0, 1]))
    with pytest.raises(ValueError, match=match):
        s.sample(4, mixture=mixture)


def test_bad_inputs_raise() -> None:
    s = Storage(capacity=4, n_twin_domains=1, seed=0)
    with pytest.raises(ValueError, match=r"empty|no transitions"):
        s.sample(2)
    with pytest.raises(ValueError, match="twin domains"):
        Storage(capacity=4).sample(1, mixture={"twin": 1.0})
    with pytest.raises(ValueError, match="source ids"):
        s.add(batch([0], 2))
    s.add(batch([0, 1], 0))
    with pytest.raises(ValueError, match="per-transition shape"):
        s.add(batch([2], 0, action_dim=3))
    with pytest.raises(ValueError, match="next_mask"):
        s.add(batch([2], 0, mask=True))
    bad = with_field(batch([2, 3], 0), reward=np.zeros(3))
    with pytest.raises(ValueError, match="leading axis 2"):
        s.add(bad)
    with pytest.raises(ValueError, match="integers"):
        s.add(with_field(batch([2], 0), action=np.array([0.5])))
    with pytest.raises(TypeError, match="Transitions"):
        s.add((1, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        s.sample(0)
    with pytest.raises(ValueError, match="capacity"):
        Storage(capacity=0)
    with pytest.raises(ValueError, match="n_twin_domains"):
        Storage(capacity=3, n_twin_domains=-1)
    with pytest.raises(ValueError, match="domain 5"):
        s.domain(5)
    assert s.sizes.tolist() == [2, 0]  # failed adds stored nothing
