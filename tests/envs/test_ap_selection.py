from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import twinrl  # noqa: F401  (registers the envs)
from tests.ap_hand import HAND, P
from twinrl.envs import ENV_IDS
from twinrl.envs.ap_dynamics import (
    DEADLINE_MISS,
    LEFT_COVERAGE,
    SUCCESS,
    UNREACHABLE,
    APSelectionParams,
    APSelectionState,
    decode_observation,
    encode_observation,
    initial_state,
    step_batch,
    transmit,
)
from twinrl.envs.ap_selection import APSelectionEnv
from twinrl.testing import check_twin_matches, check_twinnable
from twinrl.twin import DigitalTwin


def hand_state(t: int, task_class: int, free_at: tuple[float, float, float] = (0, 0, 0)) -> Any:
    classes = np.zeros(P.n_steps, dtype=np.int64)
    classes[t] = task_class
    state = initial_state(P, classes)
    return replace(state, t=np.array(t), ap_free_at=np.array(free_at, dtype=np.float64))


def run_one(state: APSelectionState, ap: int) -> tuple[Any, float, APSelectionState]:
    batch, actions = state.tile(1), np.array([ap])
    tx = transmit(P, batch, actions)
    nxt, reward, _ = step_batch(P, batch, actions)
    return tx, float(reward[0]), nxt.item(0)


def test_inside_coverage_starts_now_and_succeeds() -> None:
    tx, reward, nxt = run_one(hand_state(0, 0), 0)
    assert (tx.start[0], tx.finish[0], tx.outcome[0]) == (0.0, 1.0, SUCCESS)
    assert reward == 10 - 1.0 - 2.0 * 1.0
    assert float(nxt.last_latency) == 1.0 and not nxt.last_failed and nxt.ap_free_at[0] == 1.0


def test_ap_ahead_waits_for_coverage_then_transmits() -> None:
    # x = 0, AP1 entered at 2 s; 3 Mbit at 2 Mbit/s -> finish 3.5 <= exit 4.
    tx, reward, nxt = run_one(hand_state(0, 1), 1)
    assert (tx.start[0], tx.finish[0], tx.outcome[0]) == (2.0, 3.5, SUCCESS)
    assert reward == 10 - 3.5 - 0.5 * 3 and float(nxt.last_latency) == 3.5
    assert nxt.ap_free_at.tolist() == [0.0, 3.5, 0.0]


def test_leaving_coverage_mid_transmission_fails() -> None:
    # At 3 s (x = 30 m) 3 Mbit on AP1 would end at 4.5 s, but the vehicle leaves at 4 s.
    tx, reward, nxt = run_one(hand_state(3, 1), 1)
    assert tx.finish[0] == 4.5 and tx.outcome[0] == LEFT_COVERAGE
    assert reward == -10.0 and bool(nxt.last_failed) and np.isnan(nxt.last_latency)
    assert nxt.ap_free_at[1] == 4.0  # busy until the transmission is abandoned


def test_deadline_miss_fails() -> None:
    # 1 Mbit due at 2 s; AP1 is only reached at 2 s and would finish at 2.5 s. Never started.
    tx, reward, nxt = run_one(hand_state(0, 0), 1)
    assert tx.finish[0] == 2.5 and tx.outcome[0] == DEADLINE_MISS and reward == -10.0
    assert nxt.ap_free_at[1] == 0.0
    # On AP0 queued until 1.5 s: finish 2.5 > 2, abandoned at the deadline.
    tx, _, nxt = run_one(hand_state(0, 0, (1.5, 0, 0)), 0)
    assert tx.outcome[0] == DEADLINE_MISS and nxt.ap_free_at[0] == 2.0


