"""The :class:`Schedule` every edge-scheduling baseline returns, and the inputs they all check.

A schedule's cost is computed by :func:`twinrl.envs.edge_kernels.order_costs` on its order, so
baselines and environments agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.envs import edge_kernels as k
from twinrl.envs.edge_scheduling import EdgeParams

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Schedule:
    """A complete transmission order and its cost (Eq. 3).

    Attributes:
        order: task indices in transmission order, a read-only int64 array of shape ``(N,)``.
        cost: ``order_costs`` of ``order``: sum of completion times + ``zeta`` per deadline miss.
    """

    order: IntArray
    cost: float

    def __post_init__(self) -> None:
        order = np.array(self.order, dtype=np.int64)
        if order.ndim != 1:
            raise ValueError(f"Schedule.order must be 1-D, got shape {order.shape}")
        order.flags.writeable = False
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "cost", float(self.cost))

    @property
    def rank(self) -> int:
        """Lexicographic rank of the order: the action of the ``order`` formulation of the env."""
        return int(k.rank_permutations(self.order[None, :])[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return bool(np.array_equal(self.order, other.order)) and self.cost == other.cost

    def __hash__(self) -> int:
        return hash((tuple(self.order.tolist()), self.cost))

    def __repr__(self) -> str:
        return f"Schedule(order={self.order.tolist()}, cost={self.cost!r})"


# --- input handling ------------------------------------------------------------------------------


def _check_tasks(tasks: Any) -> FloatArray:
    """``tasks`` as a float64 ``(N, 3)`` array, or raise naming the problem."""
    try:
        arr = np.asarray(tasks, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            "tasks must be a numeric array of shape (N, 3) with columns (d, c, eps), "
            f"got {type(tasks).__name__}"
        ) from err
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1:
        raise ValueError(
            "tasks must have shape (N, 3) with N >= 1 and columns (d, c, eps), "
            f"got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("tasks must be finite (no NaN or inf)")
    if np.any(arr < 0):
        raise ValueError("tasks must be non-negative (d, c, eps)")
    return arr


def _prepare(params: EdgeParams, tasks: Any) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """Validate the inputs; return ``(tx, ex, eps, zeta)``."""
    if not isinstance(params, EdgeParams):
        raise TypeError(f"params must be an EdgeParams, got {type(params).__name__}")
    arr = _check_tasks(tasks)
    tx, ex = k.task_times(arr, params.rate, params.f_ser)
    return (
        np.ascontiguousarray(tx, dtype=np.float64),
        np.ascontiguousarray(ex, dtype=np.float64),
        np.ascontiguousarray(arr[:, k.EPS]),
        float(params.zeta),
    )


def _schedule(
    tx: FloatArray, ex: FloatArray, eps: FloatArray, zeta: float, order: IntArray
) -> Schedule:
    """The :class:`Schedule` of ``order``, its cost computed by the environment kernel."""
    order = np.asarray(order, dtype=np.int64)
    return Schedule(order, float(k.order_costs(tx, ex, eps, order[None, :], zeta)[0]))
