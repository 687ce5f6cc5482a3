"""The recurrent DQN (``DQNConfig.history`` > 1): it remembers what a memoryless DQN cannot, the
same seed gives the same bytes, its windows survive a checkpoint, and what it cannot do is refused.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from twinrl.agents import DQN, DQNConfig, Transitions
from twinrl.agents.dqn_config import MAX_HISTORY
from twinrl.algorithms import build_algorithm
from twinrl.checkpoint import manifest_for
from twinrl.errors import CheckpointError, ConfigError, ConfigTypeError
from twinrl.training import greedy_return, train
from twinrl.twin import DigitalTwin, greedy_policy

pytest.importorskip("torch")


class CueEnv(gym.Env[np.ndarray, int]):
    """A cue (one of two) is shown at the first step only; the last of ``length`` steps pays +1
    if its action names the cue. The optimum is 1; a memoryless policy sees the same observation
    at the last step whatever the cue, so it gets 0.5 in expectation at best."""

    def __init__(self, length: int = 3) -> None:
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2 + length,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def _obs(self) -> np.ndarray:
        obs = np.zeros(2 + self.length, np.float32)
        if self.t == 0:
            obs[self.cue] = 1.0
        obs[2 + self.t] = 1.0  # the step, so every step but the first looks the same either cue
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.t, self.cue = 0, int(self.np_random.integers(2))
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        last = self.t == self.length - 1
        reward = float(last and int(action) == self.cue)
        self.t += 1
        obs = np.zeros(2 + self.length, np.float32) if last else self._obs()
        return obs, reward, last, False, {}


CFG = DQNConfig(hidden=(16,), lr=5e-3, gamma=0.9, batch_size=32, learning_starts=64,
                target_update=50, eps_decay_steps=600, buffer_capacity=2000)  # fmt: skip


def _trained(history: int, budget: int = 1000, seed: int = 0) -> DQN:
    agent = DQN.for_env(CueEnv(), DQNConfig(**{**asdict(CFG), "history": history}), rng=seed)
    train(CueEnv(), agent, budget=budget, seed=seed, evaluate=False)
    return agent


def _greedy_mean_return(agent: DQN, episodes: int = 200, seed: int = 123) -> float:
    env, total = CueEnv(), 0.0
    obs, _ = env.reset(seed=seed)
    for _ in range(episodes):
        agent.begin_episode()
        done = False
        while not done:
            obs, reward, done, _, _ = env.step(agent.act(obs, explore=False))
            total += reward
        obs, _ = env.reset()
    return total / episodes


def test_recurrent_dqn_remembers_the_cue_a_plain_dqn_cannot() -> None:
    recurrent = _trained(history=3)
    assert _greedy_mean_return(recurrent) >= 0.95  # optimum 1
    plain = _trained(history=1)
    assert _greedy_mean_return(plain) <= 0.6  # memoryless: 0.5 in expectation at best
    # the twin's greedy evaluation builds its own windows (one trajectory from a fresh episode)
    env = CueEnv()
    obs, _ = env.reset(seed=7)
    twin = DigitalTwin(env)
    assert greedy_return(twin, recurrent, obs, None, twin.capture(env)) == 1.0


def test_windows_follow_each_trajectory_and_restart_at_episode_ends() -> None:
    agent = DQN(2, gym.spaces.Discrete(2), DQNConfig(history=3, hidden=(4,)), rng=0)
    w = agent.windows
    assert w is not None and agent.input_size == 3 * 3
    a, b, c = (np.array(v, np.float32) for v in ([1, 0], [0, 1], [1, 1]))
    for obs in (a, c):  # two slots (e.g. two free-running domains), then one row each
        agent.act(obs, explore=True)
    batch = Transitions(np.stack([a, c]), np.array([0, 1]), np.zeros(2), np.stack([b, a]),
                        np.array([False, True]), None, np.zeros(2, np.int64))  # fmt: skip
    agent.learn(batch)
    stored = agent.storage.state_dict()["buffer.obs"].reshape(-1, 9)[:2]  # physical, in order
    zeros = [0.0, 0.0, 0.0]
    assert np.array_equal(stored, [[*zeros, *zeros, 1, 0, 1], [*zeros, *zeros, 1, 1, 1]])
    assert np.array_equal(w.slots[0], [zeros, [1, 0, 1], [0, 1, 1]])  # a, then b
    assert w.slots[1] is None  # terminated: its next observation starts a fresh window
    assert np.array_equal(w.for_act(b), w.slots[0])  # slot 0 goes on with b
    assert np.array_equal(w.for_act(b), w.fresh(b))  # slot 1 starts afresh
    agent.begin_episode()  # greedy acting: one window, extended act by act
    agent.act(a, explore=False)
    agent.act(b, explore=False)
    assert np.array_equal(w.greedy, [zeros, [1, 0, 1], [0, 1, 1]])
    assert len(w.rows(batch.rows(slice(0, 0)))) == 0  # an empty batch changes nothing
    policy = greedy_policy(agent)
    policy([a, b], [None, None])
    with pytest.raises(ConfigError, match="one trajectory at a time"):
        policy([a], [None])


def _run(seed: int) -> DQN:
    return _trained(history=2, budget=150, seed=seed)


def test_same_seed_same_bytes() -> None:
    first, second = _run(4).state_dict(), _run(4).state_dict()
    assert first.keys() == second.keys()
    assert all(first[k].tobytes() == second[k].tobytes() for k in first)
    other = _run(5).state_dict()
    assert any(first[k].tobytes() != other[k].tobytes() for k in first if k.startswith("online"))


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=np.asarray(a).dtype.kind == "f"))


def test_state_dict_and_checkpoint_round_trip(tmp_path: Path) -> None:
    agent = _trained(history=3, budget=100, seed=1)
    env = CueEnv()
    obs, _ = env.reset(seed=3)
    agent.act(obs, explore=True)  # mid-episode: slot 0 holds a live window after learning
    next_obs, reward, terminated, _, _ = env.step(1)
    agent.learn(Transitions.single(obs, 1, reward, next_obs, terminated, None))
    copy = DQN.for_env(CueEnv(), agent.config, rng=99)
    copy.load_state_dict(agent.state_dict())
    window = agent.windows.for_act(next_obs).reshape(1, -1)  # type: ignore[union-attr]
    assert np.array_equal(copy.q_values(window), agent.q_values(window))
    agent.windows.acted.clear()  # type: ignore[union-attr]
    path = tmp_path / "recurrent.npz"
    agent.save(path)
    restored = DQN.for_env(CueEnv(), agent.config, rng=99)
    restored.load(path)
    full, back = agent.full_state_dict(), restored.full_state_dict()
    assert full.keys() == back.keys() and {"history.windows", "history.live"} <= set(full)
    assert all(_same(full[k], back[k]) for k in full)
    # both go on identically: the restored one continues the same window
    for dqn in (agent, restored):
        dqn.act(next_obs, explore=True)
        dqn.learn(Transitions.single(next_obs, 0, 0.0, next_obs * 0, True, None))
    after, back = agent.full_state_dict(), restored.full_state_dict()
    assert all(_same(after[k], back[k]) for k in after)
    bad = dict(full)
    bad["history.windows"] = full["history.windows"][..., :-1]  # another observation size
    with pytest.raises(CheckpointError, match=r"history\.windows"):
        restored.load_full_state_dict(bad)
    plain = DQN.for_env(CueEnv(), CFG, rng=0)
    with pytest.raises(CheckpointError):
        plain.load(path)  # another config: the manifest differs


def test_history_one_keeps_the_manifest_and_checkpoint_of_before() -> None:
    agent = DQN.for_env(CueEnv(), CFG, rng=0)
    assert agent.windows is None and agent.input_size == agent.obs_size
    before = {k: v for k, v in asdict(CFG).items() if k != "history"}
    observation = gym.spaces.Box(-np.inf, np.inf, shape=(agent.obs_size,), dtype=np.float32)
    assert agent.manifest() == manifest_for("dqn", before, observation, agent.action_space)
    assert not any(k.startswith("history.") for k in agent.full_state_dict())


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ConfigError), (-2, ConfigError), (MAX_HISTORY + 1, ConfigError), (True, ConfigTypeError),
     (2.0, ConfigTypeError), ("3", ConfigTypeError)],
)  # fmt: skip
def test_bad_history_values_are_refused(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="history"):
        DQNConfig(history=value)


@pytest.mark.parametrize(
    ("option", "value", "alternative"),
    [("shared_branches", True, "shared_branches=false"), ("item_features", 7, "item_features=0"),
     ("dueling", True, "dueling=false")],
)  # fmt: skip
def test_unsupported_combinations_are_refused(option: str, value: Any, alternative: str) -> None:
    with pytest.raises(ConfigError, match=rf"history=4.*{option}.*{alternative}"):
        DQNConfig(history=4, **{option: value})


def test_twin_rows_and_predictive_targets_are_refused() -> None:
    agent = DQN.for_env(CueEnv(), DQNConfig(history=2, hidden=(4,)), rng=0)
    o = np.zeros(5, np.float32)
    twin_row = Transitions.single(o, 0, 0.0, o, False, None)._replace(source=np.array([1]))
    with pytest.raises(ConfigError, match="twin row"):
        agent.learn(twin_row)
    with pytest.raises(ConfigError, match=r"dt-dqn.*history=2"):
        build_algorithm("dt-dqn", CueEnv(), 0, agent_config={"history": 2})
    for bad, match in ((1, "recurrent=1"), (-1, "recurrent"), (True, "recurrent")):
        with pytest.raises(ConfigError, match=match):
            build_algorithm("dt-diff-dqn", CueEnv(), 0, recurrent=bad)
    with pytest.raises(ConfigError, match=r"agent\.history"):
        build_algorithm("dqn", CueEnv(), 0, recurrent=3)
    with pytest.raises(ConfigError, match=r"dueling.*recurrent=3"):
        build_algorithm("dt-diff-dqn", CueEnv(), 0, agent_config={"history": 3})
    agent, _ = build_algorithm("nstep-dqn", CueEnv(), 0, agent_config={"history": 3}, k=2)
    assert agent.config.history == 3 and agent.config.n_step == 2  # n-step rows of windows


def test_exploring_without_learning_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from twinrl.agents import history

    monkeypatch.setattr(history, "MAX_SLOTS", 2)
    agent = DQN(2, gym.spaces.Discrete(2), DQNConfig(history=2, hidden=(4,)), rng=0)
    obs = np.zeros(2, np.float32)
    agent.act(obs, explore=True)
    agent.act(obs, explore=True)
    with pytest.raises(ConfigError, match="without a learn"):
        agent.act(obs, explore=True)
    for _ in range(5):  # greedy acting keeps one window
        agent.act(obs, explore=False)
