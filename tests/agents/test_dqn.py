from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("torch")

import twinrl
from twinrl.agents import DQN, DQNConfig, Transitions
from twinrl.agents.nstep import NStepBuffer
from twinrl.errors import CheckpointError

MULTI = gym.spaces.MultiDiscrete([3, 3])


def batch(obs: Any, action: Any, reward: Any, next_obs: Any, **kw: Any) -> Transitions:
    n = len(reward)
    return Transitions(
        obs=np.asarray(obs, dtype=np.float32),
        action=np.asarray(action, dtype=np.int64),
        reward=np.asarray(reward, dtype=np.float64),
        next_obs=np.asarray(next_obs, dtype=np.float32),
        terminated=np.asarray(kw.get("terminated", [False] * n)),
        next_mask=kw.get("next_mask"),
        source=np.asarray(kw.get("source", [0] * n), dtype=np.int64),
        discount=kw.get("discount"),
    )


def known_q_agent(double: bool) -> DQN:
    """Torso = identity, heads = their bias: Q_b(s, .) is the head bias for s = [0, 0]."""
    agent = DQN(2, MULTI, DQNConfig(hidden=(2,), gamma=0.95, double=double), rng=0)
    state = agent.state_dict()
    for net, bias in (("online", [1, 3, 2, 0, 5, 4]), ("target", [10, 20, 30, 40, 50, 60])):
        state[f"{net}.0.weight"] = np.eye(2, dtype=np.float32)
        state[f"{net}.0.bias"] = np.zeros(2, np.float32)
        state[f"{net}.2.weight"] = np.zeros((6, 2), np.float32)
        state[f"{net}.2.bias"] = np.array(bias, np.float32)
    agent.load_state_dict(state)
    return agent


def test_td_target_by_hand() -> None:
    zeros = np.zeros((4, 2))
    t = batch(
        zeros,
        np.zeros((4, 2)),
        [1.0, 1.0, 1.0, 1.0],
        zeros,
        terminated=[False, False, True, False],
        discount=np.array([np.nan, 0.5, 0.5, np.nan]),
    )
    # double: online argmax per branch = (1, 1) -> target (20, 50), mean 35
    y = known_q_agent(double=True).td_target(t).numpy()
    np.testing.assert_allclose(y, [1 + 0.95 * 35, 1 + 0.5 * 35, 1.0, 1 + 0.95 * 35], rtol=1e-6)
    # plain: max of target per branch = (30, 60), mean 45
    y = known_q_agent(double=False).td_target(t).numpy()
    np.testing.assert_allclose(y, [1 + 0.95 * 45, 1 + 0.5 * 45, 1.0, 1 + 0.95 * 45], rtol=1e-6)
    # no discount at all = the agent's gamma everywhere
    t1 = batch(zeros[:1], [[0, 0]], [2.0], zeros[:1])
    np.testing.assert_allclose(known_q_agent(True).td_target(t1).numpy(), [2 + 0.95 * 35])
    # next_mask forbids action 1 of branch 0: online picks 2 there -> target (30, 50), mean 40
    mask = np.array([[1, 0, 1, 1, 1, 1]], dtype=np.int8)
    t2 = batch(zeros[:1], [[0, 0]], [0.0], zeros[:1], next_mask=mask)
    np.testing.assert_allclose(known_q_agent(True).td_target(t2).numpy(), [0.95 * 40], rtol=1e-6)


def test_loss_is_branch_mean_huber() -> None:
    agent = known_q_agent(double=True)
    t = batch(np.zeros((1, 2)), [[1, 2]], [0.0], np.zeros((1, 2)), terminated=[True])
    # Q_0(a=1) = 3, Q_1(a=2) = 4, y = 0: Huber(delta 1) = |q| - 0.5 -> (2.5 + 3.5) / 2
    assert agent.update(t)["loss"] == pytest.approx(3.0)


def test_n_step_rows_by_hand() -> None:
    nstep = NStepBuffer(3, 0.5)
    s = [np.array([float(i)]) for i in range(10)]
    out = []
    for i, r in enumerate([1.0, 2.0, 4.0, 8.0]):
        out += nstep.push((s[i], i, r, s[i + 1], i == 3, None))
    rows = [(o[0][0], o[1], o[2], o[3][0], o[4], o[6]) for o in out]
    assert rows == [
        (0.0, 0, 1 + 0.5 * 2 + 0.25 * 4, 3.0, False, 0.125),
        (1.0, 1, 2 + 0.5 * 4 + 0.25 * 8, 4.0, True, 0.125),
        (2.0, 2, 4 + 0.5 * 8, 4.0, True, 0.25),
        (3.0, 3, 8.0, 4.0, True, 0.5),
    ]
    # truncation: the next transition does not start where the last one ended -> bootstrap
    assert nstep.push((s[5], 0, 1.0, s[6], False, None)) == []
    assert nstep.push((s[6], 1, 2.0, s[7], False, None)) == []
    out = nstep.push((s[0], 2, 9.0, s[1], False, None))
    rows = [(o[0][0], o[2], o[3][0], o[4], o[6]) for o in out]
    assert rows == [(5.0, 2.0, 7.0, False, 0.25), (6.0, 2.0, 7.0, False, 0.5)]
    assert len(nstep.pending) == 1


