"""Fused compiled backend for one-decision episodes: QL, DTEQL and DTAQL in one numba loop.

The paper's tables need thousands of runs of 25,600 iterations, with DTAQL keeping 501 Q-tables of
N! = 40,320 actions. The general loop (:func:`twinrl.train`) pays Python overhead per iteration and
per twin agent; this backend runs the *same algorithm* with the same random streams and the same
floating-point operations, compiled, for the ``order`` formulation of ``EdgeScheduling-v0`` (a
single state whose one action is a whole order). ``tests/experiments/test_fused.py`` checks that it
gives bit-identical Q-tables and greedy curves to ``twinrl.train`` with ``build_algorithm``.

Three things make it fast:

* The episode has one state and the twin is perfect, so the cost of every order is the same at every
  iteration: all N! costs are computed once with the batched Eq. 1-3 kernel and looked up. Twin
  evaluations are still counted as the algorithm issues them.
* Greedy choices over N! actions use a 16-ary max-tree: each node holds the maximum of its leaves and
  how many leaves attain it, so "the r-th tied maximum in ascending action order" costs a few short
  scans. An update climbs only while an ancestor changes, so most of DTEQL's trials touch one leaf.
* Between two knowledge-sharing steps each twin agent depends only on the shared base table, its own
  changes and its own random stream, so the agents run one after another in one workspace tree that
  is restored from the base after each agent. Sharing needs only the leaves an agent changed,
  because the average is taken as ``base + sum of deltas / (1 + phi)``, or, in the ``visit``
  reading (``dtaql-visit``), as ``base + sum of deltas / (agents that changed the leaf)`` (see
  :class:`twinrl.assists.TwinAgents`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from twinrl.agents.qlearning import QLearningConfig
from twinrl.agents.selection import epsilon_at, q_update, sample_distinct
from twinrl.algorithms import TWIN_AGENT_AVERAGES, Streams
from twinrl.assists.twin_agents import shared_average, visit_average
from twinrl.envs import edge_kernels as k
from twinrl.envs.edge_scheduling import EdgeParams
from twinrl.resources import check_memory

FUSED = ("ql", "dteql", *TWIN_AGENT_AVERAGES)
"""The named algorithms this backend runs."""
CHUNK = 512  # iterations per compiled call; uniforms are drawn per chunk
WIDTH = 16  # children per max-tree node


@dataclass
class FusedResult:
    """Per-iteration curves and final physical Q-table of one fused run."""

    greedy_return: NDArray[np.float64]
    """Return of the greedy order after each physical iteration (minus its Eq. 3 cost)."""
    reward: NDArray[np.float64]
    """Physical reward at each iteration."""
    q: NDArray[np.float64]
    """Final physical Q-table, shape (1, N!)."""
    twin_evaluations: int
    epsilon: NDArray[np.float64]
    """The physical agent's exploration rate at each iteration (the shared schedule)."""


# --- 16-ary max-tree with tie counts --------------------------------------------------------------
# Level d holds WIDTH**d nodes from offset off[d]; the children of node i of level d are the WIDTH
# consecutive nodes from off[d + 1] + i * WIDTH. Leaves (level depth) past the last action hold -inf
# with a tie count of 0.


def fused_bytes(n: int, *, with_twin_agents: bool) -> int:
    """Bytes :func:`run_fused` allocates for N = ``n`` tasks (in Python integers): every order
    and its cost, the initial Q row, the move marks, and the Q tree (float64 values and int32
    counts) with its base copy, plus the twin agents' workspace tree and leaf marks with them."""
    n_actions = math.factorial(n)
    n_nodes = (WIDTH ** (_depth(n_actions) + 1) - 1) // (WIDTH - 1)  # off[depth + 1] of _layout
    trees = 3 if with_twin_agents else 2
    per_action = 8 * n + 8 + 8 + 8 + (8 if with_twin_agents else 0)
    return n_actions * per_action + trees * n_nodes * 12


def _depth(n_actions: int) -> int:
    """Depth of the Q tree over ``n_actions`` leaves."""
    depth = 1
    while WIDTH**depth < n_actions:
        depth += 1
    return depth


