"""Table I/II grid: both DTAQL readings, both starts, and the twin cost."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from twinrl.envs import edge_kernels as k
from twinrl.experiments import edge_report, edge_tables
from twinrl.experiments.edge_tables import Preset

TINY = Preset(ns=(4, 5), instances=2, budget=300)


@pytest.fixture(scope="module")
def tiny_grid() -> dict[str, Any]:
    return edge_tables.run_grid(TINY, seed=3, points=10)


def _all_costs(tasks: np.ndarray, n: int) -> np.ndarray:
    params = edge_tables.params_for("default", n)
    orders = k.unrank_permutations(np.arange(math.factorial(n)), n)
    tx, ex = k.task_times(tasks, params.rate, params.f_ser)
    return k.order_costs(tx, ex, tasks[:, k.EPS], orders, params.zeta)


def test_pessimistic_start_puts_every_reward_at_or_above_q0() -> None:
    for n in (4, 6):
        inst = edge_tables.make_instances("default", n, 1, seed=0)[0]
        costs = _all_costs(inst.tasks, n)  # brute force over every order
        cfg = edge_tables.start_config("pessimistic", inst.worst)
        rewards = -costs + cfg.reward_offset
        assert rewards.min() == cfg.q_init == 0.0  # the worst order exactly at Q0
        assert (rewards > 0).sum() == costs.size - 1
        optimistic = edge_tables.start_config("optimistic", inst.worst)
        assert (-costs + optimistic.reward_offset < optimistic.q_init).all()


def test_grid_runs_both_readings_from_both_starts(tiny_grid: dict[str, Any]) -> None:
    default = [r for r in tiny_grid["runs"] if r["setting"] == "default"]
    cells = {(r["n"], r["instance"], r["label"], r["start"]) for r in default}
    labels = [m.label for m in edge_tables.METHODS]
    assert "DTAQL φ=500 mean" in labels and "DTAQL φ=500 visit" in labels
    expected = {(n, i, lb, s) for n in (4, 5) for i in (0, 1) for lb in labels
                for s in edge_tables.STARTS}  # fmt: skip
    assert cells == expected and len(default) == len(expected)
    # paired runs: one seed per task set and paper column, whatever the start or the reading
    seeds: dict[tuple[int, int, str], set[int]] = {}
    for r in default:
        paper = next(m.paper for m in edge_tables.METHODS if m.label == r["label"])
        seeds.setdefault((r["n"], r["instance"], paper), set()).add(r["seed"])
    assert all(len(s) == 1 for s in seeds.values())


def test_twin_evaluations_to_converge_count_the_twin_work_up_to_convergence(
    tiny_grid: dict[str, Any],
) -> None:
    per_iteration = {"dteql": None, "dtaql": 500, "dtaql-visit": 500, "ql": 0}
    converged = 0
    for r in tiny_grid["runs"]:
        rate = per_iteration[r["algorithm"]]
        if rate is None:  # DTEQL tries min(phi, N!) distinct orders per iteration
            rate = min(r["phi"], math.factorial(r["n"]))
        assert r["twin_evaluations"] == 300 * rate
        if r["convergence"] is None:
            assert r["twin_evaluations_to_converge"] is None
        else:
            converged += 1
            assert r["twin_evaluations_to_converge"] == r["convergence"] * rate
    assert converged > 0


def test_quick_preset_runs_dtaql_from_the_optimistic_start_only() -> None:
    quick = replace(edge_tables.PRESETS["quick"], ns=(4,), instances=1, budget=50,
                    deadline_instances=0)  # fmt: skip
    runs = edge_tables.run_grid(quick, points=5)["runs"]
    starts: dict[str, set[str]] = {}
    for r in runs:
        starts.setdefault(r["label"], set()).add(r["start"])
    assert starts["DTAQL φ=500 mean"] == starts["DTAQL φ=500 visit"] == {"optimistic"}
    assert starts["QL"] == starts["DTEQL φ=500"] == set(edge_tables.STARTS)


def test_grid_is_deterministic(tiny_grid: dict[str, Any]) -> None:
    again = edge_tables.run_grid(TINY, seed=3, points=10)
    assert json.dumps(again, sort_keys=True) == json.dumps(tiny_grid, sort_keys=True)


def test_unknown_method_in_a_preset_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        edge_tables.run_grid(replace(TINY, methods=("DTAQL φ=500",)))
    with pytest.raises(ValueError, match="unknown method"):
        edge_tables.run_grid(replace(TINY, pessimistic=("SARSA",)))


def test_table2_reports_twin_cost_and_enumeration(
    tiny_grid: dict[str, Any], tmp_path: Path
) -> None:
    result = edge_report.write_table2(tiny_grid, tmp_path)
    assert result["enumeration_cost"] == {"4": 24, "5": 120}
    rows = result["rows"]
    assert {(r["method"], r["start"]) for r in rows if r["n"] == 5} == {
        (m.label, s) for m in edge_tables.METHODS for s in edge_tables.STARTS
    }
    for row in rows:
        cost = row["twin_evaluations_to_converge"]
        runs = [r for r in tiny_grid["runs"] if r["setting"] == "default" and r["n"] == row["n"]
                and r["label"] == row["method"] and r["start"] == row["start"]]  # fmt: skip
        assert cost["runs"] == [r["twin_evaluations_to_converge"] for r in runs]
        assert row["enumeration_cost"] == math.factorial(row["n"])
    text = (tmp_path / "table.md").read_text()
    assert "| every order once (N!) | 24 | 24 | 120 | 120 |" in text
    assert "| DTAQL φ=500 visit |" in text and "N = 5: optimistic | pessimistic | paper" in text
    json.dumps(result)  # summary.json must be plain JSON
    # the aggregate statistics: IQM of the censored convergence times, P(faster than QL), by hand
    assert "## Aggregate statistics of the convergence time" in text
    for row in rows:
        runs, ql = (
            [r for r in tiny_grid["runs"] if r["setting"] == "default" and r["n"] == row["n"]
             and r["label"] == label and r["start"] == row["start"]]
            for label in (row["method"], "QL")
        )  # fmt: skip
        times = [TINY.budget + 1 if r["convergence"] is None else r["convergence"] for r in runs]
        ql_times = [TINY.budget + 1 if r["convergence"] is None else r["convergence"] for r in ql]
        agg = row["convergence_vs_ql"]
        assert agg["iqm"]["point"] == pytest.approx(np.mean(times))  # 2 instances: IQM = mean
        if row["method"] == "QL":
            assert agg["p_improvement"] is None
        else:
            faster = [(a < b) + 0.5 * (a == b) for a in times for b in ql_times]
            assert agg["p_improvement"]["point"] == pytest.approx(np.mean(faster))


def test_twin_cost_cells() -> None:
    def cost(median: float | None, per_run: int) -> dict[str, Any]:
        return {"median": median, "per_run": per_run}

    assert edge_report.format_twin_cost(cost(1_872_000, 12_800_000), 8) == "1.87 M (46× N!)"
    assert edge_report.format_twin_cost(cost(5_440_000, 12_800_000), 6) == "5.44 M (7,556× N!)"
    assert edge_report.format_twin_cost(cost(None, 1_280_000), 8) == "> 1.28 M"
    assert edge_report.format_twin_cost(cost(None, 0), 6) == "0 (no twin)"
    assert edge_report.format_twin_cost(cost(32_000, 12_800_000), 6) == "32,000 (44× N!)"


def test_table1_shows_both_starts_beside_the_paper(
    tiny_grid: dict[str, Any], tmp_path: Path
) -> None:
    edge_report.write_table1(tiny_grid, tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "normalized reward: optimistic | pessimistic | paper" in text
    visit = next(line for line in text.splitlines() if line.startswith("| DTAQL φ=500 visit |"))
    assert visit.count("|") == 14 and "| paper 0.7758 |" in visit  # 4 metrics x (2 starts + paper)
    assert "not run" not in text
