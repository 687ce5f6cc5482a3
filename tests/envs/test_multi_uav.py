from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import twinrl  # noqa: F401  (registers the envs)
from twinrl.envs import ENV_IDS
from twinrl.envs import uav_kernels as k
from twinrl.envs.multi_uav import (
    HIDDEN,
    MultiUAVEnv,
    MultiUAVParams,
    MultiUAVState,
    decode_action,
    encode_action,
    observe,
    reseed,
    step_batch,
    user_rates,
)
from twinrl.testing import check_twin_matches, check_twinnable
from twinrl.twin import DigitalTwin
from twinrl.twin.backends import VectorizedBackend

ENV_ID = "twinrl/MultiUAV-v0"


def make(**kwargs: Any) -> MultiUAVEnv:
    return gym.make(ENV_ID, **kwargs).unwrapped  # type: ignore[return-value]


def state_at(params: MultiUAVParams, uavs: Any, users: Any) -> MultiUAVState:
    users = np.asarray(users, dtype=np.float64)
    return MultiUAVState(
        uav_pos=np.asarray(uavs, dtype=np.float64),
        user_pos=users,
        user_vel=np.zeros_like(users),
        step=np.array(0),
        noise_key=np.array(12345, dtype=np.uint64),
    )


# Friis by hand, defaults (p = 0.1 W, f = 2.4 GHz, B = 1 MHz, N0 = -174 dBm/Hz, height 5 m):
# UAV over (0, 0), user at (12, 0): d = sqrt(12^2 + 5^2) = 13 m; lambda = c / f = 0.124913524 m;
# lambda / (4 pi d) = 7.646386e-4; P_r = 0.1 * (7.646386e-4)^2 = 5.846723e-8 W;
# N0 B = 10^(-20.4) W/Hz * 1e6 Hz = 3.981072e-15 W; SNR = 1.468630e7;
# rate = 1e6 * log2(1 + 1.468630e7) = 23.807968 Mbit/s.
HAND_RATE = 23.807968e6


def test_friis_rate_matches_hand_computed_value() -> None:
    p = MultiUAVParams()
    assert p.noise_psd == pytest.approx(3.981072e-21, rel=1e-6)
    direct = k.friis_rate(
        np.array(13.0), tx_power=0.1, wavelength=p.wavelength, bandwidth=1e6,
        noise_psd=p.noise_psd,
    )  # fmt: skip
    assert float(direct) == pytest.approx(HAND_RATE, rel=1e-7)
    rates, serving = user_rates(p, np.zeros((4, 2)), np.array([[12.0, 0.0]] * 10))
    np.testing.assert_allclose(rates, HAND_RATE, rtol=1e-7)
    assert np.all(serving == 0)  # all four UAVs tie; argmax picks the first


def test_each_user_is_served_by_the_uav_with_the_highest_rate() -> None:
    p = MultiUAVParams(n_users=5)
    uavs = np.array([[10.0, 10.0], [90.0, 10.0], [10.0, 90.0], [90.0, 90.0]])
    users = np.array([[12.0, 10.0], [88.0, 12.0], [15.0, 85.0], [80.0, 80.0], [50.0, 49.0]])
    rates, serving = user_rates(p, uavs, users)
    np.testing.assert_array_equal(serving, [0, 1, 2, 3, 0])
    # Independent reference: the best single-UAV rate per user.
    single = np.stack([user_rates(p, uavs[m : m + 1], users)[0] for m in range(4)])
    np.testing.assert_array_equal(rates, single.max(axis=0))
    # user 0 is 2 m from UAV 0: d = sqrt(4 + 25)
    d0 = np.sqrt(29.0)
    expected0 = 1e6 * np.log2(
        1 + 0.1 * (p.wavelength / (4 * np.pi * d0)) ** 2 / (p.noise_psd * 1e6)
    )
    assert rates[0] == pytest.approx(expected0, rel=1e-12)


