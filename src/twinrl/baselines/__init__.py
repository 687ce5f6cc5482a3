"""Reference schedules and heuristics to compare learned policies against."""

from __future__ import annotations

from twinrl.baselines.ap_selection import (
    AP_POLICIES,
    APPolicy,
    cheapest_feasible_ap,
    evaluate_policy,
    fastest_ap,
    nearest_ap,
    twin_oracle_ap,
)
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
    "AP_POLICIES",
    "HEURISTICS",
    "SOLVERS",
    "APPolicy",
    "Schedule",
    "brute_force",
    "cheapest_feasible_ap",
    "edf",
    "evaluate_policy",
    "exact_optimum",
    "fastest_ap",
    "johnson",
    "local_search",
    "nearest_ap",
    "solve",
    "spt",
    "spt_transmission",
    "twin_oracle_ap",
    "worst_order",
]
