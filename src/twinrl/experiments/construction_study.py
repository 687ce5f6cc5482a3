"""When does building a twin pay off once its construction time counts? The ``construction``
experiment (issue 11, item 5; paper 000, Section V-B "Extra Training Delay of DT Construction").

Access-point selection with the ``fidelity`` study's settings (QL vs DT-QL n = 5, the ``fig4``
agent), per seed on the same env and agent seeds. The twin is usable only after T_c physical
steps; until then DT-QL learns physically, and those steps are on the same clock as QL's, so
"episodes to reach QL's final level" counts the construction. Three parts:

* ``construction``: T_c at fractions of the same seed's QL time to its own final level
  (:attr:`Preset.fractions`), a perfect twin once built.
* ``schedule``: a twin whose ``ap_rates`` bias shrinks to 0 while it is built
  (``improve_over``), used (a) at once, (b) only once accurate (``ready_after``, no bias) or (c)
  from the fidelity-triggered start (``start_below``, the fidelity study's threshold).
* ``calibration``: the twin is built from the first n physical transitions of the same run
  (:func:`~twinrl.twin.calibrator_for`), then used with the estimated rates and speed.

:mod:`twinrl.experiments.construction_report` computes the paired differences and writes the
report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np

from twinrl.algorithms import Streams, build_algorithm
from twinrl.errors import ConfigError
from twinrl.experiments import ap_figures, episodic, metrics
from twinrl.experiments.episodic import EpisodicJob, Variant
from twinrl.experiments.fidelity_study import AP_CASE, _episodic_outcomes
from twinrl.experiments.parallel import run_jobs
from twinrl.training import train
from twinrl.twin import calibrator_for

PHYSICAL = Variant("QL", "ql")
ASSISTED = Variant("DT-QL n=5", "dteql", n_trials=5)
START_BELOW = AP_CASE.start_below
"""The fidelity study's threshold (0.5 reward per step, about a tenth of a step's mean reward)."""


@dataclass(frozen=True)
class Preset:
    episodes: int
    seeds: int
    eval_episodes: int
    fractions: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
    """T_c as fractions of the same seed's QL time (episodes) to reach its own final level."""
    bias: float = -0.5
    """``ap_rates`` bias of the twin under construction (``schedule``): the fidelity study's level
    where a fixed bias caused significantly more physical failures."""
    improve_episodes: int = 200
    """``schedule``: episodes over which that bias shrinks to 0 (``improve_over``)."""
    calibration_episodes: tuple[int, ...] = (1, 5, 20, 100)
    """``calibration``: physical episodes observed before the calibrated twin is built."""
    window: int = 50
    """Moving-average window of the curves (episodes)."""


PRESETS = {
    "quick": Preset(episodes=400, seeds=5, eval_episodes=20),
    "paper": Preset(episodes=600, seeds=10, eval_episodes=40, improve_episodes=300),
}


def _horizon() -> int:
    return int(gym.make(ap_figures.ENV_ID).unwrapped.episode_steps)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ConstructionJob:
    """One run: an episodic job, optionally with its twin calibrated from its first
    ``calibrate_steps`` physical steps (0: the variant's fidelity as given)."""

    job: EpisodicJob
    part: str
    level: float
    calibrate_steps: int = 0
    window: int = 50
    """Moving-average window of the curve (episodes)."""


def calibrate(job: EpisodicJob, steps: int) -> dict[str, Any]:
    """The twin model a :class:`~twinrl.twin.Calibrator` estimates from the first ``steps``
    physical transitions of ``job``'s run: before the twin is built, DT-QL learns exactly as
    physical QL does (tested), so these are QL's first transitions on the same seeds."""
    env = episodic.build_env(job.env_id, dict(job.env_kwargs), PHYSICAL)
    calibrator = calibrator_for(env)
    recorder = _Recorder(env, calibrator)
    agent, _ = build_algorithm("ql", recorder, job.seed, agent_config=dict(job.agent_config))
    train(recorder, agent, budget=steps, seed=Streams.from_seed(job.seed).env_seed, evaluate=False)
    return calibrator.estimate()


class _Recorder(gym.Wrapper):
    """Feeds every physical transition (state snapshots around ``step``) to a calibrator."""

    def __init__(self, env: gym.Env[Any, Any], calibrator: Any) -> None:
        super().__init__(env)
        self.calibrator = calibrator

    def step(self, action: Any) -> Any:
        state = self.env.unwrapped.get_state()  # type: ignore[attr-defined]
        out = self.env.step(action)
        self.calibrator.observe(state, action, self.env.unwrapped.get_state(), out[4])  # type: ignore[attr-defined]
        return out


def run_job(cj: ConstructionJob) -> dict[str, Any]:
    """One run's outcomes (those of the fidelity study), with its part, level and T_c."""
    job, extra = cj.job, dict[str, Any]()
    if cj.calibrate_steps:
        try:
            model = calibrate(job, cj.calibrate_steps)
        except ConfigError as exc:  # some AP delivered nothing yet: no twin can be built
            model, extra["not_built"] = None, str(exc)
        ready = cj.calibrate_steps if model is not None else 10**9
        fidelity = (("model", model),) if model is not None else ()
        job = replace(job, variant=replace(
            job.variant, fidelity=(*fidelity, ("ready_after", ready))))  # fmt: skip
        extra["model"] = model
    run = episodic.run_episodic(job)
    fid = dict(job.variant.fidelity)
    return {
        **_episodic_outcomes(run, cj.window),
        "part": cj.part,
        "level": cj.level,
        "ready_after": int(fid.get("ready_after", 0)),
        "start_below": job.variant.start_below,
        **extra,
    }


