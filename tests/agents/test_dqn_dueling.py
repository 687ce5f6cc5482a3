"""The dueling head of DQN (``DQNConfig(dueling=True)``): Q_b = V + A_b - mean A_b per branch."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from twinrl.agents import DQN, DQNConfig  # noqa: E402
from twinrl.contract import Transitions  # noqa: E402


def test_dueling_q_is_value_plus_centred_advantage() -> None:
    agent = DQN(6, gym.spaces.MultiDiscrete([5, 5, 5]), DQNConfig(hidden=(8,), dueling=True), rng=0)
    x = torch.as_tensor(np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32))
    net = agent.online
    with torch.no_grad():
        h = net.torso(x)
        v = net.value(h).numpy()
        a = net.advantage(h).numpy().reshape(4, 3, 5)
        q = agent.q_values(x.numpy())
    np.testing.assert_allclose(q, v[:, :, None] + a - a.mean(axis=-1, keepdims=True), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    # the advantages are centred: each branch's mean Q is the value
    np.testing.assert_allclose(q.mean(axis=-1), np.repeat(v, 3, axis=1), rtol=1e-5, atol=1e-6)


def test_dueling_agent_learns_saves_and_differs_from_the_plain_network() -> None:
    space = gym.spaces.Discrete(3)
    cfg = DQNConfig(hidden=(8,), dueling=True, learning_starts=1, batch_size=4)
    agent = DQN(2, space, cfg, rng=0)
    for i in range(6):
        agent.learn(
            Transitions.single(np.array([i, 1.0]), i % 3, 1.0, np.array([i + 1, 1.0]), False)
        )
    assert agent.gradient_steps == 6
    copy = DQN(2, space, cfg, rng=5)
    copy.load_state_dict(agent.state_dict())
    obs = np.array([0.5, -1.0])
    np.testing.assert_array_equal(copy.q_values(obs), agent.q_values(obs))
    plain = DQN(2, space, DQNConfig(hidden=(8,)), rng=0)
    assert set(plain.state_dict()) != set(agent.state_dict())
    with pytest.raises(ValueError, match="dueling"):
        DQNConfig(dueling="yes")  # type: ignore[arg-type]
