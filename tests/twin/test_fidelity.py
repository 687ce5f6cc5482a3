"""Imperfect twins: each Fidelity option changes exactly what it claims, and Fidelity() is today's
perfect twin bit for bit."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import twinrl
from twinrl.agents import QLearning
from twinrl.algorithms import build_algorithm
from twinrl.envs import EdgeSchedulingEnv
from twinrl.twin import DigitalTwin
from twinrl.twin.fidelity import IMPROVE_LEVELS, Fidelity

EDGE = {"n_tasks": 5, "formulation": "sequential"}


def _run(env_id: str, kwargs: dict[str, Any], algo: str, fidelity: Fidelity | None, **train: Any):
    env = gym.make(env_id, **kwargs)
    agent, assists = build_algorithm(algo, env, 0, n_trials=6, safe_exploration=algo == "ql")
    twin = None if fidelity is None else DigitalTwin(env, fidelity=fidelity)
    run = twinrl.train(env, agent, assists=assists, twin=twin, budget=300, seed=0,
                       track_info=("failed",) if "AP" in env_id else (), **train)  # fmt: skip
    return agent, run


@pytest.mark.parametrize(
    ("env_id", "kwargs", "algo"),
    [
        ("twinrl/EdgeScheduling-v0", EDGE, "dteql"),
        ("twinrl/APSelection-v0", {}, "ql"),  # with SafeExploration
        ("twinrl/APSelection-v0", {}, "dtaql"),
    ],
)
def test_a_perfect_fidelity_is_bit_identical_to_the_default_twin(
    env_id: str, kwargs: dict, algo: str
) -> None:
    a, run_a = _run(env_id, kwargs, algo, None)
    b, run_b = _run(env_id, kwargs, algo, Fidelity(seed=7))
    assert a.q.tobytes() == b.q.tobytes()
    for key in run_a.history:
        assert run_a.history[key].tobytes() == run_b.history[key].tobytes()
    assert run_a.twin_evaluations == run_b.twin_evaluations


def test_model_bias_changes_the_dynamics_and_nothing_else() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", **EDGE)
    env.reset(seed=1)
    env.step(2)
    fidelity = Fidelity(bias={"rate": -0.5})
    twin = DigitalTwin(env, fidelity=fidelity)
    twin.mirror(env, 1, episode_start=True, action=None)
    state = env.unwrapped.get_state()
    assert twin.identical_state.tasks.tobytes() == state.tasks.tobytes()  # no noise: exact state
    assert twin.model.params == replace(env.unwrapped.params, rate=env.unwrapped.params.rate / 2)
    biased = twin.trial(twin.identical_state, np.array([0, 1, 3]))
    exact = DigitalTwin(env).trial(state, np.array([0, 1, 3]))
    assert (biased.reward < exact.reward).all()  # a slower uplink: later completions, lower reward
    np.testing.assert_array_equal(biased.next_mask, exact.next_mask)
    np.testing.assert_array_equal(biased.terminated, exact.terminated)


@pytest.mark.parametrize(("std", "mean"), [(0.1, 0.0), (0.05, 0.2)])
def test_measurement_noise_has_the_declared_mean_and_scale(std: float, mean: float) -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", **EDGE)
    env.reset(seed=3)
    true = env.unwrapped.get_state().tasks
    twin = DigitalTwin(env, fidelity=Fidelity(noise={"tasks": std}, noise_mean={"tasks": mean}))
    ratios = []
    for t in range(1, 401):
        twin.mirror(env, t, episode_start=True, action=None)
        measured = twin.identical_state.tasks
        ok = true > 0
        ratios.append(measured[ok] / true[ok] - 1.0)
    error = np.concatenate(ratios)
    n = error.size
    assert abs(error.mean() - mean) < 4 * std / np.sqrt(n)
    assert abs(error.std() - std) < 0.05 * std
    assert env.unwrapped.get_state().tasks.tobytes() == true.tobytes()  # physical untouched


def test_noise_is_reproducible_and_never_touches_the_physical_rng() -> None:
    def measured(seed: int) -> bytes:
        env = gym.make("twinrl/MultiUAV-v0")
        env.reset(seed=0)
        before = env.unwrapped.np_random.bit_generator.state
        twin = DigitalTwin(env, fidelity=Fidelity(noise={"user_pos": 3.0}, seed=seed))
        twin.mirror(env, 1, episode_start=True, action=None)
        assert env.unwrapped.np_random.bit_generator.state == before
        return twin.identical_state.user_pos.tobytes()

    assert measured(5) == measured(5) != measured(6)


def _stepped_edge() -> tuple[gym.Env[Any, Any], list[Any], list[int]]:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=6, formulation="sequential")
    env.reset(seed=4)
    states, actions = [env.unwrapped.get_state()], [3, 0, 5, 1]
    for a in actions:
        env.step(a)
        states.append(env.unwrapped.get_state())
    return env, states, actions


@pytest.mark.parametrize("delay", [0, 1, 3])
def test_stale_sync_sees_the_state_delay_steps_late_and_predicts_forward(delay: int) -> None:
    env, states, actions = _stepped_edge()
    fidelity = Fidelity(bias={"f_ser": 1.0}, delay=delay)
    twin = DigitalTwin(env, fidelity=fidelity)
    model = EdgeSchedulingEnv(**{**vars(env.unwrapped.params), "f_ser": 2 * 10e9})
    for t, state in enumerate(states, start=1):  # replay the episode into the twin
        env.unwrapped.set_state(state)
        twin.mirror(env, t, episode_start=t == 1, action=None if t == 1 else actions[t - 2])
    # expected: the exact state of `delay` steps ago, stepped in the biased model
    seen = len(states) - 1 - delay
    model.reset(seed=0)
    model.set_state(states[seen])
    for a in actions[seen:]:
        model.step(a)
    expected = model.get_state()
    assert twin.identical_state.t_server.tobytes() == np.asarray(expected.t_server).tobytes()
    # a sync every step predicts through min(steps so far, delay) executed actions
    assert twin.prediction_steps == sum(min(j, delay) for j in range(1, len(states)))


def test_between_syncs_the_twin_predicts_and_at_syncs_it_is_exact() -> None:
    env, states, actions = _stepped_edge()
    twin = DigitalTwin(env, fidelity=Fidelity(bias={"rate": 0.5}, sync_every=3))
    exact_at = []
    for t, state in enumerate(states, start=1):
        env.unwrapped.set_state(state)
        twin.mirror(env, t, episode_start=t == 1, action=None if t == 1 else actions[t - 2])
        exact_at.append(twin.identical_state.t_ready.tobytes() == state.t_ready.tobytes())
    assert exact_at == [True, False, False, True, False]  # syncs at t = 1, 4


def test_an_imperfect_twin_cannot_foresee_the_physical_random_draws() -> None:
    """MultiUAV's user mobility is drawn from a key carried in the state: the perfect twin (the
    papers' oracle) replays the physical draws; a stale twin predicts with its own."""

    def users_after_prediction(fidelity: Fidelity) -> tuple[np.ndarray, np.ndarray]:
        env = gym.make("twinrl/MultiUAV-v0")
        env.reset(seed=3)
        twin = DigitalTwin(env, fidelity=fidelity)
        action = np.zeros(4, dtype=np.int64)
        twin.mirror(env, 1, episode_start=True, action=None)
        for t in range(2, 5):  # no sync after t = 1 for the stale twin
            env.step(action)
            twin.mirror(env, t, episode_start=False, action=action)
        return twin.identical_state.user_pos, env.unwrapped.get_state().user_pos

    twin, physical = users_after_prediction(Fidelity())
    assert np.array_equal(twin, physical)
    twin, physical = users_after_prediction(Fidelity(sync_every=100))
    assert not np.allclose(twin, physical)


