"""The runs of the ``adaptation`` experiment (its design: :mod:`.adaptation_design`; its report:
:mod:`.adaptation_report`). One job is one arm on one seed of one part."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from twinrl.adaptation import ScenarioAdaptation
from twinrl.agents import QLearning, QLearningConfig
from twinrl.contract import Scenario, ScenarioChange
from twinrl.envs import ScenarioSampler
from twinrl.experiments.adaptation_design import (
    AGENT,
    BANDWIDTH,
    CHANGE_ARMS,
    CHANGE_FAIL,
    ENV_ID,
    EVAL_EPISODES,
    HELD_OUT_ARMS,
    HELD_OUT_FAIL,
    PRESETS,
    REPLAY,
    PartSize,
)
from twinrl.experiments.episodic import evaluation_seed, greedy_returns
from twinrl.experiments.parallel import run_jobs
from twinrl.storage import Storage
from twinrl.training import Run, pretrain_in_twin, train
from twinrl.twin import DigitalTwin


@dataclass(frozen=True)
class AdaptationJob:
    """One arm of one part on one seed."""

    part: str
    """``"held-out"`` or ``"change"``."""
    label: str
    seed: int
    size: PartSize


def scenarios_of(seed: int, size: PartSize) -> dict[str, Any]:
    """The seed's scenarios: ``sampled`` (pre-training), ``target`` (held out: a later draw of
    the same sampler) and ``new`` (the mid-run change, from a stream of its own)."""
    sampler = ScenarioSampler(ENV_ID, seed=seed, fail_prob=HELD_OUT_FAIL)
    sampled = sampler.sample(size.scenarios)
    target = sampler.sample()
    new = ScenarioSampler(ENV_ID, seed=seed + 1, fail_prob=CHANGE_FAIL).sample()
    return {"base": sampler.base, "sampled": sampled, "target": target, "new": new}


def _agent(seed: int) -> QLearning:
    env = gym.make(ENV_ID)
    n_states, n_actions = int(env.observation_space.n), int(env.action_space.n)  # type: ignore[attr-defined]
    stream = np.random.SeedSequence([seed, 2])
    return QLearning(n_states, n_actions, QLearningConfig(**AGENT), rng=stream)


def _env(scenario: Scenario) -> gym.Env[Any, Any]:
    env = gym.make(ENV_ID)
    env.unwrapped.set_scenario(scenario)  # type: ignore[attr-defined]
    return env


class _Curve:
    """The greedy policy's mean reward per task on the physical system, in the physical env's
    current scenario, every ``every`` physical episodes (a ``train`` callback); ``offset``
    episodes already ran in an earlier phase."""

    def __init__(self, env: gym.Env[Any, Any], every: int, seed: int, offset: int = 0) -> None:
        self.env, self.every, self.offset = env, every, offset
        self.judge = gym.make(ENV_ID)
        self.seed = evaluation_seed(seed)
        self.done = 0
        self.points: list[tuple[int, float]] = []

    def evaluate(self, agent: Any, episode: int) -> None:
        self.judge.unwrapped.set_scenario(self.env.unwrapped.scenario)  # type: ignore[attr-defined]
        value = float(np.mean(greedy_returns(self.judge, agent, EVAL_EPISODES, seed=self.seed)))
        self.points.append((episode, value))

    def __call__(self, i: int, run: Run) -> None:
        if run.episodes != self.done and run.episodes % self.every == 0:
            self.done = run.episodes
            self.evaluate(run.agent, self.offset + run.episodes)


class _Replay:
    """After every physical step, the agent learns from ``REPLAY`` transitions of the storage
    space, drawn uniformly or near the physical env's current scenario."""

    def __init__(self, storage: Storage, env: gym.Env[Any, Any], aware: bool) -> None:
        self.storage, self.env, self.aware = storage, env, aware

    def __call__(self, i: int, run: Run) -> None:
        near = self.env.unwrapped.scenario if self.aware else None  # type: ignore[attr-defined]
        run.agent.learn(self.storage.sample(REPLAY, near=near, bandwidth=BANDWIDTH))


def _both(*callbacks: Any) -> Any:
    def call(i: int, run: Run) -> None:
        for cb in callbacks:
            cb(i, run)

    return call


def _steps(episodes: int) -> int:
    return episodes * int(gym.make(ENV_ID).unwrapped.params.n_steps)  # type: ignore[attr-defined]


