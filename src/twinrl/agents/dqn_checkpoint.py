"""What a :class:`~twinrl.agents.dqn.DQN` checkpoint holds besides weights and replay: the pending
n-step rows (``pending.*``, to arrays and back, checked against the agent's sizes), plus the
names of its counter entries. No torch here."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.agents.nstep import rows_to_transitions
from twinrl.checkpoint import check_state_dict
from twinrl.errors import CheckpointError

PENDING = ("obs", "action", "reward", "next_obs")
"""The per-row columns of a pending n-step row, in row order (then ``terminated``, ``next_mask``)."""
COUNTERS = ("adam.step", "iteration", "learn_calls", "gradient_steps")
"""The state entries that are non-negative integer counters."""


def pending_arrays(pending: Sequence[tuple[Any, ...]]) -> dict[str, NDArray[Any]]:
    """The pending n-step rows as ``pending.count`` and one ``pending.<column>`` array each."""
    arrays: dict[str, NDArray[Any]] = {"pending.count": np.array(len(pending), dtype=np.int64)}
    if pending:
        rows = rows_to_transitions([(*r, 1.0) for r in pending], pending[0][5] is not None)
        for name, value in rows._asdict().items():
            if value is not None and name not in ("source", "discount"):
                arrays[f"pending.{name}"] = value
    return arrays


def pending_rows(
    arrays: Mapping[str, NDArray[Any]],
    *,
    n_step: bool,
    obs_size: int,
    n_branches: int,
    n_actions: int,
    discrete: bool,
) -> list[tuple[Any, ...]]:
    """The pending n-step rows of a :meth:`~twinrl.agents.dqn.DQN.save` file, checked against
    the agent's sizes (``n_step``: the agent keeps n-step rows at all)."""
    count_array = np.asarray(arrays.get("pending.count", np.array(0)))
    if count_array.shape != () or count_array.dtype.kind not in "iu" or count_array < 0:
        raise CheckpointError(f"checkpoint pending.count={count_array!r} is not an int >= 0")
    count = int(count_array)
    if count and not n_step:
        raise CheckpointError(f"checkpoint holds {count} pending n-step rows; n_step is 1")
    branch = () if discrete else (n_branches,)
    obs_shape = (count, obs_size)
    given_obs = np.shape(arrays.get("pending.obs", ()))
    if len(given_obs) > 1 and given_obs[0] == count and math.prod(given_obs[1:]) == obs_size:
        obs_shape = given_obs  # observations keep their own shape (e.g. a 2-D Box)
    shapes = {
        "obs": (obs_shape, "fib"), "action": ((count, *branch), "i"), "reward": ((count,), "f"),
        "next_obs": (obs_shape, "fib"), "terminated": ((count,), "b"),
        "next_mask": ((count, n_branches * n_actions), "i"),
    }  # fmt: skip
    names = {f"pending.{k}": v for k, v in shapes.items() if count}
    if "pending.next_mask" not in arrays:
        names.pop("pending.next_mask", None)
    given = {k: v for k, v in arrays.items() if k != "pending.count"}
    rows = check_state_dict(given, names, owner="DQN checkpoint") if count else {}
    mask = rows.get("pending.next_mask")
    return [
        (
            *(rows[f"pending.{name}"][i] for name in PENDING),
            bool(rows["pending.terminated"][i]),
            None if mask is None else mask[i],
        )
        for i in range(count)
    ]
