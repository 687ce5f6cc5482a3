"""The training loop: act physically, sync the twin, let the assists use it, learn.

One function, readable top to bottom (DESIGN.md section 1). The budget counts physical iterations;
the twin's work is counted separately in :attr:`Run.twin_evaluations`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.agents.base import Agent, Transitions
from twinrl.assists.base import Assist, StepContext, Vetting
from twinrl.twin.digital_twin import DigitalTwin


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
    progress: bool = False,
    callback: Callable[[int, Run], None] | None = None,
    track_info: Sequence[str] = (),
    max_episodes: int | None = None,
) -> Run:
    """Train ``agent`` for ``budget`` physical iterations with the given assists.

    Args:
        env: a gymnasium env or a registered id such as ``"twinrl/EdgeScheduling-v0"``.
        agent: any :class:`~twinrl.agents.Agent`.
        budget: number of physical iterations (env steps).
        assists: assists that use the digital space after each physical step.
        twin: the digital space; built from ``env`` when an assist needs one.
        seed: seed of the first ``env.reset``.
        reset_options: options of every ``env.reset`` (e.g. a fixed task set).
        evaluate: after each iteration, roll the greedy policy out in the twin from the current
            episode's start state and record its return (``history["greedy_return"]``).
        progress: show a progress bar.
        callback: called as ``callback(iteration, run)`` after each iteration.
        track_info: numeric ``info`` entries of the physical step to record in ``history`` (e.g.
            ``"failed"``); a missing entry is recorded as NaN.
        max_episodes: stop after this many finished episodes (``budget`` still caps the
            iterations; ``history`` is cut to the iterations run).
    """
    for label, value in (("budget", budget), ("max_episodes", max_episodes)):
        if value is None and label == "max_episodes":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label}={value!r} is out of range; allowed: an int >= 1")
    env = gym.make(env) if isinstance(env, str) else env
    if twin is None and (assists or evaluate):
        twin = DigitalTwin(env)
    history = {k: np.zeros(budget) for k in ("reward", "epsilon", *track_info)}
    if evaluate:
        history["greedy_return"] = np.zeros(budget)
    run = Run(agent, 0, 0, 0, 0.0, history)
    start_time = time.perf_counter()
    obs, info = env.reset(seed=seed, options=reset_options)
    episode_start = (obs, info.get("action_mask"), _state(env, twin))
    episode_return, episode_first = 0.0, 1
    vetters = [a for a in assists if isinstance(a, Vetting)]  # once: a protocol check is slow
    for i in _progress(range(1, budget + 1), progress):
        if hasattr(agent, "begin_iteration"):
            agent.begin_iteration(i)
        mask = info.get("action_mask")
        if twin is not None:
            twin.sync(_state(env, twin))  # the identical domain mirrors s_t
        action = agent.act(obs, explore=True, mask=mask)
        if twin is not None:  # an assist with vet() may replace a risky action (SafeExploration)
            for vetting in vetters:
                action = vetting.vet(StepContext(i, obs, mask, action, twin), agent)
        next_obs, reward, terminated, truncated, next_info = env.step(action)
        episode_return += float(reward)
        agent.learn(
            Transitions.single(
                obs, action, float(reward), next_obs, terminated, next_info.get("action_mask")
            )
        )
        if twin is not None:
            ctx = StepContext(i, obs, mask, action, twin)
            for assist in assists:
                assist.after_step(ctx, agent)
        history["reward"][i - 1] = reward
        history["epsilon"][i - 1] = float(getattr(agent, "epsilon", np.nan))
        for key in track_info:
            history[key][i - 1] = float(next_info.get(key, np.nan))
        if terminated or truncated:
            run.episodes += 1
            run.episode_returns.append(episode_return)
            run.episode_lengths.append(i - episode_first + 1)
            episode_return, episode_first = 0.0, i + 1
            obs, info = env.reset(options=reset_options)
            episode_start = (obs, info.get("action_mask"), _state(env, twin))
        else:
            obs, info = next_obs, next_info
        if evaluate and twin is not None:
            history["greedy_return"][i - 1] = greedy_return(twin, agent, *episode_start)
        run.iterations = i
        if callback is not None:
            callback(i, run)
        if max_episodes is not None and run.episodes >= max_episodes:
            break
    for key in history:
        history[key] = history[key][: run.iterations]
    run.twin_evaluations = twin.evaluations if twin is not None else 0
    run.wall_time = time.perf_counter() - start_time
    return run


def greedy_return(
    twin: DigitalTwin,
    agent: Agent,
    obs: Any,
    mask: NDArray[np.int8] | None,
    state: Any,
    max_steps: int = 100_000,
) -> float:
    """Return of the greedy policy from ``state``, rolled out in the twin (the physical env is not
    touched). Evaluation steps are not counted as twin work."""
    total = 0.0
    before = twin.evaluations
    for _ in range(max_steps):
        action = agent.act(obs, explore=False, mask=mask)
        out = twin.step_domains([state], np.array([action]))
        total += float(out.reward[0])
        if out.terminated[0] or out.truncated[0]:
            break
        obs, state = out.next_obs[0], out.states[0]
        mask = None if out.next_mask is None else out.next_mask[0]
    twin.evaluations = before
    return total


def _state(env: gym.Env[Any, Any], twin: DigitalTwin | None) -> Any:
    return env.unwrapped.get_state() if twin is not None else None  # type: ignore[attr-defined]


def _progress(iterable: range, enabled: bool) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc="physical iterations", unit="it", mininterval=0.5)