def test_uav_moves_are_clipped_to_the_area() -> None:
    env = make()
    env.reset(seed=0)
    env.step(np.array([2, 4, 1, 3]))  # -x, -y from the corner (0, 0) stay put
    np.testing.assert_array_equal(env.get_state().uav_pos, [[0, 0], [0, 0], [8, 0], [0, 8]])
    env = make(hangar=(96.0, 100.0))
    env.reset(seed=0)
    env.step(np.array([1, 3, 2, 0]))
    np.testing.assert_array_equal(
        env.get_state().uav_pos, [[100, 100], [96, 100], [88, 100], [96, 100]]
    )


def test_user_mobility_stays_in_the_area_and_moves() -> None:
    p = MultiUAVParams(area_side=30.0, user_speed_std=20.0, user_memory=0.5)
    env = make(area_side=30.0, user_speed_std=20.0, user_memory=0.5)
    env.reset(seed=1)
    batch = reseed(env.get_state().tile(16), np.arange(16, dtype=np.uint64))
    start = batch.user_pos.copy()
    for _ in range(200):
        batch, _, _ = step_batch(p, batch, np.zeros((16, 4), dtype=np.int64))
        assert np.all((batch.user_pos >= 0.0) & (batch.user_pos <= 30.0))
    assert not np.allclose(batch.user_pos, start)
    # Default speeds: mean user speed about sigma sqrt(pi / 2) = 1.25 m/s.
    env = make()
    env.reset(seed=2)
    batch = reseed(env.get_state().tile(256), np.arange(256, dtype=np.uint64))
    nxt, _, _ = step_batch(env.params, batch, np.zeros((256, 4), dtype=np.int64))
    speed = np.linalg.norm(nxt.user_vel, axis=-1).mean()
    assert 1.0 < speed < 1.5


def test_twin_rollout_on_a_tiled_state_equals_the_physical_env() -> None:
    env = make()
    env.reset(seed=7)
    batch = env.get_state().tile(3)
    rng = np.random.default_rng(0)
    for _ in range(12):
        action = rng.integers(0, 5, size=4)
        batch, obs, reward, terminated, truncated, mask, _ = env.step_batch(
            batch, np.tile(action, (3, 1))
        )
        assert not truncated.any()
        phys_obs, phys_reward, _, _, info = env.step(action)
        for i in range(3):
            assert obs[i].tobytes() == phys_obs.tobytes()
            assert reward[i] == phys_reward == info["mean_rate"]
        assert not terminated.any() and mask is None
    assert int(batch.step[0]) == 12


def test_twin_domains_with_other_keys_predict_different_futures() -> None:
    env = make()
    env.reset(seed=7)
    batch = env.get_state().tile(4)
    keys = batch.noise_key.copy()
    keys[2:] += np.uint64(1)
    batch = reseed(batch, keys)
    for _ in range(5):
        batch, obs, *_ = env.step_batch(batch, np.zeros((4, 4), dtype=np.int64))
    assert obs[0].tobytes() == obs[1].tobytes()
    assert obs[2].tobytes() == obs[3].tobytes() != obs[0].tobytes()


def test_get_set_state_round_trip_and_snapshot_immutable() -> None:
    env = make()
    env.reset(seed=3)
    env.step(np.array([1, 1, 3, 0]))
    snap = env.get_state()
    with pytest.raises(ValueError):
        snap.uav_pos[0, 0] = 50.0  # read-only snapshot
    a = [env.step(np.array([1, 2, 3, 4])) for _ in range(5)]
    env.set_state(snap)
    b = [env.step(np.array([1, 2, 3, 4])) for _ in range(5)]
    for x, y in zip(a, b, strict=True):
        assert x[0].tobytes() == y[0].tobytes() and x[1] == y[1]
    assert int(snap.step) == 1
    with pytest.raises(TypeError, match="MultiUAVState"):
        env.set_state("state")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_uavs"):
        make(n_uavs=3).set_state(snap)


def test_step_batch_never_changes_the_input_state() -> None:
    env = make()
    env.reset(seed=4)
    snap = env.get_state()
    before = [np.array(getattr(snap, f)).tobytes() for f in ("uav_pos", "user_pos", "step")]
    env.step_batch(snap.tile(8), np.ones((8, 4), dtype=np.int64))
    after = [np.array(getattr(snap, f)).tobytes() for f in ("uav_pos", "user_pos", "step")]
    assert before == after