def _layout(n_actions: int) -> tuple[int, NDArray[np.int64]]:
    depth = _depth(n_actions)
    off = np.array([(WIDTH**d - 1) // (WIDTH - 1) for d in range(depth + 2)], dtype=np.int64)
    return depth, off


@numba.njit(cache=True, inline="always")
def _scan(v, c, start):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Maximum of the WIDTH nodes from ``start`` and how many leaves attain it (two flat passes)."""
    best = v[start]
    for x in range(start + 1, start + WIDTH):
        best = max(best, v[x])
    count = 0
    for x in range(start, start + WIDTH):
        count += c[x] * (v[x] == best)
    return best, count


@numba.njit(cache=True, inline="always")
def _after(top, n_top, old, n_old, new, n_new):  # type: ignore[no-untyped-def]  # pragma: no cover
    """A parent's (max, count) after one child went from (old, n_old) to (new, n_new).

    Returns ``rescan=True`` when the children must be scanned (the only maximum fell).
    """
    if new > top:
        return new, n_new, False
    lost = n_old if old == top else 0
    if new == top:
        return top, n_top - lost + n_new, False
    if lost and n_top == lost:
        return top, n_top, True
    return top, n_top - lost, False


@numba.njit(cache=True)
def _build(values, v, c, off, depth):  # type: ignore[no-untyped-def]  # pragma: no cover
    leaf0 = off[depth]
    for i in range(off[depth + 1] - leaf0):
        v[leaf0 + i] = -np.inf
        c[leaf0 + i] = 0
    for i in range(values.shape[0]):
        v[leaf0 + i] = values[i]
        c[leaf0 + i] = 1
    for d in range(depth - 1, -1, -1):
        for i in range(off[d + 1] - off[d]):
            v[off[d] + i], c[off[d] + i] = _scan(v, c, off[d + 1] + i * WIDTH)


@numba.njit(cache=True)
def _update(v, c, off, depth, leaf, value):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Set a leaf and fix its ancestors, stopping at the first one that does not change."""
    i, x = leaf, off[depth] + leaf
    old, n_old, new, n_new = v[x], c[x], value, c[x]
    v[x] = value
    for d in range(depth - 1, -1, -1):
        p = i // WIDTH
        x = off[d] + p
        top, n_top, rescan = _after(v[x], c[x], old, n_old, new, n_new)
        if rescan:
            top, n_top = _scan(v, c, off[d + 1] + p * WIDTH)
        if top == v[x] and n_top == c[x]:
            return
        old, n_old, new, n_new = v[x], c[x], top, n_top
        v[x], c[x] = top, n_top
        i = p


@numba.njit(cache=True)
def _tied(v, c, off, depth, rank):  # type: ignore[no-untyped-def]  # pragma: no cover
    """The ``rank``-th (0-based, ascending) leaf attaining the maximum."""
    best, i = v[0], 0
    for d in range(1, depth + 1):
        start = off[d] + i * WIDTH
        for w in range(WIDTH):
            if v[start + w] == best:
                if rank < c[start + w]:
                    i = i * WIDTH + w
                    break
                rank -= c[start + w]
    return i


@numba.njit(cache=True)
def _choose(v, c, off, depth, n_actions, eps, u1, u2, random_ties):  # type: ignore[no-untyped-def]  # pragma: no cover
    # Same decision as twinrl.agents.selection.epsilon_greedy with every action valid.
    if u1 < eps:
        return int(u2 * n_actions)
    rank = int(u2 * c[0]) if random_ties else 0
    return _tied(v, c, off, depth, rank)


# --- twin agents ----------------------------------------------------------------------------------


@numba.njit(cache=True)
def _twin_epoch(  # type: ignore[no-untyped-def]  # pragma: no cover
    i0, n_iter, costs, lr, eps_min, eps0, beta, offset, random_ties, off, depth,
    base_v, base_c, ws_v, ws_c, u_twins, acc, changed, log, seen, token,
):  # fmt: skip
    """DTAQL, Algorithm 1 lines 7-10: iterations i0 .. i0 + n_iter - 1 of a block of twin agents.

    Between two sharing steps a twin agent depends only on the shared base, its own table and its
    own stream, so the agents run one after the other in the workspace tree ``ws``, which equals the
    base on entry and on exit: each agent's changed leaves (and their ancestors) are logged, their
    deltas added to ``acc`` (so per leaf in ascending agent order), ``changed`` counts the agents
    whose leaf moved, and the leaves are then restored from the base. Returns the next unused
    ``token`` of the ``seen`` scratch.
    """
    n_actions = costs.shape[0]
    leaf0 = off[depth]
    for j in range(u_twins.shape[0]):
        for t in range(n_iter):
            eps = epsilon_at(i0 + t, eps_min, eps0, beta)
            u1, u2 = u_twins[j, 2 * t], u_twins[j, 2 * t + 1]
            b = _choose(ws_v, ws_c, off, depth, n_actions, eps, u1, u2, random_ties)
            qb = ws_v[leaf0 + b]
            _update(ws_v, ws_c, off, depth, b, q_update(qb, lr, -costs[b] + offset))
            log[t] = b
        for t in range(n_iter):
            b = log[t]
            if seen[b] != token:
                seen[b] = token
                delta = ws_v[leaf0 + b] - base_v[leaf0 + b]
                acc[b] += delta
                changed[b] += delta != 0
        for t in range(n_iter):
            i = log[t]
            for d in range(depth, -1, -1):
                x = off[d] + i
                ws_v[x], ws_c[x] = base_v[x], base_c[x]
                i //= WIDTH
        token += 1
    return token


# --- the fused loop -------------------------------------------------------------------------------


@numba.njit(cache=True)
def _physical(  # type: ignore[no-untyped-def]  # pragma: no cover
    i0, n_iter, costs, lr, eps_min, eps0, beta, offset, random_ties,
    v, c, off, depth, u_phys, n_trials, u_trials, marks,
    greedy_out, reward_out, eps_out,
):  # fmt: skip
    """Iterations i0 .. i0 + n_iter - 1 of the physical agent, with DTEQL's trials if n_trials."""
    n_actions = costs.shape[0]
    leaf0 = off[depth]
    for t in range(n_iter):
        i = i0 + t  # 1-based physical iteration
        eps = epsilon_at(i, eps_min, eps0, beta)  # Algorithm 1-2, line 3
        eps_out[t] = eps
        a = _choose(v, c, off, depth, n_actions, eps, u_phys[2 * t], u_phys[2 * t + 1], random_ties)
        r = -costs[a]
        q = v[leaf0 + a]
        _update(v, c, off, depth, a, q_update(q, lr, r + offset))  # Eq. (5), terminal target
        reward_out[t] = r
        if n_trials > 0:  # DTEQL, Algorithm 2 lines 7-14
            m = min(n_trials, n_actions)
            picks = sample_distinct(n_actions, u_trials[t * m : (t + 1) * m], marks, i)
            for p in range(m):
                b = picks[p]
                qb = v[leaf0 + b]
                _update(v, c, off, depth, b, q_update(qb, lr, -costs[b] + offset))
        greedy_out[t] = -costs[_tied(v, c, off, depth, 0)]


def run_fused(
    algorithm: str,
    params: EdgeParams,
    tasks: NDArray[np.float64],
    *,
    budget: int,
    seed: int,
    agent_config: QLearningConfig | None = None,
    n_trials: int = 500,
    n_agents: int = 500,
    sync_every: int = 512,
) -> FusedResult:
    """Run a named algorithm (``ql``, ``dteql``, ``dtaql``, ``dtaql-visit``) on one task set,
    exactly as ``train`` + ``build_algorithm`` would.

    Only the ``order`` formulation (one state, one decision per episode) is supported.
    """
    if algorithm not in FUSED:
        raise ValueError(
            f"algorithm {algorithm!r} has no fused backend; choose one of {', '.join(FUSED)} "
            "(or run it with twinrl.train)"
        )
    if params.formulation != "order":
        raise ValueError("the fused backend runs the 'order' formulation only; use twinrl.train")
    cfg = agent_config or QLearningConfig()
    n = tasks.shape[0]
    check_memory(
        fused_bytes(n, with_twin_agents=algorithm in TWIN_AGENT_AVERAGES),
        f"the fused backend's arrays for N={n} tasks ({math.factorial(n):,} orders)",
        "the number of tasks (env_kwargs.n_tasks)",
    )
    orders = k.unrank_permutations(np.arange(math.factorial(n)), n)
    tx, ex = k.task_times(tasks, params.rate, params.f_ser)
    costs = k.order_costs(tx, ex, tasks[:, k.EPS], orders, params.zeta)
    n_actions = orders.shape[0]
    depth, off = _layout(n_actions)
    n_nodes = int(off[depth + 1])
    v, c = np.empty(n_nodes), np.empty(n_nodes, dtype=np.int32)
    _build(np.full(n_actions, cfg.q_init), v, c, off, depth)

    streams = Streams.from_seed(seed)
    agent_rng = np.random.Generator(np.random.PCG64(streams.agent))
    phi = n_trials if algorithm == "dteql" else 0
    per_iter = min(phi, n_actions)
    trial_rng = np.random.Generator(np.random.PCG64(streams.assists))
    average = TWIN_AGENT_AVERAGES.get(algorithm)
    n_tw = n_agents if average else 0
    twin_rngs = [np.random.Generator(np.random.PCG64(s)) for s in streams.assists.spawn(n_tw)]
    base_v, base_c = v.copy(), c.copy()
    if n_tw:  # workspace tree, leaf log and scratch of the twin agents
        ws_v, ws_c = v.copy(), c.copy()
        log = np.empty(min(sync_every, budget), dtype=np.int64)
        seen, token = np.zeros(n_actions, dtype=np.int64), 1
    marks = np.zeros(n_actions, dtype=np.int64)
    hyper = (cfg.lr, cfg.eps_min, cfg.eps0, cfg.beta, cfg.reward_offset, cfg.tie_break == "random")

    greedy, reward, epsilon = np.empty(budget), np.empty(budget), np.empty(budget)
    epoch = sync_every if n_tw else budget
    for e0 in range(0, budget, epoch):  # between knowledge-sharing steps
        e1 = min(e0 + epoch, budget)
        for start in range(e0, e1, CHUNK):
            m = min(CHUNK, e1 - start)
            u_phys = agent_rng.random(2 * m)
            u_trials = trial_rng.random(per_iter * m) if phi else np.empty(0)
            _physical(
                start + 1, m, costs, *hyper, v, c, off, depth, u_phys, phi, u_trials, marks,
                greedy[start : start + m], reward[start : start + m], epsilon[start : start + m],
            )  # fmt: skip
        if n_tw and e1 % sync_every == 0:
            # Twin work after the last sharing step never reaches the physical agent: not run.
            leaf0 = int(off[depth])
            acc = v[leaf0 : leaf0 + n_actions] - base_v[leaf0 : leaf0 + n_actions]
            changed = (acc != 0).astype(np.int64)  # the physical agent's changed leaves
            block = max(1, (1 << 22) // (2 * (e1 - e0)))  # agents per call: <= 32 MB of uniforms
            for j0 in range(0, n_tw, block):
                u_twins = np.stack([r.random(2 * (e1 - e0)) for r in twin_rngs[j0 : j0 + block]])
                token = _twin_epoch(
                    e0 + 1, e1 - e0, costs, *hyper, off, depth,
                    base_v, base_c, ws_v, ws_c, u_twins, acc, changed, log, seen, token,
                )  # fmt: skip
            # Lines 11-17, as TwinAgents.share: base + (physical + twin deltas) / (1 + phi), or
            # / (agents that changed the leaf) in the visit reading.
            base = base_v[leaf0 : leaf0 + n_actions]
            if average == "mean":
                total = shared_average(base, acc, n_tw)
            else:
                total = visit_average(base, acc, changed)
            _build(total, v, c, off, depth)
            base_v[:], base_c[:], ws_v[:], ws_c[:] = v, c, v, c
            greedy[e1 - 1] = -costs[_tied(v, c, off, depth, 0)]
    evaluations = budget * (per_iter + n_tw)
    leaf0 = int(off[depth])
    q = v[leaf0 : leaf0 + n_actions].copy()[None, :]
    return FusedResult(greedy, reward, q, evaluations, epsilon)
