"""Pure, batched dynamics of edge task scheduling (paper 002, Eq. 1-3).

Every function here is a pure function of its arguments with a leading batch axis, so a digital
twin evaluates hundreds of transmission orders in one numpy call. The scalar kernels at the bottom
are compiled with numba and perform *the same floating-point operations in the same order* as the
numpy kernels, so the compiled training backend (:mod:`twinrl.experiments.fused`) reproduces the
general training loop bit for bit.

A task set is an array ``tasks`` of shape ``(N, 3)`` with columns ``(d, c, eps)``: data size in
bits, complexity in CPU cycles per bit, and deadline in seconds.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

D, C, EPS = 0, 1, 2  # columns of a task array


def task_times(tasks: NDArray[np.float64], rate: float, f_ser: float) -> tuple[NDArray, NDArray]:
    """Per-task transmission time ``d / R`` and execution time ``d c / f_ser`` (Eq. 1-2)."""
    tasks = np.asarray(tasks, dtype=np.float64)
    tx = tasks[..., D] / rate
    ex = tasks[..., D] * tasks[..., C] / f_ser
    return tx, ex


@numba.vectorize(["float64(float64, float64, float64)"], cache=True)
def server_done(t_ready: float, t_server: float, ex: float) -> float:  # pragma: no cover
    """Eq. (2): the server starts a task once all its data has arrived (``t_ready``) and the
    previous task is done (``t_server``), and needs ``ex`` to execute it. The one implementation:
    the env, the kernels here, the fused backend and the exact solver call it."""
    return max(t_ready, t_server) + ex


def completion_times(
    tx: NDArray[np.float64], ex: NDArray[np.float64], orders: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Completion time of each position of each order (Eq. 1-2).

    Args:
        tx: transmission time per task, shape ``(N,)``.
        ex: execution time per task, shape ``(N,)``.
        orders: task indices in transmission order, shape ``(B, L)`` with ``L <= N``.

    Returns:
        ``T_comp`` of shape ``(B, L)``: position ``j`` holds the completion time of the task
        transmitted ``j``-th.
    """
    orders = np.atleast_2d(orders)
    out = np.empty(orders.shape, dtype=np.float64)
    t_ready = np.zeros(orders.shape[0])
    t_prev = np.zeros(orders.shape[0])
    for j in range(orders.shape[1]):
        task = orders[:, j]
        t_ready = t_ready + tx[task]  # Eq. (1): all data of the j-th task has arrived
        t_prev = server_done(t_ready, t_prev, ex[task])  # Eq. (2): wait for the server
        out[:, j] = t_prev
    return out


def order_costs(
    tx: NDArray[np.float64],
    ex: NDArray[np.float64],
    eps: NDArray[np.float64],
    orders: NDArray[np.int64],
    zeta: float,
) -> NDArray[np.float64]:
    """Objective of Eq. (3) for a batch of complete orders: sum of completion times + zeta * misses.

    The sum is accumulated left to right (not numpy's pairwise sum) so that it matches the compiled
    scalar kernel :func:`order_cost_scalar` exactly.
    """
    orders = np.atleast_2d(orders)
    t_comp = completion_times(tx, ex, orders)
    cost = np.zeros(orders.shape[0])
    for j in range(orders.shape[1]):
        cost = cost + step_cost(t_comp[:, j], eps[orders[:, j]], zeta)
    return cost


def step_cost(t_comp: NDArray, deadline: NDArray, zeta: float) -> NDArray:
    """Cost of one scheduled task: its completion time plus ``zeta`` if it misses its deadline."""
    return t_comp + zeta * (t_comp > deadline)


def unrank_permutations(index: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    """Permutations of ``range(n)`` with the given lexicographic ranks (factorial number system).

    Rank 0 is ``[0, 1, ..., n-1]``; rank ``n! - 1`` is ``[n-1, ..., 0]``.
    """
    index = np.atleast_1d(np.asarray(index, dtype=np.int64))
    remaining = np.tile(np.arange(n, dtype=np.int64), (index.shape[0], 1))
    out = np.empty((index.shape[0], n), dtype=np.int64)
    rest = index.copy()
    rows = np.arange(index.shape[0])
    for pos in range(n):
        radix = math.factorial(n - 1 - pos)
        digit = rest // radix
        rest = rest % radix
        out[:, pos] = remaining[rows, digit]
        # Remove the chosen element: shift the tail of each row left by one.
        keep = np.arange(n - pos - 1)
        shifted = keep[None, :] + (keep[None, :] >= digit[:, None])
        remaining = remaining[rows[:, None], shifted]
    return out


def rank_permutations(orders: NDArray[np.int64]) -> NDArray[np.int64]:
    """Inverse of :func:`unrank_permutations` for a batch of complete permutations."""
    orders = np.atleast_2d(np.asarray(orders, dtype=np.int64))
    n = orders.shape[1]
    rank = np.zeros(orders.shape[0], dtype=np.int64)
    for pos in range(n):
        smaller_later = (orders[:, pos + 1 :] < orders[:, pos : pos + 1]).sum(axis=1)
        rank += smaller_later * math.factorial(n - 1 - pos)
    return rank


def rank_prefixes(prefixes: NDArray[np.int64], lengths: NDArray[np.int64], n: int) -> NDArray:
    """Index of each partial order (a prefix of distinct tasks) among all prefixes of ``range(n)``.

    Prefixes are numbered by length first (the empty prefix is 0), then lexicographically within a
    length, so the indices of all ``sum_k n!/(n-k)!`` prefixes are ``0 .. num_prefixes(n) - 1``.
    """
    prefixes = np.atleast_2d(prefixes)
    lengths = np.atleast_1d(lengths)
    offsets = np.cumsum([0] + [math.perm(n, k) for k in range(n + 1)])
    index = offsets[lengths].astype(np.int64)
    within = np.zeros(prefixes.shape[0], dtype=np.int64)
    for pos in range(n):
        active = pos < lengths
        value = prefixes[:, pos]
        used_before = prefixes[:, :pos] < value[:, None]
        digit = value - used_before.sum(axis=1)  # rank of value among the unused tasks
        radix = np.array([math.perm(n - pos - 1, max(int(k) - pos - 1, 0)) for k in lengths])
        within = within + np.where(active, digit * radix, 0)
    return index + within


def num_prefixes(n: int) -> int:
    """Number of partial orders of ``n`` tasks, the empty one included."""
    return sum(math.perm(n, k) for k in range(n + 1))


# --- compiled scalar kernels (same operations, same order as the numpy kernels above) ----------


@numba.njit(cache=True)
def order_cost_scalar(
    tx: NDArray, ex: NDArray, eps: NDArray, order: NDArray, zeta: float
) -> float:  # pragma: no cover - compiled; tested against order_costs
    t_ready = 0.0
    t_prev = 0.0
    cost = 0.0
    for j in range(order.shape[0]):
        task = order[j]
        t_ready = t_ready + tx[task]
        t_prev = server_done(t_ready, t_prev, ex[task])
        cost = cost + (t_prev + zeta * (t_prev > eps[task]))
    return cost
