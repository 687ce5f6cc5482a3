"""When does building a twin pay off once its construction time counts? The ``construction``
experiment (issue 11, item 5; paper 000, Section V-B "Extra Training Delay of DT Construction").

Three case studies with the ``fidelity`` study's learners, per seed on the same env and agent
seeds: access-point selection (QL vs DT-QL n = 5, the ``fig4`` agent), edge scheduling (order
formulation, QL vs DTEQL through :func:`twinrl.train` on one task instance per seed, as
:func:`~twinrl.experiments.fidelity_study.run_edge_job`) and multi-UAV (DQL vs DT-DQL k = 5,
m = 4; torch extra). The twin is usable only after T_c physical steps; until then the
twin-assisted learner learns physically, and those steps are on the same clock as the physical
learner's, so "physical time to converge" counts the construction. Four parts per case study:

* ``construction``: T_c at fractions of the same seed's physical-only time to converge
  (:attr:`CaseSize.fractions`), a perfect twin once built.
* ``schedule``: a twin whose model bias (:attr:`Study.field`) shrinks to 0 while it is built
  (``improve_over``), used (a) at once, (b) only once accurate (``ready_after``, no bias) or (c)
  from the fidelity-triggered start (``start_below``, the fidelity study's threshold).
* ``calibration``: the twin is built from the first n physical episodes of the same run
  (:func:`~twinrl.twin.calibrator_for`), then used with the estimated parameters.
* ``recalibration``: the schedule's biased twin, used from T_c = 0, recalibrating online from the
  physical transitions it mirrors every ``Case.recalibrate_every`` steps
  (:class:`~twinrl.twin.Recalibration`): built while used rather than from a fixed data set.

:mod:`twinrl.experiments.construction_report` computes the paired differences and writes the
report.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np

from twinrl.algorithms import Streams, build_algorithm
from twinrl.errors import ConfigError
from twinrl.experiments import ap_figures, episodic, metrics, uav_runs
from twinrl.experiments.construction_design import (
    EDGE_ID,
    NOT_BUILT,
    PRESETS,
    STUDIES,
    CaseSize,
    EdgeSize,
    Preset,
    Study,
    _Size,
    calibration_label,
    construction_label,
    labels,
    recalibration_variant,
    schedule_variants,
)
from twinrl.experiments.episodic import EpisodicJob, Variant
from twinrl.experiments.fidelity_study import (
    EdgeJob,
    _episodic_outcomes,
    edge_instance,
    run_edge_job,
)
from twinrl.experiments.parallel import run_jobs
from twinrl.training import train
from twinrl.twin import calibrator_for


def horizon(study: Study) -> int:
    """Physical steps per episode (edge scheduling: 1, the order formulation)."""
    if study.env_id == EDGE_ID:
        return 1
    env = gym.make(study.env_id, **dict(study.env_kwargs))
    return int(env.unwrapped.episode_steps)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ConstructionJob:
    """One run: an episodic or edge job, optionally with its twin calibrated from its first
    ``calibrate_steps`` physical steps (0: the variant's fidelity as given)."""

    job: EpisodicJob | EdgeJob
    part: str
    level: float
    calibrate_steps: int = 0
    window: int = 50
    """Moving-average window of the curve (episodes)."""
    case: str = "ap"


def calibrate(job: EpisodicJob | EdgeJob, steps: int, case: str = "ap") -> dict[str, Any]:
    """The twin model a :class:`~twinrl.twin.Calibrator` estimates from the first ``steps``
    physical transitions of ``job``'s run: before the twin is built, the twin-assisted learner
    learns exactly as the physical-only one does (tested), so these are its first transitions
    on the same seeds."""
    study = STUDIES[case]
    if isinstance(job, EdgeJob):
        tasks, _, _, run_seed = edge_instance(job)
        env: gym.Env[Any, Any] = gym.make(EDGE_ID, n_tasks=job.n)
        recorder = _Recorder(env, calibrator_for(env))
        agent, _ = build_algorithm(study.physical.algorithm, recorder, run_seed, n_trials=job.phi)
        train(recorder, agent, budget=steps, seed=run_seed, reset_options={"tasks": tasks},
              evaluate=False)  # fmt: skip
    else:
        env = episodic.build_env(job.env_id, dict(job.env_kwargs), study.physical)
        recorder = _Recorder(env, calibrator_for(env))
        agent, _ = build_algorithm(study.physical.algorithm, recorder, job.seed,
                                   agent_config=dict(job.agent_config))  # fmt: skip
        train(recorder, agent, budget=steps, seed=Streams.from_seed(job.seed).env_seed,
              evaluate=False)  # fmt: skip
    return recorder.calibrator.estimate()


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
    """One run's outcomes (those of the fidelity study), with its part, level, T_c and case."""
    job, extra = cj.job, dict[str, Any]()
    if cj.calibrate_steps:
        try:
            model = calibrate(job, cj.calibrate_steps, cj.case)
        except ConfigError as exc:  # e.g. some AP delivered nothing yet: no twin can be built
            model, extra["not_built"] = None, str(exc)
        ready = cj.calibrate_steps if model is not None else NOT_BUILT
        fidelity = (("model", model),) if model is not None else ()
        job = replace(job, variant=replace(
            job.variant, fidelity=(*fidelity, ("ready_after", ready))))  # fmt: skip
        extra["model"] = model
    if isinstance(job, EdgeJob):
        outcomes = run_edge_job(job)
    else:
        run = episodic.run_episodic(job)
        outcomes = _episodic_outcomes(run, cj.window)
        if job.variant.recalibrate:
            extra["recalibrations"] = run["recalibrations"]
    fid = dict(job.variant.fidelity)
    return {
        **outcomes,
        "part": cj.part,
        "level": cj.level,
        "ready_after": int(fid.get("ready_after", 0)),
        "start_below": job.variant.start_below,
        **extra,
        "case": cj.case,
    }


# --- the jobs --------------------------------------------------------------------------------------


def _jobs(
    name: str,
    size: CaseSize,
    variants: list[tuple[str, float, Variant, int]],
    seeds: list[int],
    seed: int,
) -> list[ConstructionJob]:
    """One job per variant and seed (edge scheduling: per task instance of study seed
    ``seed``)."""
    study = STUDIES[name]
    out = []
    for part, level, v, calibrate_steps in variants:
        for s in seeds:
            if isinstance(size, EdgeSize):
                job: EpisodicJob | EdgeJob = EdgeJob(
                    v, s, size.n_tasks, size.phi, _edge_budget(size, v), size.eval_every, seed
                )
            else:
                job = EpisodicJob(study.env_id, study.env_kwargs, v, s, size.episodes,
                                  _agent(name, size), size.eval_episodes)  # fmt: skip
            out.append(ConstructionJob(job, part, level, calibrate_steps, size.window, name))
    return out


def _edge_budget(size: EdgeSize, v: Variant) -> int:
    """The physical learner's budget; a twin-assisted run stops :attr:`EdgeSize.settle`
    iterations after its twin is built and improved (a recalibrating twin: after its first
    re-estimate)."""
    if v.algorithm == STUDIES["edge"].physical.algorithm:
        return size.episodes
    fid, recalibrate = dict(v.fidelity), dict(v.recalibrate)
    built = int(fid.get("ready_after", 0)) + int(fid.get("improve_over", 0))
    return min(size.episodes, built + int(recalibrate.get("every", 0)) + size.settle)


def _agent(name: str, size: CaseSize) -> tuple[tuple[str, Any], ...]:
    if name == "uav":
        steps = horizon(STUDIES["uav"])
        config = uav_runs.agent_config(uav_runs.Preset(size.episodes, size.seeds), steps)
        return tuple(sorted(config.items()))
    return tuple(sorted(ap_figures.AGENT.items()))


def physical_time(run: dict[str, Any], budget: int) -> int:
    """The physical-only learner's time to converge (at most the budget): episodes until its
    smoothed curve stays at its own final level, or edge iterations to the exact optimum."""
    if "convergence" in run:
        reach = run["convergence"]
    else:
        reach = metrics.convergence_time(np.asarray(run["curve"]), run["final_level"])
    return int(budget if reach is None else reach)


def _seeds(name: str, size: CaseSize, seed: int) -> list[int]:
    if name == "edge":
        return list(range(size.seeds))
    return [int(np.random.SeedSequence([seed, s]).generate_state(1)[0]) for s in range(size.seeds)]


def _later(
    name: str, size: CaseSize, reach: dict[int, int], seeds: list[int], seed: int
) -> list[ConstructionJob]:
    """Every job after the physical learner and the perfect twin: construction times (per seed,
    from its physical time), schedules, calibration budgets and online recalibration."""
    study, steps = STUDIES[name], horizon(STUDIES[name])
    physical = study.physical.label
    jobs: list[ConstructionJob] = []
    for s in seeds:
        per_seed = [("construction", f, replace(
            study.assisted, label=construction_label(f, physical),
            fidelity=(("ready_after", round(f * reach[s]) * steps),)), 0)
            for f in size.fractions if f > 0]  # fmt: skip
        jobs += _jobs(name, size, per_seed, [s], seed)
    jobs += _jobs(name, size, schedule_variants(size, steps, study), seeds, seed)
    calibrated = [("calibration", float(n), replace(study.assisted, label=calibration_label(
        n, study.unit)), n * steps) for n in size.calibration_episodes]  # fmt: skip
    jobs += _jobs(name, size, calibrated, seeds, seed)
    jobs += _jobs(name, size, [recalibration_variant(size, study)], seeds, seed)
    return jobs


# --- the experiment --------------------------------------------------------------------------------


def run_preset(
    preset: str | Preset,
    *,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    seeds: int | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Per case study, the physical-only learner and the perfect twin first (the physical
    learner's time to converge sets each seed's T_c), then every construction, schedule,
    calibration and recalibration variant on the same seeds. The multi-UAV study runs only in a
    preset that sizes it and with torch installed; else ``skipped`` says why."""
    p = PRESETS[preset] if isinstance(preset, str) else preset
    if seeds is not None:
        p = Preset(_with_seeds(p.ap, seeds), _with_seeds(p.edge, seeds), _with_seeds(p.uav, seeds))
    sizes = {n: s for n, s in asdict_shallow(p).items() if s is not None}
    skipped = {}
    if p.uav is None:
        skipped["uav"] = "not sized in this preset: Preset.uav is None"
    elif importlib.util.find_spec("torch") is None:  # pragma: no cover - the torch extra
        skipped["uav"] = 'needs torch: pip install -e ".[torch]"'
        del sizes["uav"]
    order: list[str] = [n for n in ("uav", "ap", "edge") if n in sizes]  # longest runs first
    seed_lists = {n: _seeds(n, sizes[n], seed) for n in order}
    kw = {"workers": workers, "progress": progress}
    first = [job for n in order for job in _jobs(n, sizes[n], [
        ("physical", 0.0, STUDIES[n].physical, 0),
        ("construction", 0.0, replace(STUDIES[n].assisted, label=construction_label(0)), 0),
    ], seed_lists[n], seed)]  # fmt: skip
    runs = list(run_jobs(run_job, first, **kw))  # type: ignore[arg-type]
    reach = {n: {r["seed"]: physical_time(r, sizes[n].episodes) for r in runs
                 if r["case"] == n and r["part"] == "physical"} for n in order}  # fmt: skip
    later = [job for n in order for job in _later(n, sizes[n], reach[n], seed_lists[n], seed)]
    runs += run_unique(later, **kw)
    cases = {n: _case_summary(n, sizes[n], reach[n], seed_lists[n], runs)
             for n in STUDIES if n in sizes}  # fmt: skip
    return {
        "preset": {**asdict(p), "name": preset if isinstance(preset, str) else "custom"},
        "seed": seed,
        "cases": cases,
        "skipped": skipped,
    }


def run_unique(jobs: list[ConstructionJob], **kw: Any) -> list[dict[str, Any]]:
    """:func:`run_job` for each job, in order, running each distinct run once: variants that
    differ only in their label (e.g. waiting for a twin built over as many steps as a T_c
    fraction gives) are the same deterministic run, so one result serves each label."""
    first: dict[str, ConstructionJob] = {}
    for cj in jobs:
        first.setdefault(_run_key(cj), cj)
    done = {(r["case"], r["label"], r["seed"]): r
            for r in run_jobs(run_job, list(first.values()), **kw)}  # fmt: skip
    out = []
    for cj in jobs:
        ran = first[_run_key(cj)]
        seed = ran.job.instance if isinstance(ran.job, EdgeJob) else ran.job.seed
        result = done[(ran.case, ran.job.variant.label, seed)]
        out.append(result if ran is cj else
                   {**result, "label": cj.job.variant.label, "part": cj.part, "level": cj.level})  # fmt: skip
    return out


def _run_key(cj: ConstructionJob) -> str:
    unlabelled = replace(cj.job, variant=replace(cj.job.variant, label=""))
    return repr((cj.case, unlabelled, cj.calibrate_steps, cj.window))


def _with_seeds(size: _Size | None, seeds: int) -> _Size | None:
    return None if size is None else replace(size, seeds=seeds)


def asdict_shallow(p: Preset) -> dict[str, CaseSize | None]:
    """The preset's case sizes by case study name (not converted to dicts)."""
    return {"ap": p.ap, "edge": p.edge, "uav": p.uav}


def _case_summary(
    name: str, size: CaseSize, reach: dict[int, int], seeds: list[int], runs: list[dict[str, Any]]
) -> dict[str, Any]:
    """One case study's runs in report order (label, then seed) and its design."""
    study = STUDIES[name]
    order = {lb: i for i, lb in enumerate(labels(size, study))}
    mine = [{k: v for k, v in r.items() if k != "case"} for r in runs if r["case"] == name]
    mine.sort(key=lambda r: (order[r["label"]], seeds.index(r["seed"])))
    return {
        "horizon": horizon(study),
        "physical_reach": {str(s): reach[s] for s in seeds},
        "design": {
            "physical": study.physical.label,
            "assisted": study.assisted.label,
            "unit": study.unit,
            "field": study.field,
            "bias": size.bias,
            "start_below": study.case.start_below,
            "recalibrate_every": study.case.recalibrate_every,
            "labels": labels(size, study),
        },
        "runs": mine,
    }


__all__ = ["PRESETS", "STUDIES", "CaseSize", "EdgeSize", "Preset", "Study", "run_preset"]
