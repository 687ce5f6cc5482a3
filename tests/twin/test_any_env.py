"""Bring your own env: Gymnasium envs that know nothing of twinrl get a twin with no adapter code,
and the vectorized and serial backends agree on every field over the whole registry."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import twinrl
from twinrl.agents import QLearning
from twinrl.assists import ActionTrials, PredictiveTargets
from twinrl.envs import ENV_IDS
from twinrl.testing import check_twin_matches, check_twinnable
from twinrl.twin import DigitalTwin

# Taxi-v3 became Taxi-v4 in gymnasium 1.3 (v3 is refused there); take whichever is registered
TAXI = "Taxi-v4" if "Taxi-v4" in gym.registry else "Taxi-v3"
THIRD_PARTY = [
    ("FrozenLake-v1", {"is_slippery": True}),
    (TAXI, {}),
    ("CartPole-v1", {}),
]


@pytest.mark.parametrize(("env_id", "kwargs"), THIRD_PARTY)
def test_third_party_env_passes_the_conformance_kit_without_adapter_code(
    env_id: str, kwargs: dict[str, Any]
) -> None:
    env = gym.make(env_id, **kwargs)
    check_twinnable(env, steps=50)
    twin = DigitalTwin(env)
    assert twin.mode == "copy"  # TimeLimit and friends: the twin copies the whole wrapped env
    # enough steps to cross several episode ends (and Taxi's 200-step truncation)
    check_twin_matches(env, twin, steps=210)


# a deep-copy twin copies Taxi's transition table at every domain step: keep its run short
@pytest.mark.parametrize(("env_id", "budget"), [("FrozenLake-v1", 300), (TAXI, 40)])
def test_action_trials_train_a_tabular_agent_on_a_third_party_env(env_id: str, budget: int) -> None:
    env = gym.make(env_id)
    agent = QLearning.for_env(env, rng=0)
    trials = ActionTrials(3, int(env.action_space.n), rng=1)
    run = twinrl.train(env, agent, assists=[trials], budget=budget, seed=0, eval_every=20)
    # every valid action among 3 trials per step (Taxi masks actions in its info)
    assert run.iterations == budget and budget <= run.twin_evaluations <= 3 * budget
    greedy = run.history["greedy_return"]
    assert np.isfinite(greedy).all() and 0 < run.eval_steps <= (budget // 20 + 1) * 200
    assert np.abs(agent.q).sum() > 0


def test_action_trials_and_prediction_train_dqn_on_cartpole() -> None:
    pytest.importorskip("torch")
    from twinrl.agents import DQN, DQNConfig

    env = gym.make("CartPole-v1")
    agent = DQN.for_env(env, DQNConfig(learning_starts=20, batch_size=16), rng=0)
    assists = [
        ActionTrials(2, 2, rng=1),
        PredictiveTargets(3, 2, gamma=agent.config.gamma, rng=2),
    ]
    run = twinrl.train(env, agent, assists=assists, budget=120, seed=0)
    assert run.iterations == 120 and run.episodes >= 1
    assert 0 < run.twin_evaluations <= 120 * (2 + 3 * 2)


def test_the_twin_of_a_wrapped_env_sees_what_the_agent_sees() -> None:
    base = twinrl.envs.EdgeSchedulingEnv(n_tasks=4, formulation="sequential")
    env = gym.wrappers.TimeLimit(
        gym.wrappers.TransformReward(base, lambda r: 10.0 * r), max_episode_steps=2
    )
    twin = DigitalTwin(env)
    assert twin.mode == "copy"
    check_twin_matches(env, twin, steps=12)  # truncation after 2 steps, scaled rewards
    env.reset(seed=0)
    out = twin.trial(twin.capture(env), np.array([0, 1]))
    env.step(0)
    _, reward, _, truncated, _ = env.step(1)
    assert not out.truncated.any()
    second = twin.trial(out.states[0], np.array([1]))
    assert bool(second.truncated[0]) and truncated
    assert float(second.reward[0]) == reward


def test_a_twin_never_changes_the_physical_copy_mode_env() -> None:
    env = gym.make("FrozenLake-v1", is_slippery=True)
    env.reset(seed=3)
    twin = DigitalTwin(env)
    state = twin.capture(env)
    before = env.unwrapped.np_random.bit_generator.state
    twin.trial(state, np.arange(4))
    twin.trial(state, np.arange(4))
    assert env.unwrapped.np_random.bit_generator.state == before


def _variants() -> list[tuple[str, dict[str, Any]]]:
    """Every registered env, in every formulation, with short episodes so ends are crossed."""
    cases: list[tuple[str, dict[str, Any]]] = []
    for env_id in ENV_IDS:
        if "EdgeScheduling" in env_id:
            cases += [(env_id, {"n_tasks": 4, "formulation": f}) for f in ("order", "sequential")]
        elif "MultiUAV" in env_id:
            cases += [(env_id, {"episode_steps": 3, "action_space": a}) for a in ("multi", "flat")]
        else:
            cases.append((env_id, {}))
    return cases


@pytest.mark.parametrize(("env_id", "kwargs"), _variants())
def test_vectorized_and_serial_backends_agree_on_every_field(
    env_id: str, kwargs: dict[str, Any]
) -> None:
    env = gym.make(env_id, **kwargs)
    vec, ser = DigitalTwin(env, backend="vectorized"), DigitalTwin(env, backend="serial")
    for twin in (vec, ser):
        check_twin_matches(env, twin, steps=40)
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=1)
    ends = 0
    for _ in range(40):
        state = vec.capture(env)
        actions = np.stack([_action(env, info, rng) for _ in range(3)])
        a, b = vec.trial(state, actions), ser.trial(state, actions)
        for field in ("next_obs", "reward", "terminated", "truncated"):
            assert (
                np.asarray(getattr(a, field)).tobytes() == np.asarray(getattr(b, field)).tobytes()
            )
        assert (a.next_mask is None) == (b.next_mask is None)
        if a.next_mask is not None:
            np.testing.assert_array_equal(a.next_mask, b.next_mask)
        assert a.info.keys() == b.info.keys()
        for key in a.info:
            np.testing.assert_array_equal(a.info[key], b.info[key])
        _, _, terminated, truncated, info = env.step(actions[0])
        if terminated or truncated:
            ends += 1
            _, info = env.reset()
    assert ends >= 2


def _action(env: gym.Env[Any, Any], info: dict[str, Any], rng: np.random.Generator) -> Any:
    mask = info.get("action_mask")
    if mask is not None:
        return rng.choice(np.flatnonzero(mask))
    space = env.action_space
    if isinstance(space, gym.spaces.MultiDiscrete):
        return rng.integers(space.nvec)
    return rng.integers(space.n)


def test_action_trials_refuse_a_multidiscrete_env_before_training() -> None:
    env = gym.make("twinrl/MultiUAV-v0")
    trials = ActionTrials(5, 625, rng=0)
    with pytest.raises(ValueError, match=r"MultiDiscrete.*action_space='flat'"):
        trials.bind(env, DigitalTwin(env))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_trials": 0, "n_actions": 4}, "n_trials=0"),
        ({"n_trials": 2, "n_actions": 0}, "n_actions=0"),
        ({"n_trials": 2, "n_actions": 1.5}, "n_actions"),
        ({"n_trials": 2, "n_actions": "5"}, "n_actions"),
        ({"n_trials": True, "n_actions": 5}, "n_trials"),
        ({"n_trials": 10**23, "n_actions": 5}, "n_trials"),
    ],
)
def test_action_trials_reject_bad_sizes(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        ActionTrials(**kwargs)


def test_action_trials_sized_for_another_env_are_refused_naming_the_size() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4)
    agent = QLearning.for_env(env, rng=0)
    with pytest.raises(ValueError, match="n_actions=24"):
        twinrl.train(env, agent, assists=[ActionTrials(3, 5)], budget=2)


def test_numpy_counts_are_accepted() -> None:
    trials = ActionTrials(np.int64(3), np.int32(24))
    assert (trials.n_trials, trials.n_actions) == (3, 24)
