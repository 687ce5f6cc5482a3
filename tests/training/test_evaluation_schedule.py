"""train()'s greedy evaluation runs on a schedule whose twin cost is bounded, and stays exact."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import twinrl
from twinrl.algorithms import build_algorithm
from twinrl.training import EVAL_SHARE


@pytest.mark.parametrize(
    ("env_id", "kwargs", "algo"),
    [
        ("twinrl/EdgeScheduling-v0", {"n_tasks": 4}, "ql"),
        ("twinrl/EdgeScheduling-v0", {"n_tasks": 4, "formulation": "sequential"}, "dteql"),
        ("twinrl/APSelection-v0", {}, "ql"),
    ],
)
def test_default_schedule_keeps_evaluation_within_its_share(
    env_id: str, kwargs: dict, algo: str
) -> None:
    env = gym.make(env_id, **kwargs)
    agent, assists = build_algorithm(algo, env, 0, n_trials=5)
    twin = twinrl.twin.DigitalTwin(env)
    run = twinrl.train(env, agent, assists=assists, twin=twin, budget=800, seed=0)
    greedy = run.history["greedy_return"]
    evaluated = np.flatnonzero(np.diff(np.r_[np.nan, greedy]) != 0)
    assert run.eval_steps > 0 and evaluated.size > 1
    assert run.eval_steps <= EVAL_SHARE * (run.iterations + twin.calls)
    # between evaluations the history holds the last evaluated value; NaN before the first
    first = np.flatnonzero(np.isfinite(greedy))[0]
    assert np.isnan(greedy[:first]).all() and np.isfinite(greedy[first:]).all()


def test_eval_every_evaluates_exactly_then_and_matches_a_direct_rollout() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4)
    agent, _ = build_algorithm("ql", env, 0)
    values = {}

    def record(i: int, run: twinrl.Run) -> None:
        values[i] = run.history["greedy_return"][i - 1]

    run = twinrl.train(env, agent, budget=30, seed=0, eval_every=10, callback=record)
    assert run.eval_steps == 4  # iterations 1, 10, 20, 30 (one-step episodes)
    assert values[9] == values[1] and values[19] == values[10]
    # the last value is the greedy policy's true return: one greedy step of the final agent
    env.reset()
    greedy = agent.act(0, explore=False)
    _, reward, *_ = env.step(greedy)
    assert run.history["greedy_return"][-1] == reward


def test_evaluation_is_deterministic() -> None:
    def curve() -> bytes:
        env = gym.make("twinrl/APSelection-v0")
        agent, _ = build_algorithm("ql", env, 3)
        return twinrl.train(env, agent, budget=600, seed=3).history["greedy_return"].tobytes()

    assert curve() == curve()


def test_evaluation_rollout_stops_at_truncation() -> None:
    env = gym.make("twinrl/MultiUAV-v0", episode_steps=4, action_space="flat")

    class Hover:
        def act(self, obs: object, *, explore: bool, mask: object = None) -> int:
            return 0

    twin = twinrl.twin.DigitalTwin(env)
    obs, _ = env.reset(seed=0)
    _, steps = twinrl.training.greedy_return(
        twin, Hover(), obs, None, twin.capture(env), max_steps=100, steps=True
    )
    assert steps == 4 and twin.evaluations == 0  # evaluation is not counted as twin work
