"""Episodic learning curves: named variants (algorithm + assists) x seeds through ``twinrl.train``.

Used by the access-point (``fig4``, ``safety``) and multi-UAV (``fig5``, ``observation``)
experiments: each run records the physical return, length and failures of every training
episode; curves are smoothed with the paper's trailing moving average and summarised over seeds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.algorithms import Streams, build_algorithm
from twinrl.assists.global_observation import GlobalObservation
from twinrl.experiments import metrics
from twinrl.experiments.parallel import run_jobs
from twinrl.training import train


@dataclass(frozen=True)
class Variant:
    """One curve: a named algorithm with its twin settings."""

    label: str
    algorithm: str
    n_trials: int = 1
    """Actions tried in the twin per physical step (``dteql``)."""
    safe_exploration: bool | str = False
    """True: veto predicted failures; ``"audit"``: only count those a veto would have avoided."""
    k: int = 3
    """Look-ahead steps of ``dt-dqn`` (``n`` of ``nstep-dqn``)."""
    m: int = 4
    """Twin trajectories averaged by ``dt-dqn``."""
    prediction: tuple[tuple[str, Any], ...] = ()
    """``dt-dqn``'s other :class:`~twinrl.assists.PredictiveTargets` options (e.g.
    ``(("future", "physical"),)``); empty: the defaults."""
    agent: tuple[tuple[str, Any], ...] = ()
    """Agent settings of this variant on top of the experiment's (e.g.
    ``(("gradient_steps", 2),)``)."""
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    """Env settings of this variant on top of the experiment's (e.g. a ``sensing_radius``)."""
    global_observation: bool = False
    """Wrap the env in :class:`~twinrl.assists.GlobalObservation` (the twin's global view)."""
    fidelity: tuple[tuple[str, Any], ...] = ()
    """The twin's imperfection: keyword arguments of :class:`~twinrl.twin.Fidelity` (e.g.
    ``(("bias", {"ap_rates": -0.5}),)``); empty: a perfect twin."""
    average: int = 1
    """Domain averaging (``DigitalTwin(average=m)``, paper 000, Section V-A); 1: off."""
    start_below: float | None = None
    """``train``'s ``start_below``: the assists wait until the twin's mean one-step reward error
    over 20 physical steps is at most this; None: they start at once."""
    recalibrate: tuple[tuple[str, Any], ...] = ()
    """Online calibration of the twin's model from the physical data it mirrors: keyword
    arguments of :class:`~twinrl.twin.Recalibration` (e.g. ``(("every", 500),)``); empty: off."""

    @property
    def imperfect(self) -> bool:
        """Whether the twin settings differ from the perfect twin's defaults."""
        return (bool(self.fidelity) or self.average != 1 or self.start_below is not None
                or bool(self.recalibrate))  # fmt: skip


@dataclass(frozen=True)
class EpisodicJob:
    env_id: str
    env_kwargs: tuple[tuple[str, Any], ...]
    variant: Variant
    seed: int
    episodes: int
    agent_config: tuple[tuple[str, Any], ...] = ()
    eval_episodes: int = 0
    """Episodes of the trained greedy policy played after training (no learning, no exploration),
    on the physical env from a seeded reset: ``greedy_return`` in the result."""
    keep_policy: bool = False
    """Return the trained agent's ``state_dict()`` arrays as ``policy`` (to replay it later)."""
    eval_at: tuple[int, ...] = ()
    """Physical episodes after which the greedy policy is also evaluated, on a physical env of
    its own (the evaluation episodes of ``eval_episodes``, so training is not disturbed):
    ``greedy_at`` in the result, one list of per-episode rewards per entry."""


def build_env(env_id: str, env_kwargs: dict[str, Any], variant: Variant) -> gym.Env[Any, Any]:
    """The env a variant trains on: the experiment's settings overridden by the variant's, wrapped
    in :class:`GlobalObservation` if the variant asks for it."""
    env = gym.make(env_id, **{**env_kwargs, **dict(variant.env_kwargs)})
    return GlobalObservation(env) if variant.global_observation else env