def test_construction_blocks_the_twin_until_ready() -> None:
    env = gym.make("twinrl/APSelection-v0")
    agent = QLearning.for_env(env, rng=0)
    from twinrl.assists import ActionTrials

    twin = DigitalTwin(env, fidelity=Fidelity(ready_after=50))
    run = twinrl.train(env, agent, assists=[ActionTrials(2, 5, rng=1)], twin=twin, budget=120,
                       seed=0, evaluate=False, measure_fidelity=True)  # fmt: skip
    assert run.twin_evaluations == (120 - 50) * 2
    errors = run.history["twin_reward_error"]
    assert np.isnan(errors[:50]).all() and (errors[50:] == 0).all()


def test_the_error_shrinks_as_the_twin_is_built() -> None:
    f = Fidelity(bias={"rate": 0.5}, ready_after=10, improve_over=100)
    scales = [f.error_scale(t) for t in (1, 10, 11, 60, 110, 200)]
    assert scales[0] == scales[1] == 1.0 and scales[-2] == scales[-1] == 0.0
    assert 0.45 <= scales[3] <= 0.55 and scales[2] <= 1.0
    assert all(s * IMPROVE_LEVELS == int(s * IMPROVE_LEVELS) for s in scales)


@pytest.mark.parametrize("bias", [0.0, 0.1, 0.5])
def test_fidelity_metric_is_zero_for_a_perfect_twin_and_grows_with_the_error(bias: float) -> None:
    _, run = _run("twinrl/EdgeScheduling-v0", EDGE, "dteql",
                  Fidelity(bias={"rate": bias} if bias else {}), measure_fidelity=True)  # fmt: skip
    error = run.twin_error["reward"]
    if bias == 0.0:
        assert error == 0.0 and run.twin_error["obs"] == 0.0
    else:
        _, smaller = _run("twinrl/EdgeScheduling-v0", EDGE, "dteql",
                          Fidelity(bias={"rate": bias / 5}), measure_fidelity=True)  # fmt: skip
        assert error > smaller.twin_error["reward"] > 0.0