def _jobs(
    p: Preset, variants: list[tuple[str, float, Variant, int]], seeds: list[int]
) -> list[ConstructionJob]:
    agent = tuple(sorted(ap_figures.AGENT.items()))
    return [
        ConstructionJob(
            EpisodicJob(ap_figures.ENV_ID, (), v, s, p.episodes, agent, p.eval_episodes),
            part, level, calibrate, p.window,
        )
        for part, level, v, calibrate in variants
        for s in seeds
    ]  # fmt: skip


def ql_reach(run: dict[str, Any]) -> int:
    """Episodes QL's smoothed curve needs to stay at its own final level (at most the budget)."""
    reach = metrics.convergence_time(np.asarray(run["curve"]), run["final_level"])
    return int(len(run["curve"]) if reach is None else reach)


def run_preset(
    preset: str | Preset,
    *,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    seeds: int | None = None,
    **_: Any,
) -> dict[str, Any]:
    """QL and the perfect DT-QL first (QL's time to its final level sets each seed's T_c), then
    every construction, schedule and calibration variant on the same seeds."""
    p = PRESETS[preset] if isinstance(preset, str) else preset
    if seeds is not None:
        p = replace(p, seeds=seeds)
    horizon = _horizon()
    seed_list = [int(np.random.SeedSequence([seed, s]).generate_state(1)[0])
                 for s in range(p.seeds)]  # fmt: skip
    kw = {"workers": workers, "progress": progress}
    first = [
        ("physical", 0.0, PHYSICAL, 0),
        ("construction", 0.0, replace(ASSISTED, label=construction_label(0)), 0),
    ]
    runs = list(run_jobs(run_job, _jobs(p, first, seed_list), **kw))  # type: ignore[arg-type]
    reach = {r["seed"]: ql_reach(r) for r in runs if r["part"] == "physical"}
    jobs: list[ConstructionJob] = []
    for s in seed_list:
        per_seed = [("construction", f, replace(ASSISTED, label=construction_label(f), fidelity=(
            ("ready_after", round(f * reach[s]) * horizon),)), 0)
            for f in p.fractions if f > 0]  # fmt: skip
        jobs += _jobs(p, per_seed, [s])
    jobs += _jobs(p, schedule_variants(p, horizon), seed_list)
    calibrated = [("calibration", float(n), replace(ASSISTED, label=calibration_label(n)),
                   n * horizon) for n in p.calibration_episodes]  # fmt: skip
    jobs += _jobs(p, calibrated, seed_list)
    runs += run_jobs(run_job, jobs, **kw)  # type: ignore[arg-type]
    order = {lb: i for i, lb in enumerate(labels(p))}
    runs.sort(key=lambda r: (order[r["label"]], seed_list.index(r["seed"])))
    return {
        "preset": {**asdict(p), "name": preset if isinstance(preset, str) else "custom"},
        "seed": seed,
        "horizon": horizon,
        "ql_reach": {str(s): reach[s] for s in seed_list},
        "design": {
            "physical": PHYSICAL.label,
            "assisted": ASSISTED.label,
            "start_below": START_BELOW,
            "labels": labels(p),
        },
        "runs": runs,
    }


def construction_label(fraction: float) -> str:
    return "T_c = 0 (perfect twin)" if fraction == 0 else f"T_c = {fraction:.0%} of QL's time"


def calibration_label(episodes: int) -> str:
    return f"calibrated after {episodes} episodes"


SCHEDULES = ("early (noisy)", "wait (accurate)", "start_below")


def schedule_variants(p: Preset, horizon: int) -> list[tuple[str, float, Variant, int]]:
    """A twin whose bias shrinks to 0 over ``improve_episodes``: used at once, awaited, or started
    once its measured error is at most :data:`START_BELOW`."""
    steps = p.improve_episodes * horizon
    building = (("bias", {"ap_rates": p.bias}), ("improve_over", steps))
    return [
        ("schedule", 0.0, replace(ASSISTED, label=SCHEDULES[0], fidelity=building), 0),
        ("schedule", 1.0, replace(ASSISTED, label=SCHEDULES[1],
                                  fidelity=(("ready_after", steps),)), 0),
        ("schedule", 2.0, replace(ASSISTED, label=SCHEDULES[2], fidelity=building,
                                  start_below=START_BELOW), 0),
    ]  # fmt: skip


def labels(p: Preset) -> list[str]:
    """Every variant's label, in report order."""
    return [PHYSICAL.label, *(construction_label(f) for f in p.fractions), *SCHEDULES,
            *(calibration_label(n) for n in p.calibration_episodes)]  # fmt: skip


__all__ = ["PRESETS", "Preset", "run_preset"]
