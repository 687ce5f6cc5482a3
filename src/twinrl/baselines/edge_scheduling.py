"""Reference schedules for edge task scheduling (paper 002, Eq. 1-3): exact solvers and heuristics.

The problem: N tasks with columns ``(d, c, eps)`` are transmitted one at a time over an uplink of
rate R (transmission time ``tx = d / R``) and executed in arrival order by a single-core server
(execution time ``ex = d c / f_ser``). For an order sigma the j-th task's data is ready at
``T_ready_j = sum_{i <= j} tx[sigma_i]`` and completes at
``T_comp_j = max(T_ready_j, T_comp_{j-1}) + ex[sigma_j]``; the cost is
``sum_j T_comp_j + zeta * #(T_comp_j > eps[sigma_j])``. This is a two-machine flow shop
``F2 || sum C_j`` with a deadline penalty, which is NP-hard.

Every cost reported here is computed by :func:`twinrl.envs.edge_kernels.order_costs` on the
returned order, so baselines and environments agree bit for bit.

* :func:`brute_force` / :func:`worst_order`: exact by enumerating all N! orders (N <= 10).
* :func:`exact_optimum`: exact dynamic programming over subsets with Pareto labels, bounded by a
  local-search upper bound and a two-relaxation lower bound (N = 14 in well under a second).
* :func:`edf`, :func:`spt`, :func:`spt_transmission`, :func:`johnson`, :func:`local_search`:
  deterministic heuristics.

The baselines live in :mod:`~twinrl.baselines.edge_schedule` (the :class:`Schedule` type),
:mod:`~twinrl.baselines.edge_exact` and :mod:`~twinrl.baselines.edge_heuristics`; this module
re-exports them and names them for :func:`solve`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twinrl.baselines.edge_exact import (
    BRUTE_FORCE_CHUNK,
    ENUMERATE_UP_TO,
    MAX_BRUTE_FORCE_TASKS,
    MAX_EXACT_TASKS,
    brute_force,
    exact_optimum,
    worst_order,
)
from twinrl.baselines.edge_heuristics import (
    edf,
    johnson,
    local_search,
    spt,
    spt_transmission,
)
from twinrl.baselines.edge_schedule import Schedule
from twinrl.envs.edge_scheduling import EdgeParams

# --- registry ------------------------------------------------------------------------------------

HEURISTICS: dict[str, Callable[[EdgeParams, Any], Schedule]] = {
    "edf": edf,
    "spt": spt,
    "spt_tx": spt_transmission,
    "johnson": johnson,
    "local_search": local_search,
}
"""Heuristic baselines by name; all take ``(params, tasks)``."""

SOLVERS: dict[str, Callable[[EdgeParams, Any], Schedule]] = {
    **HEURISTICS,
    "optimum": exact_optimum,
}
"""Every name accepted by :func:`solve`: the heuristics and ``"optimum"``."""


def solve(name: str, params: EdgeParams, tasks: Any) -> Schedule:
    """Run the baseline called ``name`` (a key of :data:`HEURISTICS`, or ``"optimum"``).

    Args:
        name: ``"edf"``, ``"spt"``, ``"spt_tx"``, ``"johnson"``, ``"local_search"`` or
            ``"optimum"``.
        params: system parameters.
        tasks: task set of shape ``(N, 3)``, columns ``(d, c, eps)``.

    Returns:
        The schedule chosen by that baseline.

    Raises:
        ValueError: if ``name`` is unknown (the message lists the valid names).
    """
    solver = SOLVERS.get(name) if isinstance(name, str) else None
    if solver is None:
        raise ValueError(f"unknown solver {name!r}; valid names: {', '.join(SOLVERS)}")
    return solver(params, tasks)


__all__ = [
    "BRUTE_FORCE_CHUNK",
    "ENUMERATE_UP_TO",
    "HEURISTICS",
    "MAX_BRUTE_FORCE_TASKS",
    "MAX_EXACT_TASKS",
    "SOLVERS",
    "Schedule",
    "brute_force",
    "edf",
    "exact_optimum",
    "johnson",
    "local_search",
    "solve",
    "spt",
    "spt_transmission",
    "worst_order",
]
