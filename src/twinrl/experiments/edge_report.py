"""Table I, Table II, the twin cost and the Fig. 2 curves from a grid summary
(:func:`edge_tables.run_grid`)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from twinrl.experiments import metrics, stats
from twinrl.experiments.edge_tables import (
    METHODS,
    PAPER_COLUMNS,
    PAPER_TABLE1,
    PAPER_TABLE2,
    STARTS,
)
from twinrl.experiments.plotting import band, pyplot, save

HEURISTIC_LABELS = {
    "optimum": "exact optimum",
    "spt_tx": "SPT (transmission)",
    "spt": "SPT (tx + exec)",
    "edf": "EDF",
    "johnson": "Johnson's rule",
    "local_search": "local search",
}

DEFINITIONS = """\
Definitions (twinrl `experiments/metrics.py`): *normalized reward* = (C_worst - C) / (C_worst - C*)
of the final greedy order, with C* the exact optimum and C_worst the worst order of each instance
(1 = optimal); the paper's normalized reward exceeds 1 and is affine in delay, so its reference was
not the optimum and the two columns are not on one scale. *Convergence time* = first physical
iteration after which the greedy order stays exactly optimal to the end of the run (median over
instances; `> budget` when most runs never get there; the share of runs that converged in brackets).
*Average delay* = mean completion time per task (s); *miss ratio* = share of tasks past their
deadline. Means ± 95% CI (Student t) over instances, one seed each.
*Optimistic start*: Q0 = 0 and every reward is a negative cost, so untried orders look best and
greedy steps sweep them. *Pessimistic start*: every reward shifted by the instance's worst cost, so
all rewards are >= Q0 = 0 and greedy steps repeat the best order tried so far. Both starts of a task
set run from the same seed. *DTAQL mean*: Algorithm 1, line 12 as written (plain mean of the 501
tables); *DTAQL visit*: each entry averaged over the agents that updated it since the last sharing
step."""

TWIN_COST = """\
*Twin evaluations to converge* = twin evaluations issued up to the convergence iteration (DTEQL:
φ per iteration; DTAQL: one per twin agent per iteration; QL: none), median over instances, `>`
the whole run's count when most runs never converge. *Every order once (N!)*: what evaluating each
order once in a perfect twin costs, after which the optimum is known; the ratio to it in brackets."""


def _group(
    runs: list[dict[str, Any]], setting: str
) -> dict[tuple[int, str, str], list[dict[str, Any]]]:
    out: dict[tuple[int, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r["setting"] == setting:
            out[(r["n"], r["label"], r["start"])].append(r)
    return out


def _twin_cost(runs: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    """Median twin evaluations to converge (None: most runs never converged) and the run's total."""
    values = [r["twin_evaluations_to_converge"] for r in runs]
    median = metrics.median_time(values)
    return {
        "median": None if math.isinf(median) else median,
        "runs": values,
        "per_run": int(np.median([r["twin_evaluations"] for r in runs])),
        "budget": budget,
    }