def test_agent_stores_n_step_physical_and_twin_as_given() -> None:
    agent = DQN(1, gym.spaces.Discrete(2), DQNConfig(n_step=2, gamma=0.5), rng=0)
    for i, r in enumerate([1.0, 2.0, 4.0]):
        agent.learn(Transitions.single([i], 0, r, [i + 1], i == 2))
    twin = batch([[7.0]], [1], [5.0], [[8.0]], source=[3], discount=np.array([0.25]))
    agent.learn(twin)
    phys = agent.storage.domain(0)
    np.testing.assert_allclose(phys.reward, [1 + 0.5 * 2, 2 + 0.5 * 4, 4.0])
    np.testing.assert_allclose(phys.discount, [0.25, 0.25, 0.5])
    assert phys.terminated.tolist() == [False, True, True]
    stored = agent.storage.domain(1)
    assert stored.reward.tolist() == [5.0] and stored.discount.tolist() == [0.25]


def bandit(agent: DQN, steps: int, seed: int, multi: bool) -> None:
    """Contextual bandit: context c in {0, 1} (one-hot); the best action is 2 - 2c per branch."""
    rng = np.random.default_rng(seed)
    for i in range(1, steps + 1):
        c = int(rng.integers(2))
        obs = np.eye(2, dtype=np.float32)[c]
        agent.begin_iteration(i)
        action = agent.act(obs, explore=True)
        hit = np.asarray(action) == 2 - 2 * c
        reward = float(hit.mean()) + 0.1 * float(rng.normal())
        agent.learn(Transitions.single(obs, action, reward, obs, True))


@pytest.mark.parametrize("multi", [False, True])
def test_learns_contextual_bandit_optimum(multi: bool) -> None:
    space = MULTI if multi else gym.spaces.Discrete(3)
    config = DQNConfig(
        hidden=(16,), lr=1e-2, batch_size=32, learning_starts=32, eps_decay_steps=300,
        target_update=20,
    )  # fmt: skip
    agent = DQN(2, space, config, rng=1)
    bandit(agent, 600, 0, multi)
    for c in (0, 1):
        action = agent.act(np.eye(2)[c], explore=False)
        assert np.all(np.asarray(action) == 2 - 2 * c)


def small_config(**kw: Any) -> DQNConfig:
    return DQNConfig(hidden=(8,), batch_size=8, learning_starts=8, target_update=5, **kw)


def test_save_load_round_trip(tmp_path: Path) -> None:
    a = DQN(2, MULTI, small_config(n_step=3), rng=3)
    bandit(a, 50, 0, True)
    a.learn(Transitions.single([1, 0], [0, 0], 1.0, [0, 1], False))  # leaves pending n-step rows
    a.save(tmp_path / "a.npz")
    b = DQN(2, MULTI, small_config(n_step=3), rng=99)
    b.load(tmp_path / "a.npz")
    obs = np.array([0.3, 0.7])
    assert np.array_equal(a.act(obs, explore=False), b.act(obs, explore=False))
    for _ in range(5):
        assert np.array_equal(a.act(obs, explore=True), b.act(obs, explore=True))
    bandit(a, 30, 1, True)
    bandit(b, 30, 1, True)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_bad_checkpoint_raises(tmp_path: Path) -> None:
    agent = DQN(2, MULTI, small_config(), rng=0)
    state = agent.state_dict()
    missing = {k: v for k, v in state.items() if k != "target.2.bias"}
    with pytest.raises(ValueError, match=r"target\.2\.bias"):
        agent.load_state_dict(missing)
    wrong = {**state, "online.0.weight": np.zeros((3, 3), np.float32)}
    with pytest.raises(ValueError, match=r"online\.0\.weight"):
        agent.load_state_dict(wrong)
    other = DQN(3, MULTI, small_config(), rng=0)
    other.save(tmp_path / "other.npz")
    with pytest.raises(CheckpointError, match=r"observation space Box\(-inf, inf, \(3,\)"):
        agent.load(tmp_path / "other.npz")
    np.savez(tmp_path / "plain.npz", **agent.state_dict())  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="not written by save_checkpoint"):
        agent.load(tmp_path / "plain.npz")


