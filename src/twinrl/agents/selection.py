"""Compiled action-selection primitives shared by the agents and the fused training backend.

Each primitive consumes a *fixed* number of uniform random numbers, handed in by the caller. That
is what lets :mod:`twinrl.experiments.fused` pre-draw the same uniforms in blocks and reproduce the
general training loop exactly.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

UNIFORMS_PER_ACTION = 2
"""An epsilon-greedy decision uses two uniforms: explore-or-not, then which action."""


@numba.njit(cache=True)
def epsilon_at(iteration: int, eps_min: float, eps0: float, beta: float) -> float:
    """Exploration rate at a 1-based physical iteration: eps_min + eps0 exp(-i / beta) (Alg. 1-2,
    line 3), capped at 1. The one implementation: the agents and the fused backend call it."""
    return min(1.0, eps_min + eps0 * math.exp(-iteration / beta))


@numba.vectorize(["float64(float64, float64, float64)"], cache=True)
def q_update(q: float, lr: float, target: float) -> float:  # pragma: no cover - compiled
    """Eq. (5) of paper 002: ``Q + lr (target - Q)``, for one entry or elementwise over arrays.
    The one implementation: the agents and the fused backend call it."""
    return q + lr * (target - q)


@numba.njit(cache=True)
def epsilon_greedy(
    q: NDArray[np.float64],
    valid: NDArray[np.int64],
    eps: float,
    u_explore: float,
    u_choice: float,
    random_ties: bool,
) -> int:  # pragma: no cover - compiled
    """Epsilon-greedy choice among ``valid`` action indices (ascending).

    Explores when ``u_explore < eps``: the ``floor(u_choice * n_valid)``-th valid action. Otherwise
    greedy: among the valid actions with the largest Q value, the ``floor(u_choice * n_ties)``-th in
    ascending order (``random_ties``) or the first.
    """
    n = valid.shape[0]
    if u_explore < eps:
        return valid[int(u_choice * n)]
    best = -np.inf
    ties = 0
    for i in range(n):
        v = q[valid[i]]
        if v > best:
            best = v
            ties = 1
        elif v == best:
            ties += 1
    rank = int(u_choice * ties) if random_ties else 0
    for i in range(n):
        if q[valid[i]] == best:
            if rank == 0:
                return valid[i]
            rank -= 1
    return valid[0]


@numba.njit(cache=True)
def sample_distinct(
    n: int, uniforms: NDArray[np.float64], marks: NDArray[np.int64], token: int
) -> NDArray[np.int64]:  # pragma: no cover - compiled
    """``len(uniforms)`` distinct integers from ``range(n)``, uniformly (Floyd's algorithm).

    Uses exactly one uniform per sample, in insertion order. ``marks`` is caller-owned scratch of
    length >= n; an entry equal to ``token`` means "already chosen", so each call must pass a token
    never used before with that scratch array (e.g. a call counter starting at 1).
    """
    k = uniforms.shape[0]
    out = np.empty(k, dtype=np.int64)
    for i in range(k):
        j = n - k + i
        t = int(uniforms[i] * (j + 1))
        pick = j if marks[t] == token else t
        marks[pick] = token
        out[i] = pick
    return out