def run_episodic(job: EpisodicJob) -> dict[str, Any]:
    """Train one variant for ``episodes`` physical episodes; per-episode return, length and
    failures, the assists' statistics, and optionally a greedy evaluation and the policy."""
    v = job.variant
    env = build_env(job.env_id, dict(job.env_kwargs), v)
    agent, assists = build_algorithm(
        v.algorithm, env, job.seed, agent_config={**dict(job.agent_config), **dict(v.agent)},
        n_trials=v.n_trials, safe_exploration=v.safe_exploration, k=v.k, m=v.m,
        prediction=dict(v.prediction),
    )  # fmt: skip
    horizon = getattr(env.unwrapped, "episode_steps", None) or 10_000
    settings = twin_settings(v, env, uses_twin=bool(assists))
    greedy_at: list[list[float]] = []
    eval_seed = evaluation_seed(job.seed)

    def evaluate_at(iteration: int, run: Any) -> None:
        if len(greedy_at) < len(job.eval_at) and run.episodes >= job.eval_at[len(greedy_at)]:
            judge = build_env(job.env_id, dict(job.env_kwargs), v)
            greedy_at.append(greedy_returns(judge, agent, job.eval_episodes, seed=eval_seed))

    run = train(
        env, agent, assists=assists, budget=job.episodes * horizon, max_episodes=job.episodes,
        seed=Streams.from_seed(job.seed).env_seed, evaluate=False, track_info=("failed",),
        callback=evaluate_at if job.eval_at else None, **settings,
    )  # fmt: skip
    lengths = np.asarray(run.episode_lengths, dtype=np.int64)
    failed = np.nan_to_num(run.history["failed"])
    starts = np.cumsum(lengths) - lengths
    per_episode = np.add.reduceat(failed, starts) if lengths.size else np.zeros(0)
    stats = {a.name: a.stats() for a in assists if hasattr(a, "stats")}
    out = {
        "label": job.variant.label,
        "variant": asdict(job.variant),
        "seed": job.seed,
        "episode_return": list(map(float, run.episode_returns)),
        "episode_length": list(map(int, run.episode_lengths)),
        "episode_failures": list(map(float, per_episode)),
        "iterations": run.iterations,
        "twin_evaluations": run.twin_evaluations,
        "wall_time": run.wall_time,
        "assists": stats,
    }
    if v.imperfect:
        out["twin_error"] = dict(run.twin_error)
        out["twin_started"] = run.twin_started
    if v.recalibrate:
        out["recalibrations"] = settings["twin"].recalibrations
        out["estimate"] = settings["twin"].estimate
    if job.eval_at:
        out["greedy_at"] = greedy_at
    if job.eval_episodes:
        out["greedy_return"] = greedy_returns(env, agent, job.eval_episodes, seed=eval_seed)
    if job.keep_policy:
        out["policy"] = agent.state_dict()
    return out


def twin_settings(v: Variant, env: gym.Env[Any, Any], *, uses_twin: bool) -> dict[str, Any]:
    """``train``'s ``twin`` and ``start_below`` for a variant with an imperfect twin or a
    mitigation (none otherwise, so a perfect-twin variant runs exactly as before)."""
    if not (uses_twin and v.imperfect):
        return {}
    from twinrl.twin import DigitalTwin, Fidelity, Recalibration

    recalibrate = Recalibration(**dict(v.recalibrate)) if v.recalibrate else None
    twin = DigitalTwin(env, fidelity=Fidelity(**dict(v.fidelity)), average=v.average,
                       recalibrate=recalibrate)  # fmt: skip
    return {"twin": twin, "start_below": v.start_below}


def evaluation_seed(run_seed: int) -> int:
    """Env seed of a run's greedy evaluation: a stream of its own, so every variant of a run seed
    (and a reference policy evaluated with it) plays the same evaluation episodes."""
    return int(np.random.SeedSequence([run_seed, 1]).generate_state(1)[0])


def greedy_returns(env: gym.Env[Any, Any], agent: Any, episodes: int, *, seed: int) -> list[float]:
    """Mean reward per step in each of ``episodes`` episodes of ``agent``'s greedy policy on
    ``env`` (reset with ``seed`` first; the agent does not learn)."""
    out: list[float] = []
    obs, info = env.reset(seed=seed)
    for _ in range(episodes):
        total, steps, done = 0.0, 0, False
        while not done:
            action = agent.act(obs, explore=False, mask=info.get("action_mask"))
            obs, reward, terminated, truncated, info = env.step(action)
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        out.append(total / steps)
        obs, info = env.reset()
    return out


