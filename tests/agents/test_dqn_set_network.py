"""DQN's per-action set network (``DQNConfig.item_features``) and masked batched greedy actions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("torch")

import twinrl  # noqa: F401  (registers the envs)
from twinrl.agents import DQN, DQNConfig
from twinrl.errors import ConfigError
from twinrl.twin.rollout import greedy_policy

N, F, G = 5, 3, 2


def _agent(seed: int = 0) -> DQN:
    return DQN(N * F + G, gym.spaces.Discrete(N), DQNConfig(hidden=(16,), item_features=F),
               rng=seed)  # fmt: skip


def test_permuting_the_task_blocks_permutes_the_values() -> None:
    agent = _agent()
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(4, N * F + G)).astype(np.float32)
    perm = rng.permutation(N)
    permuted = np.concatenate([obs[:, : N * F].reshape(4, N, F)[:, perm].reshape(4, -1),
                               obs[:, N * F :]], axis=1)  # fmt: skip
    q, q_perm = agent.q_values(obs)[:, 0], agent.q_values(permuted)[:, 0]
    np.testing.assert_allclose(q_perm, q[:, perm], rtol=1e-5, atol=1e-6)
    other = obs.copy()
    other[:, -G:] += 1.0  # the global entries reach every value
    assert not np.allclose(agent.q_values(other), agent.q_values(obs))


def test_one_scorer_whatever_the_number_of_actions() -> None:
    small = _agent().state_dict()
    large = DQN(9 * F + G, gym.spaces.Discrete(9), DQNConfig(hidden=(16,), item_features=F),
                rng=0).state_dict()  # fmt: skip
    assert {k: v.shape for k, v in small.items()} == {k: v.shape for k, v in large.items()}


def test_masked_greedy_batch_equals_act_row_by_row() -> None:
    agent = _agent(1)
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(6, N * F + G)).astype(np.float32)
    masks = [(rng.random(N) < 0.5).astype(np.int8) for _ in range(6)]
    for m in masks:
        m[rng.integers(N)] = 1
    masks[2] = None  # type: ignore[call-overload]
    rows = [agent.act(o, explore=False, mask=m) for o, m in zip(obs, masks, strict=True)]
    np.testing.assert_array_equal(agent.greedy_batch(obs, masks), rows)
    np.testing.assert_array_equal(greedy_policy(agent)(list(obs), masks), rows)
    for action, m in zip(rows, masks, strict=True):
        assert m is None or m[action] == 1


def test_the_edge_features_fit_the_set_network() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=6, formulation="sequential",
                   observation="features")  # fmt: skip
    agent = DQN.for_env(env, DQNConfig(hidden=(8,), item_features=7), rng=0)
    obs, info = env.reset(seed=0)
    assert info["action_mask"][agent.act(obs, explore=False, mask=info["action_mask"])] == 1


def test_bad_set_network_settings_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="item_features"):
        DQNConfig(item_features=-1)
    with pytest.raises(ValueError, match=r"item_features=4 needs observations of at least 5 x 4"):
        DQN(N * F + G, gym.spaces.Discrete(N), DQNConfig(hidden=(8,), item_features=4), rng=0)
    with pytest.raises(ValueError, match="Discrete action space"):
        DQN(12, gym.spaces.MultiDiscrete([3, 3]), DQNConfig(hidden=(8,), item_features=2), rng=0)


def test_the_set_network_and_shared_branches_are_refused_together() -> None:
    config = DQNConfig(hidden=(8,), item_features=F, shared_branches=True)
    with pytest.raises(ConfigError, match="different network shapes"):
        DQN(N * F + G, gym.spaces.Discrete(N), config, rng=0)


def test_a_dueling_head_on_shared_branches_is_a_dueling_head_per_branch() -> None:
    import torch

    env = gym.make("twinrl/MultiUAV-v0", observation="per_uav")
    config = DQNConfig(hidden=(8,), shared_branches=True, dueling=True, head="sum")
    agent = DQN.for_env(env, config, rng=0)
    obs, _ = env.reset(seed=0)
    q = agent.q_values(obs)  # (branches, actions)
    net = agent.online
    blocks = torch.as_tensor(np.asarray(obs, np.float32)).view(q.shape[0], -1)
    for b in range(q.shape[0]):  # by hand: V + A - mean A of the branch's block and one-hot
        x = torch.cat([blocks[b], torch.eye(q.shape[0])[b]])[None, :]
        with torch.no_grad():
            h = net.torso(x)
            a, v = net.advantage(h)[0], net.value(h)[0]
        np.testing.assert_allclose(q[b], (v + a - a.mean()).numpy(), rtol=1e-5, atol=1e-6)
    assert isinstance(agent.act(obs, explore=False), np.ndarray)
