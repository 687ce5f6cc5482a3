"""SafeExploration on a small env with known hazards, through the general training loop."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import twinrl
from twinrl.agents import QLearning
from twinrl.assists import SafeExploration
from twinrl.twin import DigitalTwin


class _Hazard(gym.Env[Any, int]):
    """Five cells walked left to right, one step per action; action a fails in cell c when
    (a + c) % 3 == 0 (reward -10), else earns a. In cell 4 every action but 2 fails."""

    twin_info_keys = ("failed",)

    def __init__(self) -> None:
        self.observation_space = spaces.Discrete(5)
        self.action_space = spaces.Discrete(3)
        self.cell = 0

    def _fails(self, a: int) -> bool:
        return (a + self.cell) % 3 == 0 if self.cell < 4 else a != 2

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.cell = 0
        return self.cell, {}

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        failed = self._fails(int(action))
        reward = -10.0 if failed else float(action)
        self.cell += 1
        return min(self.cell, 4), reward, self.cell >= 5, False, {"failed": failed}

    def get_state(self) -> int:
        return self.cell

    def set_state(self, state: int) -> None:
        self.cell = int(state)


def _run(assists: list[Any], seed: int = 0) -> twinrl.Run:
    env = _Hazard()
    agent = QLearning(5, 3, rng=seed)
    return twinrl.train(
        env, agent, assists=assists, budget=500, seed=seed, evaluate=False, track_info=("failed",)
    )


def test_no_predicted_failure_reaches_the_physical_env() -> None:
    safe = SafeExploration(3)
    run = _run([safe])
    assert run.history["failed"].sum() == 0  # cell 4 always has action 2
    assert safe.checked == 500 and safe.vetoed > 50 and safe.unavoidable == 0
    baseline = _run([])
    assert baseline.history["failed"].sum() > 100  # the hazard is real without the veto


def test_replacement_is_the_best_safe_action_and_the_vetoed_outcome_is_learned() -> None:
    env = _Hazard()
    env.reset(seed=0)
    env.cell = 1  # action 2 fails; 0 and 1 are safe, 1 earns more
    twin = DigitalTwin(env)
    twin.sync(env.get_state())
    agent = QLearning(5, 3, rng=0)
    ctx = twinrl.assists.StepContext(1, 1, None, 2, twin)
    assert SafeExploration(3, replacement="reward").vet(ctx, agent) == 1  # earns 1 > 0
    assert agent.q[1, 2] == pytest.approx(0.1 * -10.0)  # learned from the twin: Q = lr * r
    agent.q[1, 0] = 5.0  # the agent values action 0 more (later consequences)
    assert SafeExploration(3).vet(ctx, agent) == 0  # greedy among the safe actions
    agent.q[1, 2] = 50.0  # the unsafe action stays excluded however much the agent likes it
    assert SafeExploration(3).vet(ctx, agent) == 0
    assert env.cell == 1  # the physical env was not touched


def test_unavoidable_failures_are_executed_and_counted() -> None:
    env = _Hazard()
    env.reset(seed=0)
    env.cell = 4
    twin = DigitalTwin(env)
    twin.sync(env.get_state())
    safe = SafeExploration(3, unsafe=lambda out: np.ones(len(out.reward), dtype=bool))
    ctx = twinrl.assists.StepContext(1, 4, None, 0, twin)
    assert safe.vet(ctx, QLearning(5, 3, rng=0)) == 0
    assert safe.stats() == {"checked": 1, "vetoed": 0, "unavoidable": 1, "false_vetoes": 0,
                            "missed_failures": 0}  # fmt: skip


def test_bad_arguments_and_envs_without_failure_info() -> None:
    with pytest.raises(ValueError, match="n_actions"):
        SafeExploration(0)
    with pytest.raises(TypeError, match="n_actions"):
        SafeExploration(2.5)  # type: ignore[arg-type]
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=3)
    agent = QLearning.for_env(env, rng=0)
    with pytest.raises(ValueError, match="twin_info_keys"):
        twinrl.train(env, agent, assists=[SafeExploration(6)], budget=3, evaluate=False)


def test_audit_only_counts_but_never_vetoes_or_learns() -> None:
    audit = SafeExploration(3, audit_only=True)
    run = _run([audit])
    baseline = _run([])
    np.testing.assert_array_equal(run.history["reward"], baseline.history["reward"])
    assert audit.vetoed == run.history["failed"].sum() > 0  # every failure had a safe alternative
    with pytest.raises(ValueError, match="replacement"):
        SafeExploration(3, replacement="best")