def aggregate(summary: dict[str, Any], setting: str) -> list[dict[str, Any]]:
    """One row per (N, method, start) and per (N, heuristic), with mean ± CI of every metric."""
    budget = summary["preset"]["budget"]
    rows = []
    rank = {m.label: i for i, m in enumerate(METHODS)}
    groups = _group(summary["runs"], setting)
    for (n, label, start), runs in sorted(
        groups.items(), key=lambda kv: (kv[0][0], rank[kv[0][1]], STARTS.index(kv[0][2]))
    ):
        conv = [r["convergence"] for r in runs]
        rows.append({
            "setting": setting, "n": n, "method": label, "start": start, "runs": len(runs),
            "normalized_reward": metrics.mean_ci([r["normalized_reward"] for r in runs]),
            "miss_ratio": metrics.mean_ci([r["miss_ratio"] for r in runs]),
            "mean_delay": metrics.mean_ci([r["mean_delay"] for r in runs]),
            "convergence": metrics.format_convergence(conv, budget),
            "convergence_1pct": metrics.format_convergence(
                [r["convergence_1pct"] for r in runs], budget),
            "convergence_times": conv,
            "twin_evaluations_per_run": float(np.mean([r["twin_evaluations"] for r in runs])),
            "twin_evaluations_to_converge": _twin_cost(runs, budget),
            "enumeration_cost": math.factorial(n),
        })  # fmt: skip
    _add_aggregates(rows, groups, budget)
    for key, insts in summary["instances"].items():
        s, n_label = key.split("/")
        if s != setting:
            continue
        n = int(n_label.split("=")[1])
        for name, label in HEURISTIC_LABELS.items():
            vals = [inst["heuristics"][name] for inst in insts]
            optimal = sum(abs(v["cost"] - inst["optimum"]) <= 1e-9 * inst["optimum"]
                          for v, inst in zip(vals, insts, strict=True))  # fmt: skip
            rows.append({
                "setting": setting, "n": n, "method": label, "start": None, "runs": len(vals),
                "normalized_reward": metrics.mean_ci([v["normalized_reward"] for v in vals]),
                "miss_ratio": metrics.mean_ci([v["miss_ratio"] for v in vals]),
                "mean_delay": metrics.mean_ci([v["mean_delay"] for v in vals]),
                "convergence": f"optimal on {optimal}/{len(vals)}",
                "convergence_1pct": "",
            })  # fmt: skip
    return rows


REFERENCE = "QL"
"""The method every learner's probability of improvement is taken against (same N and start)."""


def _add_aggregates(
    rows: list[dict[str, Any]],
    groups: dict[tuple[int, str, str], list[dict[str, Any]]],
    budget: int,
) -> None:
    """Each learner row gains the IQM and P(better than QL of the same N and start) of its
    normalized reward and convergence time (never converged = budget + 1)."""
    for row in rows:
        runs = groups[(row["n"], row["method"], row["start"])]
        ref = groups.get((row["n"], REFERENCE, row["start"]))
        own = row["method"] == REFERENCE or ref is None
        row["normalized_reward_vs_ql"] = stats.aggregate(
            [r["normalized_reward"] for r in runs],
            None if own else [r["normalized_reward"] for r in ref or ()],
        )
        row["convergence_vs_ql"] = stats.aggregate(
            metrics.censored([r["convergence"] for r in runs], budget),
            None if own else metrics.censored([r["convergence"] for r in ref or ()], budget),
            higher_is_better=False,
        )  # fmt: skip


def _aggregate_table(rows: list[dict[str, Any]], key: str, what: str) -> list[str]:
    """IQM and P(better than QL) of ``key`` per N, method and start."""
    lines = [f"| N | method | start | {what} IQM | P(better than QL) |", "|---|---|---|---|---|"]
    for row in rows:
        if row["start"]:
            iqm, better = row[key].cells()
            if row["method"] != REFERENCE and row[key].improvement is None:
                better = "no QL run to compare"
            lines.append(f"| {row['n']} | {row['method']} | {row['start']} | {iqm} | {better} |")
    return [*lines, "", stats.AGGREGATE_NOTE]


METRICS = (
    ("normalized reward", "normalized_reward", "Normalized Reward"),
    ("miss ratio", "miss_ratio", "Deadline Miss Ratio"),
    ("avg delay (s)", "mean_delay", "Average Delay"),
    ("convergence time", "convergence", "Convergence Time"),
)
"""(column title, row key, key of :data:`PAPER_TABLE1`) of Table I."""


def _paper1(label: str, key: str) -> str:
    paper = next(m.paper for m in METHODS if m.label == label)
    return str(PAPER_TABLE1[key][PAPER_COLUMNS.index(paper)])


