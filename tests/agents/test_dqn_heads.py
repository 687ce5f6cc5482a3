"""DQN's value-decomposition head (``head="sum"``) and branch-shared network, by hand."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("torch")

import twinrl  # noqa: F401  (registers the envs)
from tests.agents.test_dqn import MULTI, bandit, batch, known_q_agent
from twinrl.agents import DQN, DQNConfig, Transitions
from twinrl.errors import ConfigError


def with_head(agent: DQN, head: str) -> DQN:
    """``agent``'s weights in a DQN whose config differs only by ``head``."""
    config = DQNConfig(**{**agent.config.__dict__, "head": head})
    out = DQN(agent.obs_size, agent.action_space, config, rng=0)
    out.load_state_dict(agent.state_dict())
    return out


def test_sum_head_td_target_by_hand() -> None:
    zeros = np.zeros((3, 2))
    t = batch(zeros, np.zeros((3, 2)), [1.0, 1.0, 1.0], zeros, terminated=[False, False, True],
              discount=np.array([np.nan, 0.5, 0.5]))  # fmt: skip
    # double: online argmax per branch = (1, 1) -> target (20, 50), summed 70 (mean head: 35)
    y = with_head(known_q_agent(double=True), "sum").td_target(t).numpy()
    np.testing.assert_allclose(y, [1 + 0.95 * 70, 1 + 0.5 * 70, 1.0], rtol=1e-6)
    # plain max of target per branch = (30, 60), summed 90
    y = with_head(known_q_agent(double=False), "sum").td_target(t).numpy()
    np.testing.assert_allclose(y, [1 + 0.95 * 90, 1 + 0.5 * 90, 1.0], rtol=1e-6)


def test_sum_head_loss_is_huber_of_the_summed_utilities() -> None:
    agent = with_head(known_q_agent(double=True), "sum")
    t = batch(np.zeros((1, 2)), [[1, 2]], [0.0], np.zeros((1, 2)), terminated=[True])
    # Q_0(a=1) + Q_1(a=2) = 3 + 4 = 7, y = 0: Huber(delta 1) = 7 - 0.5 (mean head: 3.0)
    stats = agent.update(t)
    assert stats["loss"] == pytest.approx(6.5) and stats["q_mean"] == pytest.approx(7.0)


def shared_agent() -> DQN:
    """Branch-shared network on blocks of 1 float: input (x_b, one-hot b), hidden = identity,
    output a = input a, so Q_b = (x_b, [b == 0], [b == 1])."""
    config = DQNConfig(hidden=(3,), shared_branches=True, head="sum")
    agent = DQN(2, MULTI, config, rng=0)
    state = agent.state_dict()
    for net in ("online", "target"):
        state[f"{net}.0.weight"] = np.eye(3, dtype=np.float32)
        state[f"{net}.0.bias"] = np.zeros(3, np.float32)
        state[f"{net}.2.weight"] = np.eye(3, dtype=np.float32)
        state[f"{net}.2.bias"] = np.zeros(3, np.float32)
    agent.load_state_dict(state)
    return agent


def test_shared_branches_read_their_block_and_one_hot() -> None:
    agent = shared_agent()
    q = agent.q_values(np.array([2.0, 0.5]))
    np.testing.assert_allclose(q, [[2.0, 1.0, 0.0], [0.5, 0.0, 1.0]])
    assert agent.act(np.array([2.0, 0.5]), explore=False).tolist() == [0, 2]
    # the same block in both branches still gives different values (the one-hot)
    np.testing.assert_allclose(agent.q_values(np.array([0.0, 0.0])), [[0, 1, 0], [0, 0, 1]])
    # next state (0.5, 3): branch 0 picks 1 (value 1), branch 1 picks 0 (value 3): y = 1 + 0.9 * 4
    t = batch([[0.0, 0.0]], [[0, 0]], [1.0], [[0.5, 3.0]], discount=np.array([0.9]))
    np.testing.assert_allclose(agent.td_target(t).numpy(), [1 + 0.9 * 4], rtol=1e-6)


def test_sum_head_learns_a_cooperative_bandit() -> None:
    # the shared reward is the share of branches that hit; each utility learns its own part
    config = DQNConfig(hidden=(16,), lr=1e-2, batch_size=32, learning_starts=32,
                       eps_decay_steps=300, target_update=20, head="sum")  # fmt: skip
    agent = DQN(2, MULTI, config, rng=1)
    bandit(agent, 600, 0, True)
    for c in (0, 1):
        assert np.all(agent.act(np.eye(2)[c], explore=False) == 2 - 2 * c)


def trained(seed: int, **kw: Any) -> DQN:
    config = DQNConfig(hidden=(8,), batch_size=8, learning_starts=8, target_update=5, **kw)
    agent = DQN(4, MULTI, config, rng=seed)
    rng = np.random.default_rng(0)
    for i in range(1, 41):
        agent.begin_iteration(i)
        obs = rng.random(4).astype(np.float32)
        action = agent.act(obs, explore=True)
        agent.learn(Transitions.single(obs, action, float(action.sum()), obs, False))
    return agent


def weights(agent: DQN) -> bytes:
    state = agent.state_dict()
    return b"".join(state[k].tobytes() for k in sorted(state))


def test_determinism_and_checkpoint_round_trip() -> None:
    kw = {"head": "sum", "shared_branches": True}
    assert weights(trained(5, **kw)) == weights(trained(5, **kw))
    assert weights(trained(5, **kw)) != weights(trained(6, **kw))
    a = trained(5, **kw)
    b = DQN(4, MULTI, a.config, rng=99)
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    assert all(isinstance(v, np.ndarray) for v in a.state_dict().values())
    assert weights(a) == weights(b)
    obs = np.linspace(0, 1, 4)
    np.testing.assert_array_equal(a.q_values(obs), b.q_values(obs))
    # a checkpoint of the unshared network does not fit the shared one
    plain = trained(5, head="sum")
    with pytest.raises(ValueError, match=r"online\.2\.weight' has shape \(6, 8\)"):
        b.load_state_dict(plain.state_dict())


def test_bad_options_name_the_value() -> None:
    with pytest.raises(ConfigError, match="head='max'"):
        DQNConfig(head="max")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="shared_branches"):
        DQNConfig(shared_branches="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="5 entries do not split into 2 branches"):
        DQN(5, MULTI, DQNConfig(shared_branches=True), rng=0)
    # an env must declare its observation as one block per branch (MultiUAV: per_uav)
    shared = DQNConfig(hidden=(4,), shared_branches=True)
    with pytest.raises(ConfigError, match=r"observation_blocks=None.*observation='per_uav'"):
        DQN.for_env(gym.make("twinrl/MultiUAV-v0"), shared, rng=0)
    per_uav = gym.make("twinrl/MultiUAV-v0", observation="per_uav")
    assert DQN.for_env(per_uav, shared, rng=0).q_values(per_uav.reset(seed=0)[0]).shape == (4, 5)
    # a Discrete space is one branch: shared_branches is allowed and sees the whole observation
    agent = DQN(3, gym.spaces.Discrete(4), DQNConfig(hidden=(4,), shared_branches=True), rng=0)
    assert agent.q_values(np.zeros(3)).shape == (1, 4)