def test_busy_ap_queues_the_task_fifo() -> None:
    # At 5 s AP0 is busy until 6.25 s: 3 Mbit start 6.25, finish 9.25 (<= exit 10, due 15).
    tx, reward, nxt = run_one(hand_state(5, 1, (6.25, 0, 0)), 0)
    assert (tx.start[0], tx.finish[0], tx.outcome[0]) == (6.25, 9.25, SUCCESS)
    assert reward == 10 - 4.25 - 2.0 * 3 and float(nxt.last_latency) == 4.25
    assert nxt.ap_free_at[0] == 9.25


def test_ap_behind_out_of_coverage_is_unreachable() -> None:
    tx, reward, nxt = run_one(hand_state(5, 0), 1)  # AP1's coverage ended at 4 s
    assert tx.outcome[0] == UNREACHABLE and reward == -10.0
    assert nxt.ap_free_at.tolist() == [0.0, 0.0, 0.0] and int(nxt.last_ap) == 1


def test_env_step_reports_outcome_and_consequences_on_later_tasks() -> None:
    env = APSelectionEnv(**HAND)
    env.reset(options={"task_classes": [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]})
    _, r0, _, _, info = env.step(0)  # 3 Mbit on AP0: 0 -> 3 s
    assert info == {"failed": False, "outcome": "success", "ap": 0, "latency": 3.0,
                    "start": 0.0, "finish": 3.0}  # fmt: skip
    assert r0 == 10 - 3 - 6
    _, r1, _, _, info = env.step(0)  # arrives at 1 s, waits for AP0 until 3 s, ends at 6 s
    assert info["start"] == 3.0 and info["latency"] == 5.0 and r1 == 10 - 5 - 6
    _, r2, _, _, info = env.step(0)  # 1 Mbit at 2 s, due 4 s, queued to 6 s: deadline miss
    assert info["failed"] and info["outcome"] == "deadline_miss" and r2 == -10.0


def test_step_batch_on_tiled_state_equals_env_step_per_action() -> None:
    env = gym.make("twinrl/APSelection-v0").unwrapped
    env.reset(seed=5)
    for a in (1, 0, 3, 0, 2, 0):
        env.step(a)
    snap = env.get_state()
    actions = np.arange(env.params.n_aps)
    nxt, obs, reward, terminated, truncated, mask, batch_info = env.step_batch(
        snap.tile(len(actions)), actions
    )
    assert not truncated.any()
    assert mask is None
    np.testing.assert_array_equal(batch_info["failed"], nxt.last_failed)
    for a in actions:
        env.set_state(snap)
        o, r, te, _, info = env.step(int(a))
        assert o == obs[a] and r == reward[a] and te == terminated[a]
        assert info["failed"] == bool(nxt.last_failed[a])
        np.testing.assert_array_equal(env.get_state().ap_free_at, nxt.ap_free_at[a])
    assert nxt.last_failed.any() and not nxt.last_failed.all()  # the case is not trivial


@pytest.mark.parametrize("observation", ["index", "features"])
def test_twin_predicts_the_physical_env_step_by_step_including_next_task(observation: str) -> None:
    env = gym.make("twinrl/APSelection-v0", observation=observation)
    twin = DigitalTwin(env)
    rng = np.random.default_rng(0)
    for episode in range(3):
        env.reset(seed=11 if episode == 0 else None)
        terminated = False
        while not terminated:
            state = env.unwrapped.get_state()
            twin.sync(state)
            action = int(rng.integers(env.unwrapped.params.n_aps))
            predicted = twin.trial(twin.identical_state, np.array([action]))
            obs, reward, terminated, _, info = env.step(action)
            assert np.asarray(predicted.next_obs[0]).tobytes() == np.asarray(obs).tobytes()
            assert predicted.reward[0] == reward and predicted.terminated[0] == terminated
            assert bool(predicted.states[0].last_failed) == info["failed"]


