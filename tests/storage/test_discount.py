from __future__ import annotations

import numpy as np
import pytest

from tests.storage.test_storage import batch, with_field
from twinrl.storage import Storage


def test_discount_round_trip_and_nan_for_one_step_rows() -> None:
    s = Storage(capacity=6, n_twin_domains=1, seed=0)
    s.add(batch(range(3), 0))
    assert s.domain(0).discount is None  # one-step only: read back exactly as added
    s.add(with_field(batch(range(3, 5), 0), discount=np.array([0.25, 0.5])))
    s.add(with_field(batch(range(5, 7), 1), discount=np.array([0.125, np.nan])))
    phys = s.domain(0)
    np.testing.assert_array_equal(phys.discount, [np.nan, np.nan, np.nan, 0.25, 0.5])
    np.testing.assert_array_equal(s.domain(1).discount, [0.125, np.nan])
    sample = s.sample(64, {0: 0.5, "twin": 0.5})
    ids = sample.reward.astype(int)
    want = {0: np.nan, 1: np.nan, 2: np.nan, 3: 0.25, 4: 0.5, 5: 0.125, 6: np.nan}
    np.testing.assert_array_equal(sample.discount, [want[i] for i in ids])


def test_discount_survives_state_dict_and_old_checkpoints_load() -> None:
    s = Storage(capacity=4, seed=0)
    s.add(with_field(batch(range(2), 0), discount=np.array([0.9, 0.81])))
    r = Storage(capacity=4, seed=1)
    r.load_state_dict(s.state_dict())
    np.testing.assert_array_equal(r.domain(0).discount, [0.9, 0.81])
    old = {k: v for k, v in s.state_dict().items() if k != "buffer.discount"}
    r.load_state_dict(old)  # written before discounts existed: every row one-step
    assert r.domain(0).discount is None


@pytest.mark.parametrize("bad", [np.array([1.5, 0.5]), np.array([-0.1, 0.5]), np.array([0.5])])
def test_bad_discount_raises(bad: np.ndarray) -> None:
    s = Storage(capacity=4, seed=0)
    with pytest.raises(ValueError, match="discount"):
        s.add(with_field(batch(range(2), 0), discount=bad))
    assert len(s) == 0