def _learner_table(rows: list[dict[str, Any]], n: int, starts: list[str], paper: bool) -> list[str]:
    """Table I's learners: per metric a column per start (and the paper's value)."""
    by = {(r["method"], r["start"]): r for r in rows if r["n"] == n and r["start"]}
    per = [*starts, "paper"] if paper else starts
    if len(per) == 1:  # one start, no paper column: the metric's title alone
        head = [title for title, _, _ in METRICS]
    else:
        head = [
            f"{title}: {s}" if i == 0 else s for title, _, _ in METRICS for i, s in enumerate(per)
        ]
    lines = ["| method | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    for label in dict.fromkeys(r["method"] for r in rows if r["n"] == n and r["start"]):
        cells = []
        for _, key, paper_key in METRICS:
            cells += [str(by[(label, s)][key]) if (label, s) in by else "not run" for s in starts]
            cells += [f"paper {_paper1(label, paper_key)}"] if paper else []
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _baseline_table(rows: list[dict[str, Any]], n: int) -> list[str]:
    lines = ["| method | normalized reward | miss ratio | avg delay (s) | optimal |",
             "|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        if row["n"] == n and row["start"] is None:
            cells = [row["normalized_reward"], row["miss_ratio"], row["mean_delay"]]
            lines.append(f"| {row['method']} | " + " | ".join(map(str, cells))
                         + f" | {row['convergence']} |")  # fmt: skip
    return lines


def _starts(summary: dict[str, Any]) -> list[str]:
    """The starts any run of the default setting used, in :data:`STARTS` order."""
    used = {r["start"] for r in summary["runs"] if r["setting"] == "default"}
    return [s for s in STARTS if s in used]


def _not_run(summary: dict[str, Any]) -> list[str]:
    """A note naming the methods the preset did not run from some start (the paper preset runs
    them)."""
    preset = summary["preset"]
    if preset["pessimistic"] is None:
        return []
    skipped = [label for label in preset["methods"] if label not in preset["pessimistic"]]
    if not skipped:
        return []
    return ["", f"Not run from the pessimistic start in this preset (to keep it short): "
            f"{', '.join(skipped)}; `--preset paper` runs them."]  # fmt: skip


def write_table1(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    """Table I (largest N, default setting) and the deadline-binding setting, with Fig. 2."""
    n = max(summary["preset"]["ns"])
    rows = aggregate(summary, "default")
    starts = _starts(summary)
    lines = [f"# Table I: performance at N = {n} (paper 002)", "",
             f"{summary['preset']['instances']} instances, {summary['preset']['budget']} physical "
             f"iterations per run, from the {' and the '.join(starts)} start; the paper's value "
             "after each pair.", ""]  # fmt: skip
    lines += _learner_table(rows, n, starts, paper=True) + _not_run(summary)
    lines += ["", "Baselines on the same task sets:", "", *_baseline_table(rows, n)]
    lines += ["", "Aggregate statistics of the normalized reward over instances:", "",
              *_aggregate_table([r for r in rows if r["n"] == n], "normalized_reward_vs_ql",
                                "normalized reward")]  # fmt: skip
    deadline_rows = aggregate(summary, "deadlines")
    if deadline_rows:
        lines += ["", f"## Where deadlines bind (N = {n}, R = 2 Mbit/s, ζ = 2 s per miss)", "",
                  "At the default setting shortest-transmission-first is optimal on every instance "
                  "(R c_max < f_ser keeps the server idle, so the order that minimises the sum of "
                  "transmission times is optimal); here no priority rule is. The paper has no such "
                  "table. Optimistic start only.", ""]  # fmt: skip
        lines += _learner_table(deadline_rows, n, [STARTS[0]], paper=False)
        lines += ["", *_baseline_table(deadline_rows, n)]
    lines += ["", DEFINITIONS, "", "![convergence curves](fig2_convergence.png)", ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text("\n".join(lines))
    plot_curves(summary, out / "fig2_convergence.png")
    return {"rows": _jsonable(rows + deadline_rows)}


def _count(value: float) -> str:
    """A count of evaluations, short: 1,234 or 1.87 M."""
    return f"{value / 1e6:.3g} M" if value >= 1e6 else f"{value:,.0f}"


def format_twin_cost(cost: dict[str, Any], n: int) -> str:
    """Median twin evaluations to converge, with its ratio to N!; ``> total`` if most never did."""
    if cost["per_run"] == 0:
        return "0 (no twin)"
    if cost["median"] is None:
        return f"> {_count(cost['per_run'])}"
    ratio = cost["median"] / math.factorial(n)
    shown = f"{ratio:.2g}" if ratio < 100 else f"{ratio:,.0f}"
    return f"{_count(cost['median'])} ({shown}× N!)"


def write_table2(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    """Table II (convergence time per N, method and start, ours beside the paper's) and the twin
    evaluations each method spends to converge, beside the N! cost of enumerating every order."""
    rows = aggregate(summary, "default")
    learners = [r for r in rows if r["start"]]
    by = {(r["n"], r["method"], r["start"]): r for r in learners}
    ns, starts = summary["preset"]["ns"], _starts(summary)
    labels = list(dict.fromkeys(r["method"] for r in learners))
    head = [f"N = {n}: {s}" if i == 0 else s for n in ns for i, s in enumerate([*starts, "paper"])]
    lines = ["# Table II: time to converge (paper 002)", "",
             "Median first physical iteration after which the greedy order stays exactly optimal "
             "(share of runs converged), from each start; the paper's value after each pair.", "",
             "| method | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]  # fmt: skip
    for label in labels:
        paper = PAPER_COLUMNS.index(next(m.paper for m in METHODS if m.label == label))
        cells = []
        for n in ns:
            cells += [by[(n, label, s)]["convergence"] if (n, label, s) in by else "not run"
                      for s in starts]  # fmt: skip
            cells.append(PAPER_TABLE2.get(n, ("n/a",) * len(PAPER_COLUMNS))[paper])
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += _not_run(summary)
    head = [f"N = {n}: {s}" if i == 0 else s for n in ns for i, s in enumerate(starts)]
    lines += ["", "## Twin cost: twin evaluations to converge", "",
              "| method | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]  # fmt: skip
    for label in labels:
        cells = [format_twin_cost(by[(n, label, s)]["twin_evaluations_to_converge"], n)
                 if (n, label, s) in by else "not run" for n in ns for s in starts]  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    enum = [_count(math.factorial(n)) for n in ns for _ in starts]
    lines += ["| every order once (N!) | " + " | ".join(enum) + " |"]
    lines += ["", "## Aggregate statistics of the convergence time", "",
              "Lower is better; a run that never converged counts as budget + 1.", "",
              *_aggregate_table(learners, "convergence_vs_ql", "convergence time")]  # fmt: skip
    lines += ["", TWIN_COST, "", DEFINITIONS, ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text("\n".join(lines))
    return {
        "rows": _jsonable(learners),
        "enumeration_cost": {str(n): math.factorial(n) for n in ns},
    }


def plot_curves(summary: dict[str, Any], path: Path) -> bool:
    """Mean normalized reward of the greedy order vs physical iteration, with 95% CI bands: a
    column per N, a row per start."""
    plt = pyplot()
    if plt is None:
        return False
    groups = _group(summary["runs"], "default")
    ns, starts = list(summary["preset"]["ns"]), _starts(summary)
    fig, axes = plt.subplots(len(starts), len(ns), figsize=(5 * len(ns), 4 * len(starts)),
                             squeeze=False)  # fmt: skip
    for row, start in zip(axes, starts, strict=True):
        for ax, n_ in zip(row, ns, strict=True):
            for method in METHODS:
                runs = groups.get((n_, method.label, start))
                if not runs:
                    continue
                x = np.asarray(runs[0]["curve_iterations"])
                y = np.asarray([r["curve_normalized_reward"] for r in runs])
                est = [metrics.mean_ci(col) for col in y.T]
                mean = np.array([e.mean for e in est])
                band(ax, x, mean, np.array([e.half_width for e in est]), method.label)
            ax.set(title=f"N = {n_}, {start} start", xlabel="physical iteration",
                   ylabel="normalized reward (greedy)")  # fmt: skip
            ax.set_ylim(-0.05, 1.05)
            ax.grid(alpha=0.3)
    axes[0][0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Convergence of the greedy order (paper 002, Fig. 2)")
    save(plt, fig, path)
    return True


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        clean = {}
        for key, value in row.items():
            if isinstance(value, stats.Aggregate):
                clean[key] = value.to_dict()
            elif isinstance(value, metrics.Estimate):
                clean[key] = {"mean": value.mean, "ci95": value.half_width, "n": value.n}
            else:
                clean[key] = value
        out.append(clean)
    return out
