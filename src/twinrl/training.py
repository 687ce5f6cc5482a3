"""The training loop: act physically, sync the twin, let the assists use it, learn.

One function, readable top to bottom (DESIGN.md section 1). The budget counts physical iterations;
the twin's work is counted separately in :attr:`Run.twin_evaluations`, and the greedy evaluations
(:func:`greedy_return`) are not counted as twin work.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.agents.base import Agent, Transitions
from twinrl.assists.base import Assist, StepContext, Vetting
from twinrl.contract import Scenario, ScenarioChange
from twinrl.errors import ConfigError, ConfigTypeError, short_repr
from twinrl.resources import check_memory, history_bytes
from twinrl.resume import (
    Checkpointing,
    Cursor,
    RunParts,
    check_resumable,
    restore_run,
    save_run,
)
from twinrl.storage.replay import Storage
from twinrl.twin.digital_twin import DigitalTwin
from twinrl.twin.rollout import greedy_policy, rollout
from twinrl.validation import check_bool, check_float, check_int

MAX_BUDGET = 10**9
"""Most physical iterations of one run (its history holds a float per iteration and key)."""
EVAL_SHARE = 0.05
"""Default evaluation schedule: evaluate when one more evaluation keeps the evaluations' twin calls
within this share of the run's physical iterations plus twin calls. One twin call costs about one
physical iteration, but an evaluation also pays the policy's and the rollout's overhead, so 5% of
calls keeps the measured time overhead under 10% (``benchmarks/eval_overhead.py``)."""


@dataclass
class Run:
    """What a training run produced. ``history`` holds one value per physical iteration."""

    agent: Agent
    iterations: int
    episodes: int
    twin_evaluations: int
    wall_time: float
    history: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    episode_returns: list[float] = field(default_factory=list)
    """Undiscounted physical return of each finished episode."""
    episode_lengths: list[int] = field(default_factory=list)
    """Physical iterations of each finished episode (to split ``history`` by episode)."""
    eval_steps: int = 0
    """Twin steps spent on greedy evaluations (not part of ``twin_evaluations``)."""
    twin_started: int | None = None
    """First iteration at which the assists used the twin under ``start_below`` (None: that
    option was not used, or the twin never got accurate enough)."""
    twin_error: dict[str, float] = field(default_factory=dict)
    """Mean one-step prediction error of the twin per metric (``train``'s ``measure_fidelity``),
    over the steps it was measured."""
    storage: Storage | None = None
    """The run's storage space: the ``storage`` given to :func:`train`, else the agent's own
    replay storage (DQN), else None."""
    last_learn: dict[str, float] = field(default_factory=dict)
    """What the agent's ``learn`` returned for the last physical transition (e.g. its TD error
    or loss), for a ``callback`` that logs it."""
    scenario_changes: list[ScenarioChange] = field(default_factory=list)
    """The scenario changes applied (``train``'s ``changes``); ``history["scenario"]`` then holds,
    per iteration, how many had been applied (0: the env's own scenario)."""


def train(
    env: str | gym.Env[Any, Any],
    agent: Agent,
    *,
    budget: int,
    assists: Sequence[Assist] = (),
    twin: DigitalTwin | None = None,
    seed: int | None = None,
    reset_options: dict[str, Any] | None = None,
    evaluate: bool = True,
    eval_every: int | None = None,
    eval_steps: int = 1000,
    progress: bool = False,
    callback: Callable[[int, Run], None] | None = None,
    track_info: Sequence[str] = (),
    max_episodes: int | None = None,
    storage: Storage | None = None,
    measure_fidelity: bool | None = None,
    start_below: float | None = None,
    checkpoint: Checkpointing | None = None,
    resume_from: Mapping[str, NDArray[Any]] | None = None,
    changes: Sequence[ScenarioChange] = (),
) -> Run:
    """Train ``agent`` for ``budget`` physical iterations with the given assists.

    Args:
        env: a gymnasium env or a registered id such as ``"twinrl/EdgeScheduling-v0"``.
        agent: any :class:`~twinrl.agents.Agent`.
        budget: number of physical iterations (env steps).
        assists: assists that use the digital space after each physical step.
        twin: the digital space; built from ``env`` when an assist or the evaluation needs one.
        seed: seed of the first ``env.reset``.
        reset_options: options of every ``env.reset`` (e.g. a fixed task set).
        evaluate: roll the greedy policy out in the twin from the current episode's start state and
            record its return in ``history["greedy_return"]`` (the last evaluated value between
            evaluations).
        eval_every: evaluate after every ``eval_every``-th iteration; None (default): when one more
            evaluation keeps the evaluations' twin calls within :data:`EVAL_SHARE` of the
            iterations plus twin calls so far (often for DTEQL, every 20th iteration for one-step
            physical-only Q-learning, rarely for long episodes).
        eval_steps: most twin steps of one evaluation episode.
        progress: show a progress bar.
        callback: called as ``callback(iteration, run)`` after each iteration.
        track_info: numeric ``info`` entries of the physical step to record in ``history`` (e.g.
            ``("failed",)``); a missing entry is recorded as NaN.
        max_episodes: stop after this many finished episodes (``budget`` still caps the
            iterations; ``history`` is cut to the iterations run).
        storage: the storage space (paper 000, Section II-A): every transition the physical agent
            learns from, physical (source 0) and twin (the assists' domains 1..K), is added to it
            in the order the agent learns it (:attr:`Run.storage`).
        measure_fidelity: record the twin's one-step prediction error on every physical step
            once the twin is built (``history["twin_reward_error"]``, ``"twin_obs_error"``,
            ``"twin_terminated_error"`` and one per declared ``twin_info_keys`` entry, NaN before;
            means in :attr:`Run.twin_error`); None (default): when the twin is imperfect.
        start_below: when to start using the twin (paper 000, Section V-B): the assists stay off
            until the twin's mean one-step reward error over the last :data:`START_WINDOW`
            physical steps is at most this (the twin is mirrored and measured meanwhile);
            :attr:`Run.twin_started` records the iteration. None: as soon as it is built.
        checkpoint: write a resume checkpoint after every ``checkpoint.every``-th iteration
            (:class:`~twinrl.resume.Checkpointing`; every piece of state, see
            :mod:`twinrl.resume`). Refused up front (``ConfigError``) for an env without a
            ``get_state()`` dataclass, an assist without ``state_dict()``, or an imperfect twin.
        resume_from: the arrays of such a checkpoint (:func:`~twinrl.resume.load_resume`): the
            run continues after the checkpoint's iteration, built with the same arguments as the
            run that wrote it, and ends exactly as that run would have (``history``, episodes,
            twin work), bit for bit; only :attr:`Run.wall_time` differs.
        changes: scenario changes of the physical network (paper 000, Section III-C): before
            iteration ``change.step`` the env switches to ``change.scenario``
            (``env.unwrapped.set_scenario``), so that step and the later ones run under it;
            recorded in :attr:`Run.scenario_changes`, and the storage space tags the transitions
            added from then on with the new scenario. Steps must increase and be <= ``budget``.
    """
    track_info = _check_args(budget, max_episodes, evaluate, eval_every, eval_steps, track_info)
    if measure_fidelity is not None:
        check_bool("measure_fidelity", measure_fidelity)
    if checkpoint is not None and not isinstance(checkpoint, Checkpointing):
        raise ConfigTypeError(f"checkpoint must be a Checkpointing, got {short_repr(checkpoint)}")
    if resume_from is not None and not isinstance(resume_from, Mapping):
        raise ConfigTypeError(
            f"resume_from must be the arrays of load_resume(path), got {short_repr(resume_from)}"
        )
    if start_below is not None and measure_fidelity is False:
        raise ConfigError("start_below needs the fidelity metric; drop measure_fidelity=False")
    if measure_fidelity and not assists:
        raise ConfigError(
            "measure_fidelity needs assists: the twin mirrors the physical state only for them"
        )
    check_memory(history_bytes(budget, 2 + len(track_info) + evaluate), "the history", "budget")
    env = gym.make(env) if isinstance(env, str) else env
    pending = _check_changes(changes, budget, env)
    if pending and (checkpoint is not None or resume_from is not None):
        raise ConfigError(
            "changes cannot be combined with checkpoint or resume_from yet: a resume checkpoint "
            "does not hold the scenario changes applied so far"
        )
    # the digital space, when an assist or the evaluation needs one (never None where used);
    # policies are judged on the physical system's own dynamics, never in an imperfect twin
    digital = cast(DigitalTwin, twin or (DigitalTwin(env) if assists or evaluate else None))
    judge = digital if twin is None or twin.fidelity.perfect else DigitalTwin(env)
    for bind in (getattr(a, "bind", None) for a in assists):  # assists check env and twin first
        if callable(bind):
            bind(env, digital)
    gate = _StartGate(start_below)
    measure = bool(assists) and (
        measure_fidelity
        if measure_fidelity is not None
        else not digital.fidelity.perfect or start_below is not None
    )
    route = _route(agent, storage)
    errors = _error_keys(env) if measure else ()
    log = _Log(Run(agent, 0, 0, 0, 0.0, storage=_storage_space(agent, storage)),
               budget, (*track_info, *errors), evaluate)  # fmt: skip
    vetters = [a for a in assists if isinstance(a, Vetting)]  # once: a protocol check is slow
    obs, info = env.reset(seed=seed, options=reset_options)
    start = _episode_start(obs, info, judge if evaluate else None, env)
    fresh, last_action = True, None
    parts = RunParts(env, agent, assists, digital, storage, log, gate)
    if checkpoint is not None:
        check_resumable(parts)  # before any work: refuse what cannot be saved
    first = 1
    if resume_from is not None:
        at = restore_run(resume_from, parts)
        obs, info, start, fresh, last_action = at.obs, at.info, at.start, at.fresh, at.last_action
        first = at.iteration + 1
    _tag_scenario(storage, env)
    for i in _progress(range(first, budget + 1), progress):
        if i in pending:  # the physical network changes scenario from this step on
            cast(Any, env.unwrapped).set_scenario(pending[i].scenario)
            log.run.scenario_changes.append(pending[i])
            _tag_scenario(storage, env)
        # 1. the physical agent proposes; the identical domain mirrors s_t (once the twin is
        #    built); a vetting assist (SafeExploration) may replace a risky action
        if hasattr(agent, "begin_iteration"):
            agent.begin_iteration(i)
        mask = info.get("action_mask")
        use_twin = bool(assists) and digital.ready(i)
        if use_twin:
            digital.mirror(env, i, episode_start=fresh, action=last_action)
        helps = use_twin and gate.open
        ctx = StepContext(i, obs, mask, agent.act(obs, explore=True, mask=mask), digital, route)
        for vetting in vetters if helps else ():
            ctx = replace(ctx, action=vetting.vet(ctx, agent))
        # 2. act in the physical space and learn from it; 3. the assists use the digital space
        next_obs, reward, terminated, truncated, next_info = env.step(ctx.action)
        learned = route(Transitions.single(obs, ctx.action, float(reward), next_obs, terminated,
                                           next_info.get("action_mask")))  # fmt: skip
        log.run.last_learn = learned if isinstance(learned, dict) else {}
        ctx = replace(ctx, info=next_info)
        for assist in assists if helps else ():
            assist.after_step(ctx, agent)
        # 4. bookkeeping: history, the twin's one-step error, episode ends, the evaluation
        if measure and use_twin:
            error = digital.one_step_error(ctx.action, next_obs, float(reward), terminated,
                                           next_info)  # fmt: skip
            next_info = {**next_info, **{f"twin_{k}_error": v for k, v in error.items()}}
            if gate.update(error["reward"]):
                log.run.twin_started = i + 1
        if use_twin:  # after the error: the metric judges the model before it saw this step
            digital.observe(env, ctx.action, next_info)
        log.step(i, float(reward), agent, next_info)
        fresh, last_action = terminated or truncated, ctx.action
        if fresh:
            log.episode_end(i)
            obs, info = env.reset(options=reset_options)
            capture = evaluate and log.may_evaluate(i, digital.calls, eval_every)
            start = _episode_start(obs, info, judge if capture else None, env)
        else:
            obs, info = next_obs, next_info
        if evaluate and log.due(i, digital.calls, eval_every):
            start = log.evaluate(i, judge, agent, start, env, eval_steps)
        if callback is not None:
            callback(i, log.run)
        if checkpoint is not None and i % checkpoint.every == 0 and i < budget:
            save_run(checkpoint, Cursor(i, obs, info, start, fresh, last_action), parts)
        if max_episodes is not None and log.run.episodes >= max_episodes:
            break
    return log.finish(digital)


START_WINDOW = 20
"""Physical steps over which ``start_below`` averages the twin's one-step reward error."""


class _StartGate:
    """Opens, for good, once the mean of the last :data:`START_WINDOW` errors is at most
    ``threshold`` (always open without a threshold)."""

    def __init__(self, threshold: float | None) -> None:
        if threshold is not None:
            threshold = check_float("start_below", threshold, 0.0, math.inf)
        self.threshold = threshold
        self.open = threshold is None
        self.errors: deque[float] = deque(maxlen=START_WINDOW)

    def update(self, error: float) -> bool:
        """Record one error; True when this opens the gate."""
        if self.open:
            return False
        self.errors.append(error)
        full = len(self.errors) == START_WINDOW
        self.open = full and sum(self.errors) / START_WINDOW <= cast(float, self.threshold)
        return self.open


def pretrain_in_twin(
    twin: DigitalTwin,
    agent: Agent,
    *,
    budget: int,
    seed: int | None = None,
    scenarios: Sequence[Scenario] = (),
    **train_args: Any,
) -> Run:
    """Pre-train ``agent`` in the digital space only (paper 000, Sections III-C and V-A: treat the
    twin and the physical network as similar MDPs, pre-train in the twin, fine-tune physically):
    :func:`train` on a private env that runs the twin's model (its parameters, not the physical
    env's). Continue with ``train(physical_env, agent, ...)``. The run's iterations are twin
    steps, not physical ones.

    With ``scenarios`` (e.g. from :class:`twinrl.envs.ScenarioSampler`), the agent pre-trains
    across twins of them (Section III-C: a jump-start for scenarios not seen yet): the model env
    runs each for an equal share of the budget, in order (:func:`train`'s ``changes``, at episode
    boundaries where the env has a fixed ``episode_steps``). A ``storage`` in ``train_args``
    keeps these transitions as twin data (domain 1), each tagged with its scenario."""
    env = twin.model_env()
    changes: list[ScenarioChange] = []
    if scenarios:
        if "changes" in train_args:
            raise ConfigError("give scenarios or changes to pretrain_in_twin, not both")
        if isinstance(scenarios, Scenario) or not all(isinstance(x, Scenario) for x in scenarios):
            raise ConfigTypeError(
                f"scenarios must be a sequence of Scenario, got {short_repr(scenarios)}"
            )
        if len(scenarios) > budget:
            raise ConfigError(f"{len(scenarios)} scenarios need a budget of at least as many steps")
        cast(Any, env.unwrapped).set_scenario(scenarios[0])
        unit = max(1, int(getattr(env.unwrapped, "episode_steps", 1)))
        starts = [
            1 + unit * round(k * budget / len(scenarios) / unit) for k in range(1, len(scenarios))
        ]
        if len(set(starts)) != len(starts) or (
            starts and not 1 < starts[0] <= starts[-1] <= budget
        ):
            raise ConfigError(
                f"budget={budget} is too small to give each of {len(scenarios)} scenarios at "
                f"least one episode of {unit} steps; raise the budget or give fewer scenarios"
            )
        changes = [ScenarioChange(step, sc) for step, sc in zip(starts, scenarios[1:], strict=True)]
    storage = train_args.get("storage")
    if storage is None:
        return train(env, agent, budget=budget, seed=seed, changes=changes, **train_args)
    if storage.n_domains < 2:
        raise ConfigError("pre-training stores twin data: give a Storage with n_twin_domains >= 1")
    with storage.stored_as(1):
        return train(env, agent, budget=budget, seed=seed, changes=changes, **train_args)


def _check_changes(
    changes: Sequence[ScenarioChange], budget: int, env: gym.Env[Any, Any]
) -> dict[int, ScenarioChange]:
    """``changes`` by step, checked: ScenarioChange items at increasing steps within the budget,
    on an env with ``set_scenario``."""
    if isinstance(changes, ScenarioChange) or not all(
        isinstance(c, ScenarioChange) for c in changes
    ):
        raise ConfigTypeError(
            f"changes must be a sequence of ScenarioChange, got {short_repr(changes)}"
        )
    steps = [c.step for c in changes]
    if steps != sorted(set(steps)) or (steps and steps[-1] > budget):
        raise ConfigError(
            f"changes must be at strictly increasing steps in [1, budget={budget}], got {steps}"
        )
    if changes and not callable(getattr(env.unwrapped, "set_scenario", None)):
        raise ConfigError(f"changes need an env with set_scenario(); {env.unwrapped} has none")
    return {c.step: c for c in changes}


def _tag_scenario(storage: Storage | None, env: gym.Env[Any, Any]) -> None:
    """Tell the storage space the scenario its next transitions come from (if the env has one)."""
    scenario = getattr(env.unwrapped, "scenario", None)
    if storage is not None and isinstance(scenario, Scenario):
        storage.set_scenario(scenario)


def _error_keys(env: gym.Env[Any, Any]) -> tuple[str, ...]:
    """History keys of the fidelity metric (:meth:`DigitalTwin.one_step_error`)."""
    keys = ("reward", "obs", "terminated", *getattr(env.unwrapped, "twin_info_keys", ()))
    return tuple(f"twin_{key}_error" for key in keys)


def _storage_space(agent: Agent, storage: Storage | None) -> Storage | None:
    """The run's storage space: the one given, else the agent's own replay storage (DQN)."""
    return storage if storage is not None else getattr(agent, "storage", None)


def _route(agent: Agent, storage: Storage | None) -> Callable[[Transitions], Any]:
    """The one path of every transition the physical agent learns from: into the run's storage
    space (when one is given), then to the agent."""

    def route(transitions: Transitions) -> Any:
        if storage is not None:
            storage.add(transitions)
        return agent.learn(transitions)

    return route


def greedy_return(
    twin: DigitalTwin,
    agent: Agent,
    obs: Any,
    mask: NDArray[np.int8] | None,
    state: Any,
    max_steps: int = 1000,
    *,
    steps: bool = False,
) -> Any:
    """Return of the greedy policy from ``state``, rolled out in the twin for at most
    ``max_steps`` steps or to the end of its episode (the physical env is not touched).
    Evaluation steps are not counted as twin work. With ``steps=True``: ``(return, twin steps)``."""
    policy = greedy_policy(agent)
    before = twin.evaluations, twin.calls
    out = rollout(twin, [state], policy([obs], [mask]), policy, horizon=max_steps)
    twin.evaluations, twin.calls = before
    value = float(out.returns[0])
    return (value, int(out.steps[0])) if steps else value


def _episode_start(
    obs: Any, info: dict[str, Any], twin: DigitalTwin | None, env: gym.Env[Any, Any]
) -> tuple[Any, Any, Any]:
    """Where the greedy evaluation of the current episode starts: ``(obs, mask, twin state)``."""
    return obs, info.get("action_mask"), twin.capture(env) if twin is not None else None


class _Log:
    """The run's bookkeeping: per-iteration history, episodes, the evaluation schedule."""

    def __init__(self, run: Run, budget: int, track_info: tuple[str, ...], evaluate: bool) -> None:
        self.run = run
        self.track_info = track_info
        keys = ("reward", "epsilon", *track_info, *(("greedy_return",) if evaluate else ()))
        self.history = run.history = {k: np.zeros(budget) for k in keys}
        self.episode_return, self.episode_first = 0.0, 1
        self.last_greedy = np.nan
        self.start_time = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds of training so far (over every session of a resumed run)."""
        return time.perf_counter() - self.start_time

    def resume_clock(self, elapsed: float) -> None:
        """Count ``elapsed`` seconds of earlier sessions in :meth:`elapsed`."""
        self.start_time = time.perf_counter() - elapsed

    def step(self, i: int, reward: float, agent: Agent, info: dict[str, Any]) -> None:
        self.episode_return += reward
        self.history["reward"][i - 1] = reward
        self.history["epsilon"][i - 1] = float(getattr(agent, "epsilon", np.nan))
        for key in self.track_info:
            self.history[key][i - 1] = float(info.get(key, np.nan))
        if "greedy_return" in self.history:
            self.history["greedy_return"][i - 1] = self.last_greedy
        self.run.iterations = i

    def episode_end(self, i: int) -> None:
        self.run.episodes += 1
        self.run.episode_returns.append(self.episode_return)
        self.run.episode_lengths.append(i - self.episode_first + 1)
        self.episode_return, self.episode_first = 0.0, i + 1

    def may_evaluate(self, i: int, twin_calls: int, every: int | None) -> bool:
        """Whether to capture the start state of the episode that begins after iteration ``i``:
        only when an evaluation may fall due during it (estimated as long as the last one, with
        twin calls growing at their rate so far), and never for one-step episodes, whose start
        is captured on demand. A wrong guess only moves an evaluation to a later episode. With a
        fixed ``every``, every start is captured, so no scheduled evaluation is skipped."""
        length = self.run.episode_lengths[-1]
        if length <= 1:
            return False
        if every is not None:
            return True
        end = i + length
        return self.run.eval_steps + length <= EVAL_SHARE * (end + twin_calls * end / i)

    def due(self, i: int, twin_calls: int, every: int | None) -> bool:
        """Whether to evaluate after iteration ``i`` (see ``train``'s ``eval_every``): every
        ``every`` iterations, or when one more evaluation, estimated as long as the last physical
        episode (the current one, before any has ended), keeps the evaluations within
        :data:`EVAL_SHARE` of the iterations plus twin calls so far."""
        if every is not None:
            return i % every == 0 or i == 1
        lengths = self.run.episode_lengths
        estimate = lengths[-1] if lengths else i - self.episode_first + 1
        return self.run.eval_steps + estimate <= EVAL_SHARE * (i + twin_calls)

    def evaluate(
        self,
        i: int,
        twin: DigitalTwin,
        agent: Agent,
        start: tuple[Any, Any, Any],
        env: Any,
        max_steps: int,
    ) -> tuple[Any, Any, Any]:
        """Record the greedy return from the current episode's start; returns that start (with its
        state, captured now for one-step episodes, where the env has just been reset)."""
        if start[2] is None and self.episode_first == i + 1:
            start = _episode_start(start[0], {"action_mask": start[1]}, twin, env)
        if start[2] is not None:
            value, steps = greedy_return(twin, agent, *start, max_steps=max_steps, steps=True)
            self.last_greedy = self.history["greedy_return"][i - 1] = value
            self.run.eval_steps += steps
        return start

    def finish(self, twin: DigitalTwin | None) -> Run:
        for key in self.history:
            self.history[key] = self.history[key][: self.run.iterations]
        if self.run.scenario_changes:
            steps = [c.step for c in self.run.scenario_changes]
            iterations = np.arange(1, self.run.iterations + 1)
            applied = np.searchsorted(steps, iterations, side="right")
            self.history["scenario"] = applied.astype(np.float64)
        self.run.twin_evaluations = twin.evaluations if twin is not None else 0
        self.run.wall_time = self.elapsed()
        for key, values in self.history.items():
            measured = values[np.isfinite(values)]
            if key.startswith("twin_") and key.endswith("_error") and measured.size:
                self.run.twin_error[key.removeprefix("twin_").removesuffix("_error")] = float(
                    measured.mean()
                )
        return self.run


def _check_args(
    budget: Any,
    max_episodes: Any,
    evaluate: Any,
    eval_every: Any,
    eval_steps: Any,
    track_info: Any,
) -> tuple[str, ...]:
    """Validate ``train``'s arguments (each error names the argument); the tracked info keys."""
    check_int("budget", budget, 1, MAX_BUDGET)
    check_int("eval_steps", eval_steps, 1, MAX_BUDGET)
    for label, value in (("max_episodes", max_episodes), ("eval_every", eval_every)):
        if value is not None:
            check_int(label, value, 1, MAX_BUDGET)
    check_bool("evaluate", evaluate)
    if (
        isinstance(track_info, str)
        or not isinstance(track_info, (list, tuple))
        or not all(isinstance(k, str) for k in track_info)
    ):
        raise ConfigTypeError(
            f"track_info must be a sequence of info key strings, e.g. ('failed',), "
            f"got {short_repr(track_info)}"
        )
    return tuple(track_info)


def _progress(iterable: range, enabled: bool) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc="physical iterations", unit="it", mininterval=0.5,
                initial=iterable.start - 1, total=iterable.stop - 1)  # fmt: skip