def test_determinism() -> None:
    def params(seed: int) -> bytes:
        agent = DQN(2, MULTI, small_config(), rng=seed)
        bandit(agent, 60, 0, True)
        state = agent.state_dict()
        return b"".join(state[k].tobytes() for k in sorted(state) if k.startswith("online."))

    assert params(5) == params(5)
    assert params(5) != params(6)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hidden", ()),
        ("lr", 0.0),
        ("gamma", 1.5),
        ("batch_size", 0),
        ("learning_starts", 60_000),
        ("train_every", 0),
        ("target_update", 0),
        ("eps_end", -0.1),
        ("eps_decay_steps", 0),
        ("n_step", 0),
        ("twin_share", 1.5),
    ],
)
def test_config_validation(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        DQNConfig(**{field: value})


def test_config_types() -> None:
    with pytest.raises(TypeError, match="batch_size"):
        DQNConfig(batch_size=64.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="double"):
        DQNConfig(double=1)  # type: ignore[arg-type]


def test_action_spaces_and_masks() -> None:
    disc = DQN(3, gym.spaces.Discrete(4), small_config(), rng=0)
    action = disc.act(np.zeros(3), explore=False)
    assert isinstance(action, int)
    mask = np.array([0, 0, 1, 0], dtype=np.int8)
    assert disc.act(np.zeros(3), explore=False, mask=mask) == 2
    disc.begin_iteration(1)  # epsilon 1: random among the valid ones
    assert {disc.act(np.zeros(3), explore=True, mask=mask) for _ in range(10)} == {2}
    with pytest.raises(ValueError, match="no action"):
        disc.act(np.zeros(3), explore=False, mask=np.zeros(4, np.int8))
    multi = DQN(3, gym.spaces.MultiDiscrete([5] * 4), small_config(), rng=0)
    action = multi.act(np.zeros(3), explore=True)
    assert isinstance(action, np.ndarray) and action.dtype == np.int64 and action.shape == (4,)
    with pytest.raises(ValueError, match="equal sizes"):
        DQN(3, gym.spaces.MultiDiscrete([2, 3]), rng=0)
    with pytest.raises(TypeError, match="Discrete"):
        DQN(3, gym.spaces.Box(0, 1, (2,)), rng=0)
    with pytest.raises(ValueError, match="entries"):
        multi.act(np.zeros(5), explore=False)


def test_epsilon_schedule() -> None:
    agent = DQN(1, gym.spaces.Discrete(2), DQNConfig(eps_decay_steps=100), rng=0)
    agent.begin_iteration(1)
    assert agent.epsilon == 1.0
    agent.begin_iteration(51)
    assert agent.epsilon == pytest.approx(0.525)
    agent.begin_iteration(10_000)
    assert agent.epsilon == pytest.approx(0.05)


def test_twin_share_mixture() -> None:
    agent = DQN(1, gym.spaces.Discrete(2), small_config(twin_share=0.5), rng=0)
    assert agent._mix() == {0: 1.0}
    agent.learn(batch([[0.0]] * 4, [0] * 4, [0.0] * 4, [[0.0]] * 4, source=[1, 2, 3, 4]))
    assert agent.storage.sizes.tolist() == [0, 4]
    assert agent._mix() == {0: 0.5, "twin": 0.5}
    assert agent.gradient_steps == 0  # twin-only calls never trigger updates


def test_trains_on_multi_uav() -> None:
    env = gym.make("twinrl/MultiUAV-v0")
    agent = DQN.for_env(env, DQNConfig(learning_starts=64, n_step=3), rng=0)
    run = twinrl.train(env, agent, budget=300, seed=0, evaluate=False)
    assert run.iterations == 300 and agent.gradient_steps > 200
    stats = agent.update(agent.storage.sample(64))
    assert np.isfinite(stats["loss"]) and np.isfinite(stats["q_mean"])


def test_agents_import_without_torch_import() -> None:
    import subprocess
    import sys

    code = "import sys, twinrl.agents; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_greedy_batch_equals_act_row_by_row() -> None:
    for space in (MULTI, gym.spaces.Discrete(4)):
        agent = DQN(3, space, DQNConfig(hidden=(8,)), rng=1)
        obs = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
        rows = [agent.act(o, explore=False) for o in obs]
        np.testing.assert_array_equal(agent.greedy_batch(obs), np.array(rows))