def run_variants(
    env_id: str,
    env_kwargs: dict[str, Any],
    variants: list[Variant],
    *,
    seeds: int,
    episodes: int,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    agent_config: dict[str, Any] | None = None,
    eval_episodes: int = 0,
    keep_policy: bool = False,
    eval_at: tuple[int, ...] = (),
) -> list[dict[str, Any]]:
    """Every variant with seeds ``SeedSequence([seed, s])``, s = 0..seeds-1 (the same env and
    agent seeds for every variant, so differences come from the twin). ``eval_episodes``,
    ``keep_policy`` and ``eval_at`` are those of :class:`EpisodicJob`."""
    env_items = tuple(sorted(env_kwargs.items()))
    agent_items = tuple(sorted((agent_config or {}).items()))
    jobs = [
        EpisodicJob(env_id, env_items, v, run_seed, episodes, agent_items, eval_episodes,
                    keep_policy, tuple(eval_at))
        for v in variants
        for run_seed in run_seeds(seed, seeds)
    ]  # fmt: skip
    runs = list(run_jobs(run_episodic, jobs, workers=workers, progress=progress))
    order = {v.label: i for i, v in enumerate(variants)}
    runs.sort(key=lambda r: (order[r["label"]], r["seed"]))
    return runs


def run_seeds(seed: int, seeds: int) -> list[int]:
    """The run seeds ``SeedSequence([seed, s])``, s = 0..seeds-1, of :func:`run_variants`."""
    return [int(np.random.SeedSequence([seed, s]).generate_state(1)[0]) for s in range(seeds)]


def moving_average(x: NDArray[np.float64] | list[float], window: int) -> NDArray[np.float64]:
    """Trailing mean over the last ``window`` values (fewer at the start), as the paper plots."""
    x = np.asarray(x, dtype=np.float64)
    if window < 1:
        raise ValueError(f"window={window} is out of range; allowed: an int >= 1")
    csum = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def settling_episode(curve: NDArray[np.float64], *, frac: float = 0.95) -> int | None:
    """First 1-based episode from which a smoothed reward curve stays at or above
    ``start + frac * (final - start)``, with ``final`` the mean of its last 10% (its value at the
    end of training) and ``start`` its first value: the convergence time of DESIGN.md with a
    tolerance of ``1 - frac`` of the learning range. ``None`` if it never rose."""
    curve = np.asarray(curve, dtype=np.float64)
    tail = max(1, curve.size // 10)
    final, start = float(curve[-tail:].mean()), float(curve[0])
    if final <= start:
        return None
    return metrics.convergence_time(curve, start + frac * (final - start))


def summarise(
    runs: list[dict[str, Any]], *, window: int, reference: str | None = None
) -> dict[str, dict[str, Any]]:
    """Per variant: smoothed mean curve with 95% CI band, final reward, settling episode, failures,
    and the episodes each seed needs to stay at or above a common target: the ``reference``
    variant's final reward (default: the best variant's), so that speed is also compared at one
    level and a method settling early on a low plateau is not mistaken for a fast one."""
    out: dict[str, dict[str, Any]] = {}
    for label in dict.fromkeys(r["label"] for r in runs):
        group = [r for r in runs if r["label"] == label]
        curves = np.array([moving_average(r["episode_return"], window) for r in group])
        n = curves.shape[0]
        half = np.array([metrics.mean_ci(curves[:, e]).half_width for e in range(curves.shape[1])])
        tail = max(1, curves.shape[1] // 10)
        settle = [settling_episode(c) for c in curves]
        cum_fail = np.array([np.cumsum(r["episode_failures"]) for r in group])
        out[label] = {
            "runs": n,
            "curve_mean": curves.mean(axis=0),
            "curve_ci95": half,
            "final_reward": metrics.mean_ci([np.mean(r["episode_return"][-tail:]) for r in group]),
            "settling_episodes": settle,
            "settling_median": metrics.median_time(settle),
            "failures_total": metrics.mean_ci(cum_fail[:, -1]),
            "cumulative_failures_mean": cum_fail.mean(axis=0),
            "twin_evaluations": float(np.mean([r["twin_evaluations"] for r in group])),
            "curves": curves,
        }
    if reference is not None and reference not in out:
        raise ValueError(f"reference={reference!r} is not one of the variants {list(out)}")
    target = (
        out[reference]["final_reward"].mean
        if reference is not None
        else max(st["final_reward"].mean for st in out.values())
    )
    for st in out.values():
        times = [metrics.convergence_time(c, target) for c in st.pop("curves")]
        st["target"] = target
        st["reach_episodes"] = times
        st["reach_median"] = metrics.median_time(times)
    return out


def summary_row(label: str, st: dict[str, Any]) -> dict[str, Any]:
    """The fields of a :func:`summarise` entry that every experiment's ``summary.json`` row holds
    (each experiment adds its own estimates)."""
    keys = ("runs", "settling_episodes", "settling_median", "reach_episodes", "reach_median",
            "twin_evaluations", "curve_mean", "curve_ci95")  # fmt: skip
    return {"method": label, **{key: st[key] for key in keys}}
