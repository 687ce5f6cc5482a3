"""Access-point selection for vehicles (paper 000, Section IV-A): ``fig4`` and ``safety``.

``fig4``: physical episode reward vs episodes for Q-learning and DT-enhanced Q-learning with n
actions tried in the twin per physical state, n = 2..M (the paper's Fig. 4), with the paper-style
moving average and a 95% CI band over seeds, on the default road and on a harder one
(:data:`HARD_ROAD`: more access points than trials). The headline speed is the number of physical
episodes each method needs to reach the same seed's QL final level (:func:`paired_outcomes`).
``safety``: cumulative physical URLLC failures during training for QL, DT-QL (n = M) and DT-QL
with :class:`~twinrl.assists.SafeExploration`. Both share one set of runs (of the default road).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from twinrl.experiments import ap_metrics, episodic, metrics, stats
from twinrl.experiments.episodic import Variant
from twinrl.experiments.plotting import band, finish, pyplot

ENV_ID = "twinrl/APSelection-v0"
PAPER = {
    "text": "with n = 5 the agent converges at about 6,000 episodes to reward 85; physical QL "
    "needs over 20,000 episodes to reach 65 (paper 000, Fig. 4)",
    "n5_episodes": 6000,
    "n5_reward": 85.0,
    "ql_episodes": "> 20000",
    "ql_reward": 65.0,
}


@dataclass(frozen=True)
class Preset:
    episodes: int
    seeds: int
    window: int
    """Moving-average window of the curves (episodes)."""


AGENT = {"eps0": 0.0, "eps_min": 0.1}
"""Q-learning with a constant exploration rate of 0.1 for every method. With a decaying schedule
(beta = 2,000 steps) every method's training reward tracked the exploration rate and QL and DT-QL
settled at the same episode, which hides what the twin changes: how fast the greedy part improves."""

PRESETS = {
    "quick": Preset(episodes=600, seeds=2, window=50),
    "paper": Preset(episodes=2500, seeds=5, window=100),
}

HARD_ROAD: dict[str, Any] = {
    "road_length": 2500.0,
    "n_steps": 50,
    "ap_positions": (1250.0, 150.0, 480.0, 800.0, 1130.0, 1450.0, 1800.0, 2150.0),
    "ap_radii": (1270.0, 100.0, 80.0, 100.0, 90.0, 100.0, 80.0, 100.0),
    "ap_rates": (1.5e6, 4e6, 3e6, 5e6, 4e6, 4e6, 3e6, 5e6),
    "ap_prices": (2.0, 0.5, 0.5, 1.0, 0.5, 0.5, 0.5, 1.0),
}
"""The hard road (issue 12, point 4 of "Found"): M = 8 access points (a macro cell over the whole
2,500 m road and seven small cells with gaps between them, the default's pattern repeated) and 50
road cells, tried with n = 2 and 5 < M actions per state, so the twin never tries every AP
(on the default road n = M = 5 does, and a greedy one-step twin oracle already matches the best
learner). Its ``index`` observation has 51 x 3 x 2^8 = 39,168 states."""
HARD_TRIALS = (2, 5)
HARD_PRESETS = {
    "quick": Preset(episodes=100, seeds=2, window=20),
    "paper": Preset(episodes=2500, seeds=5, window=100),
}
"""Sizes of the hard road. The quick one costs about 10 CPU-seconds: a preview of the direction,
with too few seeds and episodes to decide."""


def variants(n_aps: int) -> list[Variant]:
    # QL and DT-QL n=M are audited: the twin counts which of their failures were avoidable, without
    # changing their runs (tested).
    out = [Variant("QL", "ql", safe_exploration="audit")]
    out += [
        Variant(
            f"DT-QL n={n}", "dteql", n_trials=n, safe_exploration="audit" if n == n_aps else False
        )
        for n in range(2, n_aps + 1)
    ]
    out.append(Variant(f"DT-QL n={n_aps} + safe", "dteql", n_trials=n_aps, safe_exploration=True))
    return out


def hard_variants() -> list[Variant]:
    """QL and DT-QL with n < M trials on the hard road (no safety audit: only fig4 reads them)."""
    return [Variant("QL", "ql")] + [
        Variant(f"DT-QL n={n}", "dteql", n_trials=n) for n in HARD_TRIALS
    ]


def run_preset(
    preset: str,
    *,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    seeds: int | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Every variant over the preset's seeds on the default road, the same for the hard road
    (``"hard"``), the baselines' rows, and the settings used. ``seeds`` overrides both roads'."""
    n_aps = int(gym.make(ENV_ID).action_space.n)  # type: ignore[attr-defined]
    common: dict[str, Any] = {
        "preset": preset,
        "seed": seed,
        "workers": workers,
        "progress": progress,
    }
    default = _run_road({}, variants(n_aps), PRESETS[preset], n_seeds=seeds, **common)
    hard = _run_road(HARD_ROAD, hard_variants(), HARD_PRESETS[preset], n_seeds=seeds, **common)
    return {**default, "seed": seed, "agent_config": AGENT, "hard": hard}


def _run_road(
    env_kwargs: dict[str, Any],
    road_variants: list[Variant],
    p: Preset,
    *,
    preset: str,
    n_seeds: int | None,
    seed: int,
    workers: int,
    progress: bool,
) -> dict[str, Any]:
    env = gym.make(ENV_ID, **env_kwargs)
    params = env.unwrapped.params  # type: ignore[attr-defined]
    n_seeds = n_seeds or p.seeds
    runs = episodic.run_variants(
        ENV_ID, env_kwargs, road_variants, seeds=n_seeds, episodes=p.episodes, seed=seed,
        workers=workers, progress=progress, agent_config=AGENT,
    )  # fmt: skip
    return {
        "preset": {**asdict(p), "seeds": n_seeds, "name": preset},
        "env_kwargs": _params(env_kwargs),
        "params": _params(params),
        "n_aps": int(params.n_aps),
        "runs": runs,
        "baselines": _baselines(params, episodes=max(20, p.episodes // 20), seed=seed),
    }


def _params(params: Any) -> dict[str, Any]:
    items = params.items() if isinstance(params, dict) else asdict(params).items()
    return {k: (np.asarray(v).tolist() if isinstance(v, (tuple, np.ndarray)) else v)
            for k, v in items}  # fmt: skip


def _baselines(params: Any, *, episodes: int, seed: int) -> dict[str, dict[str, float]]:
    from twinrl.baselines import ap_selection as ap

    return {
        name: ap.evaluate_policy(params, policy, episodes=episodes, seed=seed)
        for name, policy in ap.AP_POLICIES.items()
    }


# --- report ----------------------------------------------------------------------------------


def _stats(summary: dict[str, Any], labels: list[str] | None = None) -> dict[str, dict[str, Any]]:
    runs = [r for r in summary["runs"] if labels is None or r["label"] in labels]
    return episodic.summarise(runs, window=summary["preset"]["window"], reference="QL")


def _fig4_labels(summary: dict[str, Any]) -> list[str]:
    return [v.label for v in variants(summary["n_aps"]) if v.safe_exploration is not True]


def _audit(summary: dict[str, Any], label: str) -> tuple[float, float] | None:
    """Mean (avoidable, unavoidable) predicted failures per run, if the twin vetted this method."""
    rows = [r["assists"].get("safe_exploration") for r in summary["runs"] if r["label"] == label]
    if not rows or any(row is None for row in rows):
        return None
    return (float(np.mean([row["vetoed"] for row in rows])),
            float(np.mean([row["unavoidable"] for row in rows])))  # fmt: skip


def write_fig4(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    """``table.md``, ``fig4.png`` and ``fig4_hard.png``: both roads' tables, baselines and
    verdicts. Returns ``roads`` (per road: rows, checks, settings) and every check."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Access-point selection: DT-enhanced Q-learning with n trials per state (paper 000, Fig. 4)",
        "",
        f"Paper: {PAPER['text']}. Every method's run is paired with physical QL's run of the same "
        "seed; the headline speed is the physical episodes a method needs to reach that QL run's "
        "final level (definitions below).",
    ]
    roads: dict[str, dict[str, Any]] = {}
    for name, road, labels, title in _roads(summary):
        png = "fig4.png" if name == "default" else f"fig4_{name}.png"
        section, roads[name] = _road_section(
            road, labels, name=name, title=title, preset=summary["preset"]["name"]
        )
        lines += [*section, f"![{name} road]({png})"]
        _plot_fig4(_stats(road, labels), labels, road["preset"], out / png, title=title)
    if "hard" not in roads:
        lines += ["", "(No hard road: this summary was written before it existed.)"]
    lines += ["", "Definitions (`experiments/ap_metrics.py`, docs/ap-selection.md):", "",
              ap_metrics.definitions_text(), "",
              "Every method explores with a constant epsilon = 0.1 (`AGENT` in "
              "`experiments/ap_figures.py`). Absolute rewards depend on our env parameters "
              "(summary.json `params`): compare shapes and ratios with the paper, not values.", ""]  # fmt: skip
    (out / "table.md").write_text("\n".join(lines))
    checks = [c for road in roads.values() for c in road["checks"]]
    return {"roads": roads, "checks": checks, "definitions": ap_metrics.DEFINITIONS}


def _roads(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any], list[str], str]]:
    """(name, runs and settings, fig4 methods, heading) of each road in a summary."""
    m, cells = summary["n_aps"], summary["params"]["n_steps"]
    out = [("default", summary, _fig4_labels(summary),
            f"Default road: M = {m} access points, {cells} road cells, n = 2..{m} trials per "
            "state")]  # fmt: skip
    if "hard" in summary:  # summaries written before the hard road have none
        hard = summary["hard"]
        trials = " and ".join(map(str, HARD_TRIALS))
        out.append(("hard", hard, [v.label for v in hard_variants()],
                    f"Hard road: M = {hard['n_aps']} access points, {hard['params']['n_steps']} "
                    f"road cells ({hard['params']['road_length']:.0f} m), n = {trials} < M "
                    "trials per state"))  # fmt: skip
    return out


def _road_section(
    road: dict[str, Any], labels: list[str], *, name: str, title: str, preset: str
) -> tuple[list[str], dict[str, Any]]:
    """One road's table, baselines and verdicts, and its ``summary.json`` entry."""
    p = road["preset"]
    budget = p["episodes"]
    by_label = _stats(road, labels)
    outcomes = ap_metrics.paired_outcomes(
        [r for r in road["runs"] if r["label"] in labels], window=p["window"]
    )
    lines = [
        "", f"## {title}", "",
        f"{p['seeds']} seeds x {budget} physical episodes per method; moving average over "
        f"{p['window']} episodes.", "",
        "| method | final reward | episodes to QL's final level | (1 + n) x episodes | speed-up "
        "vs QL | episodes IQM | P(faster than QL) | AUC | AUC - QL | AUC IQM | P(AUC > QL's) | "
        "twin evaluations / run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for lb in labels:
        o, st = outcomes[lb], by_label[lb]
        sp = ap_metrics.speedup(o["log_speedup"])
        speed = ("(reference)" if lb == "QL" else
                 f"{sp['geometric_mean']:.3g}x ({sp['ci95_low']:.3g}-{sp['ci95_high']:.3g})")  # fmt: skip
        scaled = budget * (1 + o["n_trials"])
        audited = " (audit)" if _audit(road, lb) is not None else ""
        lines.append(
            f"| {lb} | {st['final_reward']} | {_episodes_cell(o['episodes_to_ql_final'], budget)} | "
            f"{_episodes_cell(o['episodes_to_ql_final_twin_normalised'], scaled)} | {speed} | "
            f"{_vs_ql(o['episodes_vs_ql'], lb)} | {o['auc']} | "
            f"{'(reference)' if lb == 'QL' else o['auc_minus_ql']} | "
            f"{_vs_ql(o['auc_vs_ql'], lb)} | {st['twin_evaluations']:.0f}{audited} |"
        )
    lines += ["", stats.AGGREGATE_NOTE]
    if any(_audit(road, lb) is not None for lb in labels):
        lines += ["", "(audit): the count includes the safety audit, which checks every physical "
                  "action in the twin without changing the run (see the safety table)."]  # fmt: skip
    lines += ["", "Baselines (same road, no learning, no exploration):", "",
              "| policy | episode reward | failures / episode |", "|---|---|---|"]  # fmt: skip
    for policy, row in road["baselines"].items():
        per_episode = row["failures"] / row["episodes"]
        lines.append(f"| {policy} | {row['mean_reward']:.4g} | {per_episode:.3g} |")
    checks = _fig4_checks(outcomes, labels, budget=budget, preset=preset, road=name)
    lines += ["", "Targets (issue 3; a verdict needs a paired 95% CI over at least "
              f"{metrics.MIN_SEEDS_TO_DECIDE} seeds that excludes the threshold):", ""]  # fmt: skip
    lines += [f"* {c}" for c in checks] + [""]
    entry = {"preset": p, "n_aps": road["n_aps"], "params": road["params"],
             "rows": _fig4_rows(by_label, outcomes, labels), "checks": checks}  # fmt: skip
    return lines, entry


def _vs_ql(agg: stats.Aggregate, label: str) -> str:
    """IQM and P(better than QL) cells; QL's own P is the reference."""
    iqm, better = agg.cells()
    return f"{iqm} | {'(reference)' if label == 'QL' else better}"


def _episodes_cell(times: list[int | None], budget: int) -> str:
    """Median over seeds, then the range over the seeds that got there and how many did."""
    reached = [t for t in times if t is not None]
    span = f"{min(reached)}-{max(reached)}; " if reached else ""
    return f"{ap_metrics.episodes_text(times, budget)} ({span}{len(reached)}/{len(times)} seeds)"


def _safety_checks(summary: dict[str, Any], safe: str, cut: float) -> list[str]:
    """The two targets of SafeExploration against QL, judged on paired per-seed estimates with
    :func:`metrics.verdict` (so fewer than 5 seeds decide nothing): the per-seed cut of cumulative
    physical failures against 90%, and the final-reward difference of
    :func:`ap_metrics.paired_outcomes` against 0."""
    p = summary["preset"]
    fails = {lb: {r["seed"]: float(np.sum(r["episode_failures"])) for r in summary["runs"]
                  if r["label"] == lb} for lb in ("QL", safe)}  # fmt: skip
    cuts = metrics.mean_ci([1 - fails[safe][s] / n for s, n in sorted(fails["QL"].items())
                            if s in fails[safe] and n > 0])  # fmt: skip
    gain = ap_metrics.paired_outcomes(summary["runs"], window=p["window"])[safe]["final_minus_ql"]
    return [
        f"SafeExploration cuts cumulative physical failures by {cut:.1%} against QL (per seed, "
        f"paired: {cuts.mean:.1%} ± {cuts.half_width:.1%}; target >= 90%): "
        + ap_metrics.decided(metrics.verdict(cuts, 0.9), cuts.n, preset=p["name"]),
        f"final reward with SafeExploration - QL = {gain.mean:+.4g} ± {gain.half_width:.2g} "
        "(paired; target: at least as high): "
        + ap_metrics.decided(metrics.verdict(gain, 0.0), gain.n, preset=p["name"]),
    ]


def write_safety(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    by_label = _stats(summary)
    p = summary["preset"]
    m = summary["n_aps"]
    labels = ["QL", f"DT-QL n={m}", f"DT-QL n={m} + safe"]
    lines = [
        "# Safe exploration: physical URLLC failures during training (paper 000, Section III-A)",
        "",
        f"{p['seeds']} seeds x {p['episodes']} physical episodes per method. SafeExploration tries "
        "every physical action in the identical domain first and replaces predicted failures.",
        "",
        "| method | physical failures during training | failures IQM | P(fewer than QL's) | "
        "of which a veto could avoid | with no safe AP | final reward |",
        "|---|---|---|---|---|---|---|",
    ]
    totals = {lb: [float(np.sum(r["episode_failures"])) for r in summary["runs"]
                   if r["label"] == lb] for lb in labels}  # fmt: skip
    versus = {lb: stats.aggregate(totals[lb], None if lb == "QL" else totals["QL"],
                                  higher_is_better=False) for lb in labels}  # fmt: skip
    for lb in labels:
        st = by_label[lb]
        audit = _audit(summary, lb)
        if audit is None:
            split = "n/a | n/a"
        elif lb.endswith("+ safe"):
            split = f"0 (vetoed {audit[0]:.0f}) | {audit[1]:.0f}"
        else:
            split = f"{audit[0]:.0f} | {audit[1]:.0f}"
        lines.append(f"| {lb} | {st['failures_total']} | {_vs_ql(versus[lb], lb)} | {split} | "
                     f"{st['final_reward']} |")  # fmt: skip
    ql, safe = by_label["QL"], by_label[labels[2]]
    cut = (
        1 - safe["failures_total"].mean / ql["failures_total"].mean
        if ql["failures_total"].mean
        else float("nan")
    )
    checks = _safety_checks(summary, labels[2], cut)
    ql_audit, safe_audit = _audit(summary, "QL"), _audit(summary, labels[2])
    if ql_audit is not None and safe_audit is not None:
        left = safe["failures_total"].mean
        checks.append(
            f"failures a veto could avoid: QL {ql_audit[0]:.0f} per run, SafeExploration "
            f"{left - safe_audit[1]:.0f} (its {left:.0f} remaining failures per run had no safe AP "
            f"in the twin; {ql_audit[1]:.0f} of QL's had none either)"
        )
    lines += ["", stats.AGGREGATE_NOTE, "", "Targets (issue 3):", ""] + [f"* {c}" for c in checks]
    lines += ["", "Failures with no safe AP are those where the twin found every access point "
              "failing for the task at hand (e.g. a short-deadline task in a coverage gap while the "
              "macro cell is busy): no veto can prevent them, only a policy that keeps the macro cell "
              "free ahead of time. For QL and DT-QL the twin audits every physical action without "
              "changing the run.", "", "![safety](safety.png)", ""]  # fmt: skip
    (out / "table.md").write_text("\n".join(lines))
    _plot_safety(by_label, labels, out / "safety.png")
    rows = [{**row, "failures_vs_ql": versus[row["method"]].to_dict()}
            for row in _rows(by_label, labels)]  # fmt: skip
    return {"rows": rows, "checks": checks, "failure_cut": cut}


def _fig4_checks(
    outcomes: dict[str, dict[str, Any]], labels: list[str], *, budget: int, preset: str, road: str
) -> list[str]:
    """The headline speed for the largest n (every n < M on the hard road), the final reward
    and the fall with n, each with a verdict only where its seeds can decide."""
    twins = [lb for lb in labels if lb != "QL"]
    speed = twins if road == "hard" else twins[-1:]
    kw = {"preset": preset, "road": road}
    return [
        *(ap_metrics.speed_check(outcomes, lb, budget=budget, **kw) for lb in speed),
        ap_metrics.final_check(outcomes, twins[-1], **kw),
        ap_metrics.monotone_check(outcomes, twins, budget=budget, **kw),
    ]


def _fig4_rows(
    by_label: dict[str, dict[str, Any]], outcomes: dict[str, dict[str, Any]], labels: list[str]
) -> list[dict[str, Any]]:
    """summary.json rows of one road: the paired metrics per seed and their estimates."""
    rows = []
    for lb in labels:
        o, st = outcomes[lb], by_label[lb]
        rows.append({
            "method": lb, "n_trials": o["n_trials"], "runs": st["runs"], "seeds": o["seeds"],
            "ql_final_level": o["ql_final_level"],
            "episodes_to_ql_final": o["episodes_to_ql_final"],
            "episodes_to_ql_final_median": metrics.median_time(o["episodes_to_ql_final"]),
            "episodes_to_ql_final_twin_normalised": o["episodes_to_ql_final_twin_normalised"],
            "episodes_to_ql_final_twin_normalised_median":
                metrics.median_time(o["episodes_to_ql_final_twin_normalised"]),
            "speedup_vs_ql": ap_metrics.speedup(o["log_speedup"]),
            "episodes_vs_ql": o["episodes_vs_ql"].to_dict(),
            "auc": o["auc"].to_dict(), "auc_minus_ql": o["auc_minus_ql"].to_dict(),
            "auc_vs_ql": o["auc_vs_ql"].to_dict(),
            "final_reward": st["final_reward"].to_dict(),
            "final_minus_ql": o["final_minus_ql"].to_dict(),
            "failures_total": st["failures_total"].to_dict(),
            "twin_evaluations": st["twin_evaluations"],
            "curve_mean": st["curve_mean"], "curve_ci95": st["curve_ci95"],
        })  # fmt: skip
    return rows


def _rows(by_label: dict[str, dict[str, Any]], labels: list[str]) -> list[dict[str, Any]]:
    return [
        {**episodic.summary_row(lb, by_label[lb]),
         "final_reward": by_label[lb]["final_reward"].to_dict(),
         "failures_total": by_label[lb]["failures_total"].to_dict()}
        for lb in labels
    ]  # fmt: skip


def _plot_fig4(
    by_label: dict[str, Any], labels: list[str], p: dict[str, Any], path: Path, *, title: str
) -> None:
    """Left: the paper's linear axis; right: the same curves on a log axis, where the early
    episodes (when the methods differ most) are visible."""
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, scale in zip(axes, ("linear", "log"), strict=True):
        for lb in labels:
            st = by_label[lb]
            x = np.arange(1, st["curve_mean"].size + 1)
            band(ax, x, st["curve_mean"], st["curve_ci95"], lb)
        # the level the headline speed is measured against (per seed; here their mean)
        level = float(by_label["QL"]["curve_mean"][-1])
        ax.axhline(level, color="0.4", lw=0.8, ls="--", label="QL's final level (mean)")
        ax.set_xscale(scale)
        ax.grid(alpha=0.3)
        ax.set(xlabel=f"physical episode ({scale} axis)",
               ylabel=f"episode reward (moving average, {p['window']})")  # fmt: skip
    fig.suptitle(f"DT-enhanced Q-learning with n actions per state (paper 000, Fig. 4). {title}",
                 fontsize=10)  # fmt: skip
    finish(plt, fig, axes[0], path)


def _plot_safety(by_label: dict[str, Any], labels: list[str], path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for lb in labels:
        y = by_label[lb]["cumulative_failures_mean"]
        ax.plot(np.arange(1, y.size + 1), y, label=lb)
    ax.set(xlabel="physical episode", ylabel="cumulative physical failures (mean over seeds)",
           title="Failed URLLC transmissions during training")  # fmt: skip
    finish(plt, fig, ax, path, legend="upper left")
