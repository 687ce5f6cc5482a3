"""Reference schedules and heuristics to compare learned policies against."""

from __future__ import annotations

from twinrl.baselines.edge_scheduling import (
    HEURISTICS,
    SOLVERS,
    Schedule,
    brute_force,
    edf,
    exact_optimum,
    johnson,
    local_search,
    solve,
    spt,
    spt_transmission,
    worst_order,
)

__all__ = [
    "HEURISTICS",
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
