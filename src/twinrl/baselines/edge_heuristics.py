"""Deterministic heuristics for edge task scheduling (paper 002, Eq. 3).

:func:`edf`, :func:`spt`, :func:`spt_transmission` and :func:`johnson` sort the tasks by one key;
:func:`local_search` improves an order by best-improvement swap and insertion moves (by default
from the cheapest of the four), evaluating the whole neighbourhood in one batched kernel call.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from twinrl.baselines.edge_schedule import FloatArray, IntArray, Schedule, _prepare, _schedule
from twinrl.envs import edge_kernels as k
from twinrl.envs.edge_scheduling import EdgeParams


def edf(params: EdgeParams, tasks: Any) -> Schedule:
    """Earliest deadline first: tasks by increasing ``eps`` (ties by task index).

    Args:
        params: system parameters.
        tasks: task set of shape ``(N, 3)``, columns ``(d, c, eps)``.

    Returns:
        The EDF schedule and its cost.
    """
    tx, ex, eps, zeta = _prepare(params, tasks)
    return _schedule(tx, ex, eps, zeta, np.argsort(eps, kind="stable"))


def spt(params: EdgeParams, tasks: Any) -> Schedule:
    """Shortest processing time first: tasks by increasing ``tx + ex`` (ties by task index).

    Args:
        params: system parameters.
        tasks: task set of shape ``(N, 3)``, columns ``(d, c, eps)``.

    Returns:
        The SPT schedule and its cost.
    """
    tx, ex, eps, zeta = _prepare(params, tasks)
    return _schedule(tx, ex, eps, zeta, np.argsort(tx + ex, kind="stable"))


def spt_transmission(params: EdgeParams, tasks: Any) -> Schedule:
    """Shortest transmission first: tasks by increasing ``tx = d / R`` (ties by task index).

    Args:
        params: system parameters.
        tasks: task set of shape ``(N, 3)``, columns ``(d, c, eps)``.

    Returns:
        The schedule and its cost.
    """
    tx, ex, eps, zeta = _prepare(params, tasks)
    return _schedule(tx, ex, eps, zeta, np.argsort(tx, kind="stable"))


def _johnson_order(tx: FloatArray, ex: FloatArray) -> IntArray:
    first = np.flatnonzero(tx <= ex)
    second = np.flatnonzero(tx > ex)
    head = first[np.argsort(tx[first], kind="stable")]
    tail = second[np.argsort(-ex[second], kind="stable")]
    return np.concatenate([head, tail]).astype(np.int64)


def johnson(params: EdgeParams, tasks: Any) -> Schedule:
    """Johnson's rule for the two-machine flow shop (transmission, then execution).

    Tasks with ``tx <= ex`` come first by increasing ``tx``, then the others by decreasing ``ex``
    (ties by task index). The rule minimizes the makespan, not the objective of Eq. (3).

    Args:
        params: system parameters.
        tasks: task set of shape ``(N, 3)``, columns ``(d, c, eps)``.

    Returns:
        Johnson's schedule and its cost.
    """
    tx, ex, eps, zeta = _prepare(params, tasks)
    return _schedule(tx, ex, eps, zeta, _johnson_order(tx, ex))


@functools.lru_cache(maxsize=64)
def _neighbour_maps(n: int) -> IntArray:
    """Position maps of all swap and insertion moves: neighbour ``r`` of ``o`` is ``o[maps[r]]``.

    Swaps ``(i, j)``, ``i < j``, come first, then insertions (move position ``i`` to ``j``),
    duplicates removed keeping the first occurrence.
    """
    ident = np.arange(n, dtype=np.int64)
    maps: list[IntArray] = []
    for i in range(n):
        for j in range(i + 1, n):
            m = ident.copy()
            m[i], m[j] = j, i
            maps.append(m)
    for i in range(n):
        rest = np.delete(ident, i)
        for j in range(n):
            if j != i:
                maps.append(np.insert(rest, j, i))
    if not maps:
        out = np.empty((0, n), dtype=np.int64)
    else:
        stacked = np.array(maps, dtype=np.int64)
        _, first = np.unique(stacked, axis=0, return_index=True)
        out = stacked[np.sort(first)]
    out.flags.writeable = False
    return out


def _check_order(order: Any, n: int, name: str) -> IntArray:
    arr = np.asarray(order)
    if (
        arr.shape != (n,)
        or not np.issubdtype(arr.dtype, np.integer)
        or not np.array_equal(np.sort(arr), np.arange(n))
    ):
        raise ValueError(f"{name} must be a permutation of range({n}), got {order!r}")
    return arr.astype(np.int64)


def _best_constructive(tx: FloatArray, ex: FloatArray, eps: FloatArray, zeta: float) -> IntArray:
    """The cheapest of the EDF, SPT, SPT-transmission and Johnson orders (first on ties)."""
    candidates = np.stack(
        [
            np.argsort(eps, kind="stable"),
            np.argsort(tx + ex, kind="stable"),
            np.argsort(tx, kind="stable"),
            _johnson_order(tx, ex),
        ]
    ).astype(np.int64)
    costs = k.order_costs(tx, ex, eps, candidates, zeta)
    return np.asarray(candidates[int(np.argmin(costs))])


def _local_search(
    tx: FloatArray, ex: FloatArray, eps: FloatArray, zeta: float, start: IntArray, max_rounds: int
) -> Schedule:
    order = start
    cost = float(k.order_costs(tx, ex, eps, order[None, :], zeta)[0])
    maps = _neighbour_maps(order.shape[0])
    if maps.shape[0] == 0:
        return Schedule(order, cost)
    for _ in range(max_rounds):
        neighbours = order[maps]
        costs = k.order_costs(tx, ex, eps, neighbours, zeta)  # the whole neighbourhood at once
        i = int(np.argmin(costs))
        if not costs[i] < cost:
            break
        order, cost = neighbours[i], float(costs[i])
    return Schedule(order, cost)


def local_search(
    params: EdgeParams, tasks: Any, start: Any | None = None, max_rounds: int = 1000
) -> Schedule:
    """Best-improvement local search over all swap and insertion neighbours.

    Each round evaluates the whole neighbourhood (all pairwise swaps and all moves of one task to
    another position) in one batched ``order_costs`` call and moves to the cheapest neighbour if
    it is strictly cheaper (ties: the first swap, then the first insertion). It stops at a local
    optimum or after ``max_rounds`` moves.

    Args:
        params: system parameters.
        tasks: task set of shape ``(N, 3)``, columns ``(d, c, eps)``.
        start: initial order, a permutation of ``range(N)``; by default the cheapest of
            :func:`edf`, :func:`spt`, :func:`spt_transmission` and :func:`johnson`.
        max_rounds: maximum number of improving moves (>= 0).

    Returns:
        The final schedule; its cost is never above that of ``start``.

    Raises:
        ValueError: if ``start`` is not a permutation or ``max_rounds`` is negative.
    """
    tx, ex, eps, zeta = _prepare(params, tasks)
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, (int, np.integer)):
        raise TypeError(f"max_rounds must be an int, got {max_rounds!r}")
    if max_rounds < 0:
        raise ValueError(f"max_rounds must be >= 0, got {max_rounds}")
    n = tx.shape[0]
    if start is None:
        first = _best_constructive(tx, ex, eps, zeta)
    else:
        first = _check_order(start, n, "start")
    return _local_search(tx, ex, eps, zeta, first, int(max_rounds))
