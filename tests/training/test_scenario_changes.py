"""A physical scenario change at step t: the dynamics change exactly from t, the run records it,
the twin detects it, and the agent re-trains (or pre-trains) in twins of scenarios."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import twinrl
from twinrl.adaptation import ScenarioAdaptation, fidelity_jump, scenario_changed
from twinrl.agents import QLearning
from twinrl.contract import Scenario, ScenarioChange, Transitions
from twinrl.envs import ScenarioSampler
from twinrl.errors import ConfigError, ConfigTypeError
from twinrl.storage import Storage
from twinrl.training import pretrain_in_twin
from twinrl.twin import DigitalTwin, Fidelity

ACTIONS = [1, 2, 0, 3, 4, 1, 2, 3, 0, 4] * 4
SLOW = Scenario.of(ap_rates=(1.0, 1.0, 1.0, 1.0, 1.0))  # every AP all but dead


class Scripted:
    """A fixed action sequence (an Agent that never learns)."""

    def __init__(self) -> None:
        self.k = 0

    def act(self, obs: Any, *, explore: bool, mask: Any = None) -> int:
        self.k += 1
        return ACTIONS[self.k - 1]

    def learn(self, transitions: Transitions) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _reference(change_at: int, n: int) -> list[float]:
    """The rewards of the scripted actions, stepped by hand with the change before step t."""
    env = gym.make("twinrl/APSelection-v0")
    env.reset(seed=5)
    rewards = []
    for t in range(1, n + 1):
        if t == change_at:
            env.unwrapped.set_scenario(SLOW)  # type: ignore[attr-defined]
        _, r, term, _, _ = env.step(ACTIONS[t - 1])
        rewards.append(float(r))
        if term:
            env.reset()
    return rewards


def test_the_dynamics_change_exactly_from_the_given_step() -> None:
    t = 7
    run = twinrl.train("twinrl/APSelection-v0", Scripted(), budget=12, seed=5, evaluate=False,
                       changes=[ScenarioChange(t, SLOW)])  # fmt: skip
    plain = twinrl.train("twinrl/APSelection-v0", Scripted(), budget=12, seed=5, evaluate=False)
    got, before = run.history["reward"].tolist(), plain.history["reward"].tolist()
    assert got == _reference(t, 12)
    assert got[: t - 1] == before[: t - 1]
    assert got[t - 1] == -10.0 != before[t - 1]  # a dead AP fails the very task of step t
    assert run.scenario_changes == [ScenarioChange(t, SLOW)]
    assert run.history["scenario"].tolist() == [0.0] * (t - 1) + [1.0] * (12 - t + 1)
    assert "scenario" not in plain.history


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ([ScenarioChange(5, SLOW), ScenarioChange(3, SLOW)], ConfigError),
        ([ScenarioChange(5, SLOW), ScenarioChange(5, SLOW)], ConfigError),
        ([ScenarioChange(50, SLOW)], ConfigError),
        (ScenarioChange(5, SLOW), ConfigTypeError),
        ([(5, SLOW)], ConfigTypeError),
    ],
)
def test_bad_changes_are_refused(changes: Any, error: type) -> None:
    with pytest.raises(error, match="changes"):
        twinrl.train("twinrl/APSelection-v0", Scripted(), budget=20, changes=changes)


def test_changes_need_an_env_with_scenarios() -> None:
    with pytest.raises(ConfigError, match="set_scenario"):
        twinrl.train("CartPole-v1", Scripted(), budget=5, evaluate=False,
                     changes=[ScenarioChange(2, SLOW)])  # fmt: skip


def test_storage_tags_each_transition_with_its_scenario() -> None:
    storage = Storage(100)
    twinrl.train("twinrl/APSelection-v0", Scripted(), budget=12, seed=5, evaluate=False,
                 storage=storage, changes=[ScenarioChange(7, SLOW)])  # fmt: skip
    env = gym.make("twinrl/APSelection-v0").unwrapped
    base = env.scenario  # type: ignore[attr-defined]
    env.set_scenario(SLOW)  # type: ignore[attr-defined]
    assert storage.scenarios == [base, env.scenario]  # type: ignore[attr-defined]
    assert storage.scenario_tags(0).tolist() == [0] * 6 + [1] * 6


def _agent(seed: int = 0) -> QLearning:
    env = gym.make("twinrl/APSelection-v0")
    return QLearning(int(env.observation_space.n), int(env.action_space.n), rng=seed)  # type: ignore[attr-defined]


def test_the_twin_detects_the_change_and_retrains_in_a_twin_of_the_new_scenario() -> None:
    storage = Storage(500, 1)
    adapt = ScenarioAdaptation(60, seed=3, storage=storage)
    new = ScenarioSampler("twinrl/APSelection-v0", seed=2).sample()
    agent = _agent()
    run = twinrl.train("twinrl/APSelection-v0", agent, budget=40, seed=0, assists=[adapt],
                       evaluate=False, storage=storage, changes=[ScenarioChange(21, new)])  # fmt: skip
    assert adapt.detections == [21]
    assert adapt.known == new
    assert adapt.twin_steps == 60
    assert run.iterations == 40  # the re-training is twin work, not physical
    tags = storage.scenario_tags(1)
    assert tags.size == 60 and set(tags.tolist()) == {storage.scenarios.index(new)}
    assert scenario_changed(new, gym.make("twinrl/APSelection-v0")) is not None


def test_scenario_adaptation_refuses_an_env_without_scenarios() -> None:
    with pytest.raises(ConfigError, match="scenario"):
        twinrl.train("CartPole-v1", Scripted(), budget=3, assists=[ScenarioAdaptation(5)])
    with pytest.raises(ConfigError, match="budget"):
        ScenarioAdaptation(0)


def test_a_twin_with_the_old_model_shows_the_change_as_a_fidelity_jump() -> None:
    env = gym.make("twinrl/APSelection-v0")
    twin = DigitalTwin(env, fidelity=Fidelity(bias={"speed": 1e-9}))  # its own, frozen model
    run = twinrl.train(env, _agent(), budget=120, seed=0, twin=twin, evaluate=False,
                       assists=[ScenarioAdaptation(1)], measure_fidelity=True,
                       changes=[ScenarioChange(61, SLOW)])  # fmt: skip
    errors = run.history["twin_reward_error"]
    assert np.nanmax(errors[:60]) < 1e-6 < errors[60:].mean()
    found = fidelity_jump(errors, window=10, rise=1.0)
    assert found is not None and 61 <= found <= 70


def test_fidelity_jump_against_a_hand_built_series() -> None:
    e = np.r_[np.full(5, np.nan), np.zeros(30), np.full(30, 4.0)]
    # window 10: at iteration 5 + 30 + k the recent mean is 0.4 k, the one before is 0
    assert fidelity_jump(e, window=10, rise=1.0) == 5 + 30 + 3
    assert fidelity_jump(np.zeros(50), window=10, rise=0.5) is None
    with pytest.raises(ConfigError, match="rise"):
        fidelity_jump(e, rise=0.0)


def test_pretraining_across_scenarios_switches_at_episode_boundaries() -> None:
    env = gym.make("twinrl/APSelection-v0")
    scenarios = ScenarioSampler(env, seed=4).sample(3)
    storage = Storage(1000, 1)
    run = pretrain_in_twin(DigitalTwin(env), _agent(), budget=120, seed=0, scenarios=scenarios,
                           storage=storage, evaluate=False)  # fmt: skip
    assert [c.step for c in run.scenario_changes] == [41, 81]  # 20-step episodes
    assert storage.sizes.tolist() == [0, 120]  # twin data, never physical
    assert storage.scenario_tags(1).tolist() == [0] * 40 + [1] * 40 + [2] * 40
    assert storage.scenarios == scenarios
    assert env.unwrapped.scenario == ScenarioSampler(env, spread=0).base  # type: ignore[attr-defined]


def test_pretraining_across_scenarios_refuses_bad_options() -> None:
    env = gym.make("twinrl/APSelection-v0")
    scenarios = ScenarioSampler(env, seed=4).sample(3)
    twin = DigitalTwin(env)
    with pytest.raises(ConfigError, match="too small"):
        pretrain_in_twin(twin, _agent(), budget=40, scenarios=scenarios, evaluate=False)
    with pytest.raises(ConfigError, match="n_twin_domains"):
        pretrain_in_twin(twin, _agent(), budget=60, scenarios=scenarios, storage=Storage(10))
    with pytest.raises(ConfigTypeError, match="scenarios"):
        pretrain_in_twin(twin, _agent(), budget=60, scenarios=scenarios[0])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not both"):
        pretrain_in_twin(twin, _agent(), budget=60, scenarios=scenarios, changes=[])


def test_changes_with_a_resume_checkpoint_are_refused(tmp_path: Any) -> None:
    from twinrl.resume import Checkpointing

    with pytest.raises(ConfigError, match="changes cannot be combined with checkpoint"):
        twinrl.train("twinrl/APSelection-v0", Scripted(), budget=12, evaluate=False,
                     changes=[ScenarioChange(3, SLOW)],
                     checkpoint=Checkpointing(tmp_path / "r.npz", 2))  # fmt: skip
    assert not (tmp_path / "r.npz").exists()
