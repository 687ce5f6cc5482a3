"""Access-point selection for vehicles (paper 000, Section IV-A): ``fig4`` and ``safety``.

``fig4``: physical episode reward vs episodes for Q-learning and DT-enhanced Q-learning with n
actions tried in the twin per physical state, n = 2..M (the paper's Fig. 4), with the paper-style
moving average and a 95% CI band over seeds. ``safety``: cumulative physical URLLC failures during
training for QL, DT-QL (n = M) and DT-QL with :class:`~twinrl.assists.SafeExploration`.
Both share one set of runs.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from twinrl.experiments import episodic, metrics
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


def run_preset(
    preset: str,
    *,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    seeds: int | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Every variant over the preset's seeds, the baselines' rows, and the settings used."""
    p = PRESETS[preset]
    n_seeds = seeds or p.seeds
    env = gym.make(ENV_ID)
    params = env.unwrapped.params  # type: ignore[attr-defined]
    n_aps = int(env.action_space.n)  # type: ignore[attr-defined]
    runs = episodic.run_variants(
        ENV_ID, {}, variants(n_aps), seeds=n_seeds, episodes=p.episodes, seed=seed,
        workers=workers, progress=progress, agent_config=AGENT,
    )  # fmt: skip
    return {
        "preset": {**asdict(p), "seeds": n_seeds, "name": preset},
        "seed": seed,
        "params": _params(params),
        "n_aps": n_aps,
        "agent_config": AGENT,
        "runs": runs,
        "baselines": _baselines(params, episodes=max(20, p.episodes // 20), seed=seed),
    }


def _params(params: Any) -> dict[str, Any]:
    return {k: (np.asarray(v).tolist() if isinstance(v, (tuple, np.ndarray)) else v)
            for k, v in asdict(params).items()}  # fmt: skip


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
    out.mkdir(parents=True, exist_ok=True)
    labels = _fig4_labels(summary)
    stats = _stats(summary, labels)
    p = summary["preset"]
    m = summary["n_aps"]
    lines = [
        "# Access-point selection: DT-enhanced Q-learning with n trials per state (paper 000, Fig. 4)",
        "",
        f"{p['seeds']} seeds x {p['episodes']} physical episodes per method; moving average over "
        f"{p['window']} episodes; M = {m} access points. Paper: {PAPER['text']}.",
        "",
        "| method | final reward | episodes to converge | episodes to reach QL's final reward | "
        "twin evaluations / run |",
        "|---|---|---|---|---|",
    ]
    for lb in labels:
        st = stats[lb]
        settle = metrics.format_convergence(st["settling_episodes"], p["episodes"])
        reach = (
            "(reference)"
            if lb == "QL"
            else metrics.format_convergence(st["reach_episodes"], p["episodes"])
        )
        audited = " (audit)" if _audit(summary, lb) is not None else ""
        lines.append(f"| {lb} | {st['final_reward']} | {settle} | {reach} | "
                     f"{st['twin_evaluations']:.0f}{audited} |")  # fmt: skip
    lines += ["", "(audit): the count includes the safety audit, which checks every physical "
              "action in the twin without changing the run (see the safety table). Training "
              "rewards include the exploration (epsilon = 0.1); the baselines do not explore."]  # fmt: skip
    lines += [
        "",
        "Baselines (same env, no learning):",
        "",
        "| policy | episode reward | failures / episode |",
        "|---|---|---|",
    ]
    for name, row in summary["baselines"].items():
        per_episode = row["failures"] / row["episodes"]
        lines.append(f"| {name} | {row['mean_reward']:.4g} | {per_episode:.3g} |")
    checks = _fig4_checks(stats, m)
    lines += ["", "Targets (issue 3):", ""] + [f"* {c}" for c in checks]
    lines += ["", DEFINITIONS, "", "![fig4](fig4.png)", ""]
    (out / "table.md").write_text("\n".join(lines))
    _plot_fig4(stats, labels, p, out / "fig4.png")
    return {"rows": _rows(stats, labels), "checks": checks}


def write_safety(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    stats = _stats(summary)
    p = summary["preset"]
    m = summary["n_aps"]
    labels = ["QL", f"DT-QL n={m}", f"DT-QL n={m} + safe"]
    lines = [
        "# Safe exploration: physical URLLC failures during training (paper 000, Section III-A)",
        "",
        f"{p['seeds']} seeds x {p['episodes']} physical episodes per method. SafeExploration tries "
        "every physical action in the identical domain first and replaces predicted failures.",
        "",
        "| method | physical failures during training | of which a veto could avoid | "
        "with no safe AP | final reward |",
        "|---|---|---|---|---|",
    ]
    for lb in labels:
        st = stats[lb]
        audit = _audit(summary, lb)
        if audit is None:
            split = "n/a | n/a"
        elif lb.endswith("+ safe"):
            split = f"0 (vetoed {audit[0]:.0f}) | {audit[1]:.0f}"
        else:
            split = f"{audit[0]:.0f} | {audit[1]:.0f}"
        lines.append(f"| {lb} | {st['failures_total']} | {split} | {st['final_reward']} |")
    ql, safe = stats["QL"], stats[labels[2]]
    cut = (
        1 - safe["failures_total"].mean / ql["failures_total"].mean
        if ql["failures_total"].mean
        else float("nan")
    )
    ok_cut = cut >= 0.9
    ok_reward = safe["final_reward"].mean >= ql["final_reward"].mean - ql["final_reward"].half_width
    checks = [
        f"SafeExploration cuts cumulative physical failures by {cut:.1%} against QL "
        f"(target >= 90%): {'met' if ok_cut else 'NOT met'}",
        f"final reward with SafeExploration {safe['final_reward']} vs QL {ql['final_reward']}: "
        f"{'not lower' if ok_reward else 'LOWER'}",
    ]
    ql_audit, safe_audit = _audit(summary, "QL"), _audit(summary, labels[2])
    if ql_audit is not None and safe_audit is not None:
        left = safe["failures_total"].mean
        checks.append(
            f"failures a veto could avoid: QL {ql_audit[0]:.0f} per run, SafeExploration "
            f"{left - safe_audit[1]:.0f} (its {left:.0f} remaining failures per run had no safe AP "
            f"in the twin; {ql_audit[1]:.0f} of QL's had none either)"
        )
    lines += ["", "Targets (issue 3):", ""] + [f"* {c}" for c in checks]
    lines += ["", "Failures with no safe AP are those where the twin found every access point "
              "failing for the task at hand (e.g. a short-deadline task in a coverage gap while the "
              "macro cell is busy): no veto can prevent them, only a policy that keeps the macro cell "
              "free ahead of time. For QL and DT-QL the twin audits every physical action without "
              "changing the run.", "", "![safety](safety.png)", ""]  # fmt: skip
    (out / "table.md").write_text("\n".join(lines))
    _plot_safety(stats, labels, out / "safety.png")
    return {"rows": _rows(stats, labels), "checks": checks, "failure_cut": cut}


DEFINITIONS = """\
Definitions (twinrl `experiments/episodic.py`): *final reward* = mean physical episode reward over
the last 10% of training episodes (exploration included), mean ± 95% CI over seeds. *Episodes to
converge* = first episode from which the moving-average reward stays at or above start + 95% of
(own final - start), DESIGN.md's convergence time with a tolerance of 5% of the learning range;
*episodes to reach QL's final reward* = the same for QL's final reward. Both are medians over
seeds, with the share of seeds that got there in brackets. The targets are judged on episodes to
converge together with the final reward, so that settling early on a lower plateau does not count
as faster learning. Every method explores with a constant epsilon = 0.1 (see `AGENT` in
`experiments/ap_figures.py`). Absolute rewards depend on our env parameters (summary.json
`params`): compare shapes and ratios with the paper, not values."""


def _fig4_checks(stats: dict[str, dict[str, Any]], m: int) -> list[str]:
    ql, full = stats["QL"], stats[f"DT-QL n={m}"]

    def text(x: float) -> str:
        return "never (> budget)" if np.isinf(x) else f"{x:.0f}"

    speed = ql["settling_median"] / full["settling_median"]  # inf if QL never settles
    ok_speed = bool(speed >= 3)
    ok_final = full["final_reward"].mean >= ql["final_reward"].mean
    med = [stats[f"DT-QL n={n}"]["settling_median"] for n in range(2, m + 1)]
    mono = all(a >= b for a, b in itertools.pairwise(med))
    return [
        f"DT-QL n={m} converges in {text(full['settling_median'])} physical episodes, QL in "
        f"{text(ql['settling_median'])} ({speed:.3g}x; median over seeds; target: at least 3x "
        f"faster): {'met' if ok_speed else 'NOT met'}",
        f"final reward DT-QL n={m} {full['final_reward']} vs QL {ql['final_reward']} "
        f"(target: at least as high): {'met' if ok_final else 'NOT met'}",
        f"episodes to converge fall monotonically with n = 2..{m} "
        f"({', '.join(text(x) for x in med)}): {'met' if mono else 'NOT met'}",
    ]


def _rows(stats: dict[str, dict[str, Any]], labels: list[str]) -> list[dict[str, Any]]:
    return [
        {**episodic.summary_row(lb, stats[lb]),
         "final_reward": stats[lb]["final_reward"].to_dict(),
         "failures_total": stats[lb]["failures_total"].to_dict()}
        for lb in labels
    ]  # fmt: skip


def _plot_fig4(stats: dict[str, Any], labels: list[str], p: dict[str, Any], path: Path) -> None:
    """Left: the paper's linear axis; right: the same curves on a log axis, where the early
    episodes (when the methods differ most) are visible."""
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, scale in zip(axes, ("linear", "log"), strict=True):
        for lb in labels:
            st = stats[lb]
            x = np.arange(1, st["curve_mean"].size + 1)
            band(ax, x, st["curve_mean"], st["curve_ci95"], lb)
        ax.set_xscale(scale)
        ax.grid(alpha=0.3)
        ax.set(xlabel=f"physical episode ({scale} axis)",
               ylabel=f"episode reward (moving average, {p['window']})")  # fmt: skip
    fig.suptitle("DT-enhanced Q-learning with n actions per state (paper 000, Fig. 4)")
    finish(plt, fig, axes[0], path)


def _plot_safety(stats: dict[str, Any], labels: list[str], path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for lb in labels:
        y = stats[lb]["cumulative_failures_mean"]
        ax.plot(np.arange(1, y.size + 1), y, label=lb)
    ax.set(xlabel="physical episode", ylabel="cumulative physical failures (mean over seeds)",
           title="Failed URLLC transmissions during training")  # fmt: skip
    finish(plt, fig, ax, path, legend="upper left")
