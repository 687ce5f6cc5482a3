"""Resumable training in process (issue 14, item 2): ``train(checkpoint=...)`` and
``train(resume_from=...)``. Resuming from every checkpoint a run made ends with the same history,
episodes, twin work and agent as the uninterrupted run, and the next checkpoint it writes holds the
same arrays; each piece's ``state_dict()`` round-trips and refuses bad input by name; flipping any
byte of a resume checkpoint is detected; what cannot be checkpointed is refused before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import twinrl  # noqa: F401  (registers the envs)
from twinrl.agents import QLearning
from twinrl.algorithms import build_algorithm
from twinrl.assists import ActionTrials, PredictiveTargets, SafeExploration, TwinAgents
from twinrl.checkpoint import load_checkpoint, manifest_for, save_checkpoint
from twinrl.errors import CheckpointError, ConfigError, ConfigTypeError
from twinrl.resume import Checkpointing, env_state_dict, load_env_state, load_resume
from twinrl.training import train
from twinrl.twin import DigitalTwin, Fidelity

SEQUENTIAL = {"formulation": "sequential", "observation": "index", "n_tasks": 4}
CASES: dict[str, tuple[str, dict[str, Any], int, int]] = {
    "ql": ("twinrl/EdgeScheduling-v0", SEQUENTIAL, 60, 7),
    "dteql": ("twinrl/EdgeScheduling-v0", SEQUENTIAL, 60, 7),
    "dtaql": ("twinrl/EdgeScheduling-v0", {"n_tasks": 4}, 60, 9),
    "dteql@ap": ("twinrl/APSelection-v0", {}, 60, 7),
    "dt-dqn": ("twinrl/MultiUAV-v0", {}, 90, 25),
    "nstep-dqn": ("twinrl/MultiUAV-v0", {}, 90, 25),
}
"""algorithm[@case]: (env, env kwargs, budget, checkpoint interval)."""
DQN_SMALL = {"hidden": (16,), "buffer_capacity": 300, "learning_starts": 20, "batch_size": 8}


def _build(algo: str) -> tuple[gym.Env[Any, Any], Any, list[Any], DigitalTwin]:
    env_id, kwargs, _, _ = CASES[algo]
    env = gym.make(env_id, **kwargs)
    config = DQN_SMALL if "dqn" in algo else None
    name = algo.split("@")[0]
    agent, assists = build_algorithm(name, env, 3, agent_config=config, n_trials=5, n_agents=4,
                                     sync_every=7, k=2, m=2)  # fmt: skip
    return env, agent, assists, DigitalTwin(env)


def _train(algo: str, path: Path, **kwargs: Any) -> Any:
    env, agent, assists, twin = _build(algo)
    budget, every = CASES[algo][2], CASES[algo][3]
    return train(env, agent, budget=budget, assists=assists, twin=twin, seed=5,
                 checkpoint=Checkpointing(path, every), **kwargs)  # fmt: skip


def _recording(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Keep the bytes of every checkpoint the runs write."""
    from twinrl import resume

    real, kept = resume.save_checkpoint, []

    def save(path: Path, arrays: Any, manifest: Any) -> None:
        real(path, arrays, manifest)
        kept.append(Path(path).read_bytes())

    monkeypatch.setattr(resume, "save_checkpoint", save)
    return kept


def _same_run(a: Any, b: Any) -> None:
    assert a.history.keys() == b.history.keys()
    for key in a.history:
        assert a.history[key].tobytes() == b.history[key].tobytes(), key
    assert (a.iterations, a.episodes, a.twin_evaluations, a.eval_steps, a.twin_started) == (
        b.iterations, b.episodes, b.twin_evaluations, b.eval_steps, b.twin_started)  # fmt: skip
    assert a.episode_returns == b.episode_returns and a.episode_lengths == b.episode_lengths
    full = [getattr(r.agent, "full_state_dict", r.agent.state_dict)() for r in (a, b)]
    assert full[0].keys() == full[1].keys()
    assert all(full[0][k].tobytes() == full[1][k].tobytes() for k in full[0])