def test_an_imperfect_twin_never_judges_the_policy() -> None:
    """The greedy evaluation runs on the physical dynamics, whatever the assists' twin is."""
    env = gym.make("twinrl/EdgeScheduling-v0", **EDGE)
    agent, _ = build_algorithm("ql", env, 0)
    twin = DigitalTwin(env, fidelity=Fidelity(bias={"rate": -0.9}))
    run = twinrl.train(env, agent, twin=twin, budget=50, seed=0, eval_every=50)
    env2 = gym.make("twinrl/EdgeScheduling-v0", **EDGE)
    agent2, _ = build_algorithm("ql", env2, 0)
    run2 = twinrl.train(env2, agent2, budget=50, seed=0, eval_every=50)
    assert run.history["greedy_return"][-1] == run2.history["greedy_return"][-1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bias": {"rate": -1.0}}, "bias"),
        ({"bias": {"rate": float("nan")}}, "bias"),
        ({"noise": {"tasks": -0.1}}, "noise"),
        ({"noise": [0.1]}, "noise"),
        ({"sync_every": 0}, "sync_every"),
        ({"delay": -1}, "delay"),
        ({"ready_after": 1.5}, "ready_after"),
        ({"improve_over": -3}, "improve_over"),
        ({"seed": "x"}, "seed"),
    ],
)
def test_bad_options_raise_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        Fidelity(**kwargs)


@pytest.mark.parametrize(
    ("env_id", "fidelity", "message"),
    [
        ("twinrl/EdgeScheduling-v0", Fidelity(bias={"zeta": 0.1}), "twin_params"),
        ("twinrl/EdgeScheduling-v0", Fidelity(noise={"order": 0.1}), "measured_state"),
        ("FrozenLake-v1", Fidelity(bias={"rate": 0.1}), "get_state"),
    ],
)
def test_fidelity_naming_what_the_env_does_not_declare_is_refused(
    env_id: str, fidelity: Fidelity, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DigitalTwin(gym.make(env_id), fidelity=fidelity)


def test_stale_sync_and_construction_work_for_any_env() -> None:
    env = gym.make("FrozenLake-v1")
    agent = QLearning.for_env(env, rng=0)
    from twinrl.assists import ActionTrials

    twin = DigitalTwin(env, fidelity=Fidelity(sync_every=4, ready_after=10))
    run = twinrl.train(env, agent, assists=[ActionTrials(2, 4, rng=1)], twin=twin, budget=60,
                       seed=0)  # fmt: skip
    assert run.iterations == 60 and "reward" in run.twin_error
