"""The loop owns the data flow: every transition the physical agent learns from passes through one
route, into the run's storage space (per-domain buffers), in the order the agent learns it."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import twinrl
from twinrl.agents import QLearning
from twinrl.assists import ActionTrials, PredictiveTargets, SafeExploration
from twinrl.contract import Transitions
from twinrl.storage import Storage


class Recording(QLearning):
    """Q-learning that records every batch it learns from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[Transitions] = []

    def learn(self, transitions: Transitions) -> dict[str, float]:
        self.seen.append(transitions)
        return super().learn(transitions)


def _recording(env: gym.Env[Any, Any]) -> Recording:
    return Recording(int(env.observation_space.n), int(env.action_space.n), rng=0)


@pytest.mark.parametrize(
    "assist",
    [
        lambda env: ActionTrials(3, int(env.action_space.n), rng=1),
        lambda env: PredictiveTargets(2, 3, gamma=0.9, rng=1),
        lambda env: SafeExploration(int(env.action_space.n)),
    ],
    ids=["trials", "prediction", "safety"],
)
def test_every_learned_transition_is_stored_per_domain_in_order(assist: Any) -> None:
    env = gym.make("twinrl/APSelection-v0")
    agent = _recording(env)
    storage = Storage(10_000, n_twin_domains=3)
    run = twinrl.train(env, agent, assists=[assist(env)], budget=300, seed=0, evaluate=False,
                       storage=storage)  # fmt: skip
    assert run.storage is storage
    learned = Transitions(*(
        None if parts[0] is None else np.concatenate(parts)
        for parts in zip(*agent.seen, strict=True)
    ))  # fmt: skip
    assert len(storage) == len(learned)
    for domain in range(storage.n_domains):
        rows = np.flatnonzero(learned.source == domain)
        stored = storage.domain(domain)
        np.testing.assert_array_equal(stored.obs, learned.obs[rows])
        np.testing.assert_array_equal(stored.action, learned.action[rows])
        np.testing.assert_array_equal(stored.reward, learned.reward[rows])
    assert storage.sizes[0] == 300  # every physical transition, in domain 0


def test_without_a_storage_the_run_reports_the_agents_own_or_none() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=3)
    run = twinrl.train(env, QLearning.for_env(env, rng=0), budget=5, seed=0)
    assert run.storage is None


def test_results_do_not_depend_on_the_storage() -> None:
    def q(storage: Storage | None) -> bytes:
        env = gym.make("twinrl/APSelection-v0")
        agent = QLearning.for_env(env, rng=0)
        trials = ActionTrials(2, int(env.action_space.n), rng=1)
        twinrl.train(env, agent, assists=[trials], budget=200, seed=0, storage=storage)
        return agent.q.tobytes()

    assert q(None) == q(Storage(500, n_twin_domains=2))