@pytest.mark.parametrize("algo", list(CASES))
def test_resuming_from_every_checkpoint_ends_as_the_uninterrupted_run(
    algo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "dqn" in algo:
        pytest.importorskip("torch")
    kept = _recording(monkeypatch)
    full = _train(algo, tmp_path / "full.npz")
    saved = list(kept)
    budget, every = CASES[algo][2], CASES[algo][3]
    assert len(saved) == (budget - 1) // every  # after every every-th iteration but the last
    for k, blob in enumerate(saved[:-1]):
        (tmp_path / "c.npz").write_bytes(blob)
        kept.clear()
        resumed = _train(algo, tmp_path / "again.npz", resume_from=load_resume(tmp_path / "c.npz"))
        _same_run(full, resumed)
        # its next checkpoint holds the same arrays (the wall clock aside) as the original's
        (tmp_path / "a.npz").write_bytes(kept[0])
        (tmp_path / "b.npz").write_bytes(saved[k + 1])
        a, b = (load_checkpoint(tmp_path / f"{x}.npz")[0] for x in "ab")
        assert a.keys() == b.keys()
        assert all(a[key].tobytes() == b[key].tobytes() for key in a if key != "loop.wall_time")


def test_flipping_any_byte_of_a_resume_checkpoint_is_detected(tmp_path: Path) -> None:
    _train("dteql", tmp_path / "r.npz", max_episodes=3)  # stops early: its checkpoint stays
    good = (tmp_path / "r.npz").read_bytes()
    offsets = sorted({*range(0, 200), *range(len(good) - 200, len(good)),
                      *np.linspace(0, len(good) - 1, 400).astype(int).tolist()})  # fmt: skip
    bad = tmp_path / "bad.npz"
    for offset in offsets:
        damaged = bytearray(good)
        damaged[offset] ^= 0x01
        bad.write_bytes(bytes(damaged))
        with pytest.raises(CheckpointError):
            load_resume(bad)
    bad.write_bytes(good)
    assert load_resume(bad)["loop.iteration"] == 7


def test_a_checkpoint_of_other_assists_or_budget_is_refused(tmp_path: Path) -> None:
    _train("dteql", tmp_path / "r.npz", max_episodes=3)
    state = load_resume(tmp_path / "r.npz")
    env, agent, _, twin = _build("ql")
    with pytest.raises(CheckpointError, match=r"assist\.0"):
        train(env, agent, budget=60, twin=twin, seed=5, resume_from=state)
    env, agent, assists, twin = _build("dteql")
    with pytest.raises(CheckpointError, match="iteration 7; this run's budget is 7"):
        train(env, agent, budget=7, assists=assists, twin=twin, seed=5, resume_from=state)
    save_checkpoint(tmp_path / "agent.npz", agent.state_dict(),
                    manifest_for("dteql", {}, env.observation_space, env.action_space))  # fmt: skip
    with pytest.raises(CheckpointError, match="not a resume checkpoint"):  # a final one
        load_resume(tmp_path / "agent.npz")


def test_what_cannot_be_checkpointed_is_refused_before_any_work(tmp_path: Path) -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=3)
    agent = QLearning.for_env(env, rng=0)

    class Opaque:
        name = "opaque"

        def after_step(self, ctx: Any, agent: Any) -> None:
            raise AssertionError("never reached")

    with pytest.raises(ConfigError, match="'opaque' has no state_dict"):
        train(env, agent, budget=5, assists=[Opaque()],
              checkpoint=Checkpointing(tmp_path / "r.npz", 2))  # fmt: skip
    noisy = DigitalTwin(env, fidelity=Fidelity(bias={"rate": 0.1}))
    with pytest.raises(ConfigError, match="perfect twin"):
        train(env, agent, budget=5, assists=[ActionTrials(2, 6, rng=0)], twin=noisy,
              checkpoint=Checkpointing(tmp_path / "r.npz", 2))  # fmt: skip
    wrapped = gym.wrappers.TransformReward(gym.make("CartPole-v1"), lambda r: r)
    cart = build_algorithm("dqn", wrapped, 0, agent_config=DQN_SMALL)[0] if _torch() else None
    if cart is not None:
        with pytest.raises(ConfigError, match=r"CartPole.*get_state"):
            train(wrapped, cart, budget=5, evaluate=False,
                  checkpoint=Checkpointing(tmp_path / "r.npz", 2))  # fmt: skip
    assert not (tmp_path / "r.npz").exists()
    with pytest.raises(ConfigError, match="checkpoint every"):
        Checkpointing(tmp_path / "r.npz", 0)
    with pytest.raises(ConfigTypeError, match="checkpoint must be a Checkpointing"):
        train(env, agent, budget=5, checkpoint=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigTypeError, match="resume_from must be the arrays"):
        train(env, agent, budget=5, resume_from=[1])  # type: ignore[arg-type]