def test_same_seed_gives_identical_bytes_other_seed_differs() -> None:
    def episode(seed: int) -> bytes:
        env = make()
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        out = [obs.tobytes()]
        truncated = False
        while not truncated:
            obs, reward, _, truncated, _ = env.step(rng.integers(0, 5, size=4))
            out += [obs.tobytes(), np.float64(reward).tobytes()]
        obs, _ = env.reset()  # the next episode comes from the same seeded stream
        return b"".join([*out, obs.tobytes()])

    assert episode(5) == episode(5)
    assert episode(5) != episode(6)


def test_episode_is_truncated_after_episode_steps() -> None:
    env = make(episode_steps=3)
    assert env.episode_steps == 3
    env.reset(seed=0)
    flags = [env.step(np.zeros(4, dtype=np.int64))[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4, dtype=np.int64))


@pytest.mark.parametrize("action_space", ["multi", "flat"])
@pytest.mark.parametrize("sensing_radius", [None, 20.0])
@pytest.mark.parametrize("observation", ["absolute", "per_uav"])
def test_passes_gymnasium_check_env(
    action_space: str, sensing_radius: float | None, observation: str
) -> None:
    env = gym.make(
        ENV_ID, action_space=action_space, sensing_radius=sensing_radius, observation=observation
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_registered_env_passes_check_env_with_defaults(env_id: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(env_id).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("backend", ["vectorized", "serial"])
@pytest.mark.parametrize(
    ("sensing_radius", "observation"), [(None, "absolute"), (30.0, "absolute"), (30.0, "per_uav")]
)
def test_flat_env_is_twinnable_and_twins_match(
    backend: str, sensing_radius: float | None, observation: str
) -> None:
    # The conformance kit samples integer actions, hence the flat action space.
    env = gym.make(ENV_ID, action_space="flat", sensing_radius=sensing_radius, episode_steps=20,
                   observation=observation)  # fmt: skip
    check_twinnable(env, steps=25)
    check_twin_matches(env, DigitalTwin(env, backend=backend), steps=45)


def test_vectorized_backend_steps_distinct_states_like_the_env() -> None:
    env = make(action_space="flat")
    states, expected = [], []
    for seed in range(3):
        env.reset(seed=seed)
        states.append(env.get_state())
        expected.append(env.step(seed * 7)[0])
        env.set_state(states[-1])
    out = VectorizedBackend(env).step(states, np.array([0, 7, 14]))
    for i in range(3):
        assert out.next_obs[i].tobytes() == expected[i].tobytes()
        assert isinstance(out.states[i], MultiUAVState)


def test_flat_and_multi_actions_agree() -> None:
    p = MultiUAVParams(action_space="flat")
    flat = np.arange(625)
    moves = decode_action(p, flat)
    assert moves.shape == (625, 4) and len({tuple(m) for m in moves}) == 625
    np.testing.assert_array_equal(encode_action(p, moves), flat)
    np.testing.assert_array_equal(decode_action(p, 1 + 5 * 2 + 25 * 3 + 125 * 4), [1, 2, 3, 4])
    flat_env, multi_env = make(action_space="flat"), make()
    flat_env.reset(seed=9)
    multi_env.reset(seed=9)
    batch = flat_env.get_state().tile(625)
    a = flat_env.step_batch(batch, flat)
    b = multi_env.step_batch(batch, moves)
    assert a[1].tobytes() == b[1].tobytes() and a[2].tobytes() == b[2].tobytes()


def test_sensing_radius_hides_far_users_and_global_view_does_not() -> None:
    p = MultiUAVParams(n_users=2, sensing_radius=10.0)
    state = state_at(p, np.zeros((4, 2)), [[3.0, 4.0], [50.0, 60.0]])  # 5 m and 78 m away
    obs = observe(p, state)
    assert obs.shape == (p.obs_size,) == (8 + 4 + 2,)
    np.testing.assert_array_equal(obs[8:12], np.float32([0.03, 0.04, HIDDEN, HIDDEN]))
    np.testing.assert_array_equal(obs[12:], [1.0, 0.0])
    full = observe(p, state, global_view=True)
    np.testing.assert_array_equal(full[8:12], np.float32([0.03, 0.04, 0.5, 0.6]))
    np.testing.assert_array_equal(full[12:], [1.0, 1.0])
    plain = MultiUAVParams(n_users=2)
    np.testing.assert_array_equal(observe(plain, state)[8:], np.float32([0.03, 0.04, 0.5, 0.6]))
    batched = observe(p, state.tile(3))
    assert batched.shape == (3, 14) and (batched == obs).all()


def test_reset_user_positions_option() -> None:
    env = make(n_users=2)
    users = np.array([[1.0, 2.0], [3.0, 4.0]])
    _, info = env.reset(seed=0, options={"user_positions": users})
    np.testing.assert_array_equal(env.get_state().user_pos, users)
    assert info["mean_rate"] == pytest.approx(info["rate_per_user"].mean())
    with pytest.raises(ValueError, match="user_positions"):
        env.reset(options={"user_positions": users[:1]})
    with pytest.raises(ValueError, match="user_positions"):
        env.reset(options={"user_positions": users + 200.0})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"uav_positions": users})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_users": 0}, "n_users"),
        ({"n_uavs": 0}, "n_uavs"),
        ({"area_side": 0.0}, "area_side"),
        ({"area_side": float("nan")}, "area_side"),
        ({"episode_steps": 0}, "episode_steps"),
        ({"tx_power": -1.0}, "tx_power"),
        ({"bandwidth": 0.0}, "bandwidth"),
        ({"carrier_frequency": float("inf")}, "carrier_frequency"),
        ({"uav_height": 0.0}, "uav_height"),
        ({"uav_speed": -8.0}, "uav_speed"),
        ({"slot": 0.0}, "slot"),
        ({"user_memory": 1.5}, "user_memory"),
        ({"user_speed_std": -1.0}, "user_speed_std"),
        ({"hangar": (0.0, 150.0)}, r"hangar\[1\]"),
        ({"hangar": (1.0,)}, "hangar"),
        ({"sensing_radius": 0.0}, "sensing_radius"),
        ({"reward_centre": float("nan")}, "reward_centre"),
        ({"reward_centre": float("inf")}, "reward_centre"),
        ({"action_space": "box"}, "action_space"),
        ({"observation": "relative"}, "observation='relative'"),
        ({"action_space": "flat", "n_uavs": 9}, "n_uavs"),
    ],
)
def test_bad_params_raise_value_error_naming_the_field(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MultiUAVParams(**kwargs)


def test_non_integer_counts_raise_type_error() -> None:
    with pytest.raises(TypeError, match="n_users"):
        MultiUAVParams(n_users=2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "action",
    [[0, 0, 0, 5], [-1, 0, 0, 0], [0, 0, 0], [[0, 0, 0, 0]], [0.0, 0.0, 0.0, 0.0], 3, "3", None,
     [True, False, True, False]],
)  # fmt: skip
def test_invalid_multi_actions_raise(action: Any) -> None:
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


@pytest.mark.parametrize("action", [625, -1, [1, 2], 1.5, True, None])
def test_invalid_flat_actions_raise(action: Any) -> None:
    env = make(action_space="flat")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


def test_invalid_batched_actions_raise() -> None:
    env = make()
    env.reset(seed=0)
    batch = env.get_state().tile(2)
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        env.step_batch(batch, np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="outside"):
        env.step_batch(batch, np.full((2, 4), 5))


def test_reward_centre_centres_the_reward_only() -> None:
    plain, centred = MultiUAVEnv(), MultiUAVEnv(reward_centre=20.0)
    plain.reset(seed=4)
    centred.reset(seed=4)
    for action in ([1, 3, 0, 2], [0, 0, 4, 1]):
        o1, r1, _, _, i1 = plain.step(np.array(action))
        o2, r2, _, _, i2 = centred.step(np.array(action))
        np.testing.assert_array_equal(o1, o2)
        assert r2 == pytest.approx(r1 - 20.0) and i2["mean_rate"] == i1["mean_rate"] == r1
    state = centred.get_state().tile(2)
    twin_reward = centred.step_batch(state, np.zeros((2, 4), dtype=np.int64))[2]
    np.testing.assert_allclose(
        twin_reward + 20.0, plain.step_batch(state, np.zeros((2, 4), np.int64))[2]
    )
