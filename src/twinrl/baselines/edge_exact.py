"""Exact solvers for edge task scheduling (paper 002, Eq. 3).

* :func:`brute_force` / :func:`worst_order`: exact by enumerating all N! orders (N <= 10).
* :func:`exact_optimum`: exact dynamic programming over subsets with Pareto labels, bounded by a
  local-search upper bound and a two-relaxation lower bound (N = 14 in well under a second).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.baselines.edge_heuristics import _best_constructive, _local_search
from twinrl.baselines.edge_schedule import FloatArray, IntArray, Schedule, _prepare, _schedule
from twinrl.envs import edge_kernels as k
from twinrl.envs.edge_scheduling import EdgeParams

MAX_BRUTE_FORCE_TASKS = 10
"""Largest N accepted by :func:`brute_force` and :func:`worst_order` (10! = 3,628,800 orders)."""
MAX_EXACT_TASKS = 62
"""Largest N accepted by :func:`exact_optimum` (subsets are int64 bit masks)."""
ENUMERATE_UP_TO = 8
""":func:`exact_optimum` enumerates (is :func:`brute_force`) for N <= this, the DP above it."""
BRUTE_FORCE_CHUNK = 100_000
"""Orders evaluated per batched kernel call during enumeration (bounds memory)."""

_PRUNE_RTOL = 1e-9  # slack on the upper bound so floating-point rounding never prunes an optimum
_MISS_RTOL = 1e-12  # slack on the completion-time bound used to count unavoidable misses


# --- exhaustive enumeration ----------------------------------------------------------------------


def _enumerate(params: EdgeParams, tasks: Any, *, maximize: bool, what: str) -> Schedule:
    tx, ex, eps, zeta = _prepare(params, tasks)
    n = tx.shape[0]
    if n > MAX_BRUTE_FORCE_TASKS:
        raise ValueError(
            f"{what} enumerates all N! orders and supports N <= {MAX_BRUTE_FORCE_TASKS}, got "
            f"N={n} ({math.factorial(n):,} orders); use exact_optimum for larger N"
        )
    total = math.factorial(n)
    best_rank, best_cost = 0, math.nan
    for start in range(0, total, BRUTE_FORCE_CHUNK):
        ranks = np.arange(start, min(start + BRUTE_FORCE_CHUNK, total), dtype=np.int64)
        costs = k.order_costs(tx, ex, eps, k.unrank_permutations(ranks, n), zeta)
        i = int(np.argmax(costs) if maximize else np.argmin(costs))  # first hit: lowest rank
        cost = float(costs[i])
        if start == 0 or (cost > best_cost if maximize else cost < best_cost):
            best_rank, best_cost = start + i, cost
    order = k.unrank_permutations(np.array([best_rank], dtype=np.int64), n)[0]
    return Schedule(order, best_cost)


def brute_force(params: EdgeParams, tasks: Any) -> Schedule:
    """The minimum-cost order, by evaluating all N! orders in memory-bounded batches.

    Args:
        params: system parameters (``rate``, ``f_ser``, ``zeta``; ``n_tasks`` is ignored).
        tasks: task set of shape ``(N, 3)``, columns ``(d, c, eps)``, finite and non-negative.

    Returns:
        The optimal schedule; among equal costs, the order of lowest lexicographic rank.

    Raises:
        ValueError: if ``tasks`` is malformed or ``N > MAX_BRUTE_FORCE_TASKS`` (10).
        TypeError: if ``params`` is not an :class:`EdgeParams` or ``tasks`` is not numeric.
    """
    return _enumerate(params, tasks, maximize=False, what="brute_force")


def worst_order(params: EdgeParams, tasks: Any) -> Schedule:
    """The maximum-cost order (the reference for a normalized reward), by full enumeration.

    Args:
        params: system parameters (``rate``, ``f_ser``, ``zeta``; ``n_tasks`` is ignored).
        tasks: task set of shape ``(N, 3)``, columns ``(d, c, eps)``, finite and non-negative.

    Returns:
        The worst schedule; among equal costs, the order of lowest lexicographic rank.

    Raises:
        ValueError: if ``tasks`` is malformed or ``N > MAX_BRUTE_FORCE_TASKS`` (10).
        TypeError: if ``params`` is not an :class:`EdgeParams` or ``tasks`` is not numeric.
    """
    return _enumerate(params, tasks, maximize=True, what="worst_order")


# --- exact dynamic programming -------------------------------------------------------------------


def _remaining_lower_bound(
    mask: IntArray,
    t_ready: FloatArray,
    t_server: FloatArray,
    tx: FloatArray,
    ex: FloatArray,
    eps: FloatArray,
    zeta: float,
    bits: IntArray,
) -> FloatArray:
    """Lower bound on the cost of the unsent tasks of each label (all labels have equal |S|).

    With ``T = t_ready``, ``t = t_server`` and the ``m`` unsent tasks, the j-th of them to complete
    does so no earlier than (a) ``T + X_j + ex`` of that task (no server contention; summed over
    positions this is ``m T + sum_j X_j + sum ex``), (b) ``max(t, T + min tx) + E_j`` (no
    transmission after the first) and (c) ``T + X_j + min ex``, where ``X_j`` / ``E_j`` are the sums
    of the j smallest transmission / execution times. The bound is ``max(sum (a), sum max(b, c))``
    plus ``zeta`` per task that misses its deadline even if sent next.
    """
    n = tx.shape[0]
    n_left = n - int(np.count_nonzero(mask[0] & bits))
    if n_left == 0:
        return np.zeros(mask.shape[0])
    uniq, inv = np.unique(mask, return_inverse=True)
    free = (uniq[:, None] & bits[None, :]) == 0  # (U, n)
    tx_sorted = np.sort(np.where(free, tx[None, :], np.inf), axis=1)[:, :n_left]
    ex_sorted = np.sort(np.where(free, ex[None, :], np.inf), axis=1)[:, :n_left]
    x_cum = np.cumsum(tx_sorted, axis=1)
    e_cum = np.cumsum(ex_sorted, axis=1)
    no_contention = n_left * t_ready + (x_cum.sum(axis=1) + e_cum[:, -1])[inv]
    start = np.maximum(t_server, t_ready + tx_sorted[inv, 0])
    per_position = np.maximum(
        start[:, None] + e_cum[inv], t_ready[:, None] + x_cum[inv] + ex_sorted[inv, :1]
    ).sum(axis=1)
    bound = np.maximum(no_contention, per_position)
    if zeta > 0:
        earliest = np.maximum(t_server[:, None], t_ready[:, None] + tx[None, :]) + ex[None, :]
        misses = ((earliest * (1.0 - _MISS_RTOL) > eps[None, :]) & free[inv]).sum(axis=1)
        bound = bound + zeta * misses
    return np.asarray(bound, dtype=np.float64)


def _pareto_front(mask: IntArray, t_server: FloatArray, cost: FloatArray) -> NDArray[np.intp]:
    """Indices of the labels not dominated within their subset, sorted by (mask, t_server, cost).

    Label ``(t, c)`` is dominated by ``(t', c')`` of the same subset when ``t' <= t`` and
    ``c' <= c`` (the earlier of two identical labels is kept): the future cost depends only on the
    subset and ``t_server`` and does not decrease with ``t_server``.
    """
    idx = np.lexsort((cost, t_server, mask))
    m = mask[idx]
    _, c_rank = np.unique(cost[idx], return_inverse=True)
    c_rank = c_rank.astype(np.int64).reshape(-1)
    new_group = np.ones(idx.shape[0], dtype=bool)
    new_group[1:] = m[1:] != m[:-1]
    group = np.cumsum(new_group) - 1
    n_ranks = int(c_rank.max()) + 1
    # Segmented running minimum of the cost rank: encode (group, -rank) in one int64 so a plain
    # running maximum never mixes groups (every key of a group exceeds all earlier groups' keys).
    key = group * n_ranks + (n_ranks - 1 - c_rank)
    running_min = n_ranks - 1 - (np.maximum.accumulate(key) - group * n_ranks)
    keep = new_group.copy()
    keep[1:] |= c_rank[1:] < running_min[:-1]
    front: NDArray[np.intp] = idx[keep]
    return front


def _subset_dp(
    tx: FloatArray,
    ex: FloatArray,
    eps: FloatArray,
    zeta: float,
    upper_bound: float = math.inf,
    deadline: float | None = None,
) -> IntArray | None:
    """Exact minimum-cost order by DP over subsets of sent tasks with Pareto labels.

    Layer ``l`` holds labels ``(S, t_ready, t_server, cost)`` of partial orders of ``l`` tasks
    (identical tasks are only sent in index order). A label is dropped if another label of the
    same subset dominates it (see :func:`_pareto_front`) or if ``cost + lower bound`` exceeds
    ``upper_bound`` (up to a relative slack of ``_PRUNE_RTOL``). Label values are computed with
    the same floating-point operations as ``order_costs``, so the cost of a label equals
    ``order_costs`` of its partial order exactly.

    Args:
        tx: transmission times, shape ``(N,)``.
        ex: execution times, shape ``(N,)``.
        eps: deadlines, shape ``(N,)``.
        zeta: deadline-miss penalty.
        upper_bound: cost of a known order (prunes the search); ``inf`` for none.
        deadline: ``time.perf_counter()`` value after which to raise ``TimeoutError``.

    Returns:
        An optimal order, or ``None`` if every order costs more than ``upper_bound``.
    """
    n = tx.shape[0]
    bits = np.left_shift(np.int64(1), np.arange(n, dtype=np.int64))
    limit = upper_bound + _PRUNE_RTOL * abs(upper_bound) if math.isfinite(upper_bound) else math.inf
    # Identical tasks are interchangeable (bit for bit): only send them in index order.
    same = (tx[:, None] == tx) & (ex[:, None] == ex) & (eps[:, None] == eps)
    twins = (np.triu(same, k=1) * bits[:, None]).sum(axis=0)  # twins[j]: identical i < j
    mask = np.zeros(1, dtype=np.int64)
    t_ready = np.zeros(1)
    t_server = np.zeros(1)
    cost = np.zeros(1)
    parents: list[tuple[NDArray[np.intp], IntArray]] = []
    for layer in range(n):
        if deadline is not None and time.perf_counter() > deadline:
            raise TimeoutError(f"exact_optimum exceeded its time limit at task {layer} of {n}")
        sent = mask[:, None] & np.concatenate([bits, twins])[None, :]
        parent, task = np.nonzero((sent[:, :n] == 0) & (sent[:, n:] == twins[None, :]))
        task = task.astype(np.int64)
        # Same operations, same order as edge_kernels.completion_times / order_costs.
        new_ready = t_ready[parent] + tx[task]
        new_server = k.server_done(new_ready, t_server[parent], ex[task])
        new_cost = cost[parent] + k.step_cost(new_server, eps[task], zeta)
        new_mask = mask[parent] | bits[task]
        if math.isfinite(limit):
            bound = _remaining_lower_bound(new_mask, new_ready, new_server, tx, ex, eps, zeta, bits)
            alive = np.flatnonzero(new_cost + bound <= limit)
            if alive.size == 0:
                return None
            parent, task = parent[alive], task[alive]
            new_ready, new_server = new_ready[alive], new_server[alive]
            new_cost, new_mask = new_cost[alive], new_mask[alive]
        front = _pareto_front(new_mask, new_server, new_cost)
        parents.append((parent[front], task[front]))
        mask, t_ready = new_mask[front], new_ready[front]
        t_server, cost = new_server[front], new_cost[front]
    best = int(np.argmin(cost))
    order = np.empty(n, dtype=np.int64)
    for layer in range(n - 1, -1, -1):
        parent, task = parents[layer]
        order[layer] = task[best]
        best = int(parent[best])
    return order


def exact_optimum(params: EdgeParams, tasks: Any, *, time_limit: float | None = None) -> Schedule:
    """The minimum-cost order, exactly (up to floating-point rounding of near-ties).

    For ``N <= ENUMERATE_UP_TO`` (8) this is :func:`brute_force` (bit-identical result, lowest
    rank on ties). Above, a dynamic program over subsets of sent tasks: for a subset S the data of
    S has arrived at ``T_ready(S)``, so a partial order is summarized by the label
    ``(t_server, cost)``, and the cost to go depends only on ``(S, t_server)`` and does not
    decrease with ``t_server``; labels dominated in both coordinates are dropped. Labels whose cost
    plus a lower bound on the remaining cost (the better of the relaxations without server
    contention and without transmission, plus the unavoidable deadline misses) exceeds the cost of
    :func:`local_search` are pruned. The result is never worse than :func:`local_search`.

    Args:
        params: system parameters (``rate``, ``f_ser``, ``zeta``; ``n_tasks`` is ignored).
        tasks: task set of shape ``(N, 3)``, columns ``(d, c, eps)``, with ``N <= 62``.
        time_limit: wall-clock budget in seconds, checked before each of the N layers of the DP
            (so it can be overshot by one layer's work); ``None`` for no limit.

    Returns:
        An optimal schedule.

    Raises:
        TimeoutError: if ``time_limit`` is exceeded.
        ValueError: if ``tasks`` is malformed, ``N > MAX_EXACT_TASKS`` or ``time_limit <= 0``.
    """
    tx, ex, eps, zeta = _prepare(params, tasks)
    if time_limit is not None:
        if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)):
            raise TypeError(f"time_limit must be a number of seconds or None, got {time_limit!r}")
        if not (time_limit > 0 and not math.isnan(time_limit)):
            raise ValueError(f"time_limit must be > 0 seconds, got {time_limit!r}")
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    n = tx.shape[0]
    if n > MAX_EXACT_TASKS:
        raise ValueError(f"exact_optimum supports N <= {MAX_EXACT_TASKS}, got N={n}")
    if n <= ENUMERATE_UP_TO:
        return brute_force(params, tasks)
    incumbent = _local_search(tx, ex, eps, zeta, _best_constructive(tx, ex, eps, zeta), 1000)
    order = _subset_dp(tx, ex, eps, zeta, incumbent.cost, deadline)
    if order is None:
        return incumbent
    found = _schedule(tx, ex, eps, zeta, order)
    return found if found.cost <= incumbent.cost else incumbent
