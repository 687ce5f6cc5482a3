"""The vectorized backend's lazily unbatched next states."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import twinrl  # noqa: F401
from twinrl.twin import DigitalTwin
from twinrl.twin.backends import StateBatch, stack_states


def test_state_batch_reads_like_a_list_of_states() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4, formulation="sequential")
    env.reset(seed=3)
    state = env.unwrapped.get_state()
    vec = DigitalTwin(env, backend="vectorized").trial(state, np.array([2, 0, 3]))
    ser = DigitalTwin(env, backend="serial").trial(state, np.array([2, 0, 3]))
    assert isinstance(vec.states, StateBatch) and len(vec.states) == 3
    for i in (0, 1, 2, -1):
        np.testing.assert_array_equal(vec.states[i].order, ser.states[i].order)
        assert float(vec.states[i].t_server) == float(ser.states[i].t_server)
    assert [int(s.order[0]) for s in vec.states[1:]] == [0, 3]
    with pytest.raises(IndexError, match="out of range"):
        vec.states[3]
    assert stack_states(vec.states) is vec.states.batch