def _torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# --- the pieces -----------------------------------------------------------------------------------
def test_qlearning_state_holds_its_random_stream() -> None:
    a = QLearning(3, 4, rng=7)
    a.act(0, explore=True)
    b = QLearning(3, 4, rng=99)
    b.load_state_dict(a.state_dict())
    assert [a.act(1, explore=True) for _ in range(50)] == [
        b.act(1, explore=True) for _ in range(50)
    ]
    bad = {**a.state_dict(), "rng": np.array([0, 0, 0, 0, 5, 0], dtype=np.uint64)}
    with pytest.raises(CheckpointError, match="QLearning state entry 'rng'"):
        b.load_state_dict(bad)
    with pytest.raises(CheckpointError, match="lacks \\['rng'\\]"):
        b.load_state_dict({"q": a.q, "iteration": np.array(1)})


def test_twin_agents_keep_their_own_streams_through_sharing_and_loading() -> None:
    physical = QLearning(2, 5, rng=1)
    assist = TwinAgents(3, 1, rng=2)
    assist.attach(physical)
    assist.share(physical)
    words = [tuple(a.state_dict()["rng"]) for a in assist.agents]
    assert len({*words, tuple(physical.state_dict()["rng"])}) == 4  # four distinct streams
    copy = TwinAgents(3, 1, rng=50)
    copy.attach(QLearning(2, 5, rng=3))
    copy.load_state_dict(assist.state_dict())
    assert [tuple(a.state_dict()["rng"]) for a in copy.agents] == words
    with pytest.raises(CheckpointError, match=r"TwinAgents state entry 'agents\.q' has shape"):
        copy.load_state_dict({**assist.state_dict(), "agents.q": np.zeros((2, 2, 5))})


@pytest.mark.parametrize(
    "make",
    [
        lambda: ActionTrials(3, 6, rng=4),
        lambda: PredictiveTargets(2, 2, gamma=0.9, rng=4),
        lambda: SafeExploration(6),
    ],
    ids=["ActionTrials", "PredictiveTargets", "SafeExploration"],
)
def test_assist_state_round_trips_and_refuses_bad_entries(make: Any) -> None:
    a, b = make(), make()
    if hasattr(a, "rng"):
        a.rng.random(3)
    else:
        a.checked, a.vetoed = 5, 2
    b.load_state_dict(a.state_dict())
    assert all(np.array_equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    name = type(a).__name__
    with pytest.raises(CheckpointError, match=name):
        b.load_state_dict({**a.state_dict(), "bogus": np.zeros(1)})


def test_twin_state_round_trips() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=3)
    env.reset(seed=0)
    twin = DigitalTwin(env)
    twin.sync(twin.capture(env))
    twin.trial(twin.identical_state, np.arange(4))
    other = DigitalTwin(env)
    other.load_state_dict(twin.state_dict())
    assert (other.evaluations, other.calls) == (4, 1)
    with pytest.raises(CheckpointError, match="DigitalTwin state entry 'calls'"):
        other.load_state_dict({**twin.state_dict(), "calls": np.array(-1)})


@pytest.mark.parametrize("env_id", ["twinrl/EdgeScheduling-v0", "twinrl/APSelection-v0",
                                    "twinrl/MultiUAV-v0"])  # fmt: skip
def test_env_state_round_trips_through_arrays(env_id: str) -> None:
    env, copy = gym.make(env_id), gym.make(env_id)
    env.reset(seed=1)
    copy.reset(seed=2)
    load_env_state(copy, env_state_dict(env))
    action = env.action_space.sample()
    a, b = env.step(action), copy.step(action)
    assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4]
    assert env.reset()[0].tobytes() == copy.reset()[0].tobytes()  # the same np_random
    with pytest.raises(CheckpointError, match="env state"):
        load_env_state(copy, {**env_state_dict(env), "bogus": np.zeros(1)})