def run_held_out(job: AdaptationJob) -> dict[str, Any]:
    """Prepare the agent as the arm says, then learn physically on the held-out scenario."""
    size, s = job.size, job.seed
    sc = scenarios_of(s, size)
    agent, twin_steps, prior = _agent(s), 0, 0
    if job.label == "fine-tune":  # the previous deployment, in the base scenario, no twin
        train(_env(sc["base"]), agent, budget=_steps(size.before), seed=s, evaluate=False)
        prior = _steps(size.before)
    elif job.label.startswith("twin"):
        chosen = sc["sampled"] if job.label == "twin: sampled" else [sc["target"]]
        twin = DigitalTwin(_env(sc["base"]))
        pretrain_in_twin(twin, agent, budget=size.twin_steps, seed=s + 1, scenarios=chosen,
                         evaluate=False)  # fmt: skip
        twin_steps = size.twin_steps
    env = _env(sc["target"])
    curve = _Curve(env, size.eval_every, s)
    curve.evaluate(agent, 0)  # the jump-start: before any physical step on the new scenario
    train(env, agent, budget=_steps(size.episodes), seed=s + 2, evaluate=False, callback=curve)
    return _result(job, curve, twin_steps, prior, sc["target"].distance(sc["base"]))


def run_change(job: AdaptationJob) -> dict[str, Any]:
    """Learn physically in the base scenario; the network changes to ``new`` after
    ``size.before`` episodes; the arm copes as it says."""
    size, s = job.size, job.seed
    sc = scenarios_of(s, size)
    env, agent = _env(sc["base"]), _agent(s)
    at = _steps(size.before) + 1
    total = _steps(size.before + size.episodes)
    curve = _Curve(env, size.eval_every, s)
    curve.evaluate(agent, 0)
    if job.label == "scratch":
        train(env, agent, budget=at - 1, seed=s, evaluate=False, callback=curve)
        env.unwrapped.set_scenario(sc["new"])  # type: ignore[attr-defined]
        agent, curve.offset, curve.done = _agent(s + 7), size.before, 0
        train(env, agent, budget=total - at + 1, seed=s + 3, evaluate=False, callback=curve)
        return _result(job, curve, 0, 0, sc["new"].distance(sc["base"]))
    adapt, storage, callback = None, None, curve
    if job.label.startswith("twin"):
        storage = Storage(total + size.twin_steps, 1, seed=s) if "replay" in job.label else None
        adapt = ScenarioAdaptation(size.twin_steps, seed=s + 1, storage=storage)
    if storage is not None:
        callback = _both(_Replay(storage, env, "aware" in job.label), curve)
    train(env, agent, budget=total, seed=s, evaluate=False, callback=callback, storage=storage,
          assists=[adapt] if adapt else [], changes=[ScenarioChange(at, sc["new"])])  # fmt: skip
    twin_steps = adapt.twin_steps if adapt else 0
    out = _result(job, curve, twin_steps, 0, sc["new"].distance(sc["base"]))
    out["detected_at"] = adapt.detections if adapt else []
    return out


def _result(
    job: AdaptationJob, curve: _Curve, twin_steps: int, prior: int, distance: float
) -> dict[str, Any]:
    return {
        "part": job.part,
        "label": job.label,
        "seed": job.seed,
        "episodes": [e for e, _ in curve.points],
        "greedy": [v for _, v in curve.points],
        "twin_steps": twin_steps,
        "prior_physical_steps": prior,
        "scenario_distance": distance,
    }


def run_job(job: AdaptationJob) -> dict[str, Any]:
    """One arm on one seed."""
    return run_held_out(job) if job.part == "held-out" else run_change(job)


def seed_list(size: PartSize, seed: int) -> list[int]:
    """The run seeds, ``SeedSequence([seed, s])`` for s = 0..seeds-1 (as the episodic runs)."""
    return [int(np.random.SeedSequence([seed, s]).generate_state(1)[0]) % 2**31
            for s in range(size.seeds)]  # fmt: skip


def run_preset(
    preset: str | PartSize,
    *,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    seeds: int | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Every arm of both parts on the preset's seeds."""
    size = PRESETS[preset] if isinstance(preset, str) else preset
    if seeds is not None:
        size = PartSize(**{**asdict(size), "seeds": seeds})
    run_seeds = seed_list(size, seed)
    jobs = [AdaptationJob(part, label, s, size)
            for part, arms in (("change", CHANGE_ARMS), ("held-out", HELD_OUT_ARMS))
            for label in arms for s in run_seeds]  # fmt: skip
    runs = list(run_jobs(run_job, jobs, workers=workers, progress=progress,
                         desc="adaptation runs"))  # fmt: skip
    key = {(j.part, j.label, j.seed): i for i, j in enumerate(jobs)}
    runs.sort(key=lambda r: key[(r["part"], r["label"], r["seed"])])
    return {
        "preset": {**asdict(size), "name": preset if isinstance(preset, str) else "custom"},
        "seed": seed,
        "seeds": run_seeds,
        "runs": runs,
    }