def test_get_set_state_round_trip_snapshot_immutable_and_copies_independent() -> None:
    env = gym.make("twinrl/APSelection-v0").unwrapped
    env.reset(seed=3)
    env.step(0)
    snap = env.get_state()
    with pytest.raises(ValueError):
        snap.ap_free_at[0] = 99.0  # read-only snapshot
    before = (snap.ap_free_at.tobytes(), snap.t.tobytes(), dict(snap.rng_state or {}))
    a = [env.step(m) for m in (1, 2, 0)]
    DigitalTwin(env).trial(snap, np.arange(5))  # stepping a copy
    assert (snap.ap_free_at.tobytes(), snap.t.tobytes(), snap.rng_state) == before
    env.set_state(snap)
    b = [env.step(m) for m in (1, 2, 0)]
    assert [(x[0], x[1], x[4]["outcome"], x[4]["finish"]) for x in a] == [
        (x[0], x[1], x[4]["outcome"], x[4]["finish"]) for x in b
    ]
    env.set_state(snap)
    env.reset()
    first = env.get_state().task_classes.copy()
    env.set_state(snap)  # the RNG is restored too: the next pass is drawn identically
    env.reset()
    np.testing.assert_array_equal(env.get_state().task_classes, first)


def _trajectory(seed: int) -> bytes:
    env = gym.make("twinrl/APSelection-v0", observation="features")
    rng = np.random.default_rng(seed)
    parts = []
    for episode in range(3):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        parts.append(obs.tobytes())
        terminated = False
        while not terminated:
            obs, reward, terminated, _, _ = env.step(int(rng.integers(5)))
            parts.append(obs.tobytes() + np.float64(reward).tobytes())
    return b"".join(parts)


def test_same_seed_gives_identical_trajectory_bytes() -> None:
    assert _trajectory(7) == _trajectory(7)
    assert _trajectory(7) != _trajectory(8)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_registered_env_passes_conformance_at_defaults(env_id: str) -> None:
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)
    check_twinnable(env)
    check_twin_matches(env, steps=30)


@pytest.mark.parametrize("observation", ["index", "features"])
@pytest.mark.parametrize("backend", ["vectorized", "serial"])
def test_ap_selection_conformance(observation: str, backend: str) -> None:
    env = gym.make("twinrl/APSelection-v0", observation=observation)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)
    check_twinnable(env, steps=40)
    check_twin_matches(env, DigitalTwin(env, backend=backend), steps=45)


def test_index_observation_encodes_cell_class_and_busy_flags() -> None:
    env = gym.make("twinrl/APSelection-v0")
    assert env.observation_space.n == 21 * 3 * 32 == APSelectionParams().n_observations  # type: ignore[attr-defined]
    p = APSelectionEnv(**HAND).params
    for index in range(p.n_observations):
        d = decode_observation(p, index)
        assert encode_observation(p, d["cell"], d["task_class"], d["busy"]) == index
    env2 = APSelectionEnv(**HAND)
    env2.reset(options={"task_classes": [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]})
    obs, *_ = env2.step(0)  # AP0 busy until 3 s; next epoch at 1 s: 2 s > busy_threshold 1 s
    assert decode_observation(p, obs) == {"cell": 1, "task_class": 0, "busy": (True, False, False)}
    with pytest.raises(ValueError, match="observation"):
        decode_observation(p, p.n_observations)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ap_rates": (1e6, -1.0, 3e6, 5e6, 4e6)}, r"ap_rates\[1\]"),
        ({"ap_positions": (), "ap_radii": (), "ap_rates": (), "ap_prices": ()}, "ap_positions"),
        ({"ap_radii": (100.0, 50.0)}, "ap_radii"),
        ({"ap_positions": (500.0, 150.0, 400.0, 650.0, 1200.0)}, r"ap_positions\[4\]"),
        ({"ap_radii": (520.0, 0.0, 80.0, 100.0, 90.0)}, r"ap_radii\[1\]"),
        ({"ap_prices": (2.0, -0.5, 0.5, 1.0, 0.5)}, r"ap_prices\[1\]"),
        (
            {
                "ap_positions": (1.0,) * 5,
                "ap_radii": (1.0,) * 5,
                "ap_rates": (1.0,) * 5,
                "ap_prices": (1.0,) * 5,
            },
            "duplicates",
        ),
        ({"task_probs": (0.5, 0.4, 0.2)}, "task_probs"),
        ({"task_deadlines": (1.0, 2.0)}, "task_deadlines"),
        ({"task_sizes": (0.0, 1e6, 2e6)}, r"task_sizes\[0\]"),
        ({"n_steps": 0}, "n_steps"),
        ({"n_steps": 2.5}, "n_steps"),
        ({"speed": 0.0}, "speed"),
        ({"road_length": float("nan")}, "road_length"),
        ({"failure_penalty": -1.0}, "failure_penalty"),
        ({"w_latency": -1.0}, "w_latency"),
        ({"busy_threshold": float("nan")}, "busy_threshold"),
        ({"observation": "pixels"}, "observation"),
        (
            {
                "n_steps": 10_000,
                "task_sizes": (1.0,) * 4,
                "task_deadlines": (1.0,) * 4,
                "task_probs": (0.25,) * 4,
            },
            "observation='features'",
        ),
        ({"ap_rates": 5.0}, "ap_rates"),
    ],
)
def test_bad_params_raise_naming_the_field(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        APSelectionParams(**kwargs)  # type: ignore[arg-type]


def test_bad_params_through_gym_make_raise_value_error() -> None:
    with pytest.raises(ValueError, match="ap_rates"):
        gym.make("twinrl/APSelection-v0", ap_rates=(1e6, -1.0, 3e6, 5e6, 4e6))


@pytest.mark.parametrize("action", [-1, 5, 1.5, "3", None, True, np.array([1])])
def test_invalid_actions_raise_naming_the_valid_range(action: object) -> None:
    env = gym.make("twinrl/APSelection-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action.*\[0, 4\]"):
        env.step(action)


def test_numpy_integer_actions_are_accepted() -> None:
    env = gym.make("twinrl/APSelection-v0")
    env.reset(seed=0)
    env.step(np.int64(2))
    env.step(np.array(3))


def test_step_before_reset_after_termination_and_bad_options_raise() -> None:
    env = APSelectionEnv(**HAND)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    with pytest.raises(RuntimeError, match="reset"):
        env.get_state()
    env.reset(seed=0)
    for _ in range(P.n_steps):
        env.step(0)
    with pytest.raises(RuntimeError, match="terminated"):
        env.step(0)
    for bad in ([0] * 9, [0] * 9 + [2], [0.5] * 10, [-1] + [0] * 9):
        with pytest.raises(ValueError, match="task_classes"):
            env.reset(options={"task_classes": bad})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"tasks": [0] * 10})


def test_set_state_rejects_foreign_state() -> None:
    env = APSelectionEnv(**HAND)
    env.reset(seed=0)
    with pytest.raises(TypeError):
        env.set_state({"t": 0})  # type: ignore[arg-type]
    other = gym.make("twinrl/APSelection-v0").unwrapped
    other.reset(seed=0)
    with pytest.raises(ValueError, match="n_steps"):
        env.set_state(other.get_state())


def test_state_batches_and_exposes_failures_per_element() -> None:
    env = APSelectionEnv(**HAND)
    env.reset(options={"task_classes": [0] * 10})
    env.step(0)
    env.step(0)
    state = env.get_state()  # t = 2, x = 20 m: AP2 is ahead (7 s) so the 1 Mbit task misses
    batch = state.tile(3)
    assert batch.ap_free_at.shape == (3, 3) and batch.item(2).task_classes.shape == (10,)
    nxt, *_ = env.step_batch(batch, np.array([0, 1, 2]))
    assert nxt.last_failed.tolist() == [False, False, True]
    assert nxt.last_outcome.tolist() == [SUCCESS, SUCCESS, DEADLINE_MISS]
