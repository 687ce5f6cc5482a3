"""DifferentialTwins (paper 000, Section II-B): learners in their own free-running domains, their
parameters with provenance, adopt-best, choose by scenario, distillation, and bad options."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import twinrl  # noqa: F401  (registers the envs)
from twinrl.agents import ExpectedSarsa, QLearning, QLearningConfig, Sarsa
from twinrl.algorithms import ALGORITHMS, build_algorithm
from twinrl.assists import DifferentialTwins, StepContext
from twinrl.assists.differential import disagreement
from twinrl.errors import ConfigError, ConfigTypeError
from twinrl.training import train
from twinrl.twin import DigitalTwin

CFG = QLearningConfig(eps0=0.0, eps_min=0.2)  # a constant exploration rate: replayable updates


def _env(n_steps: int = 6) -> gym.Env[Any, Any]:
    return gym.make("twinrl/APSelection-v0", n_steps=n_steps)


def _learners(env: gym.Env[Any, Any]) -> dict[str, QLearning]:
    return {
        "ql": QLearning.for_env(env, CFG, rng=1),
        "ql fast": QLearning.for_env(env, QLearningConfig(lr=0.5, eps0=0.0, eps_min=0.2), rng=2),
        "expected sarsa": ExpectedSarsa.for_env(env, CFG, rng=3),
    }


class Frozen:
    """An agent with a fixed Q table: acts greedily on it, never learns."""

    def __init__(self, q: np.ndarray) -> None:
        self.inner = QLearning(q.shape[0], q.shape[1], QLearningConfig(eps0=0.0, eps_min=0.0))
        self.inner.q = q.copy()

    def act(self, obs: Any, *, explore: bool, mask: Any = None) -> int:
        return self.inner.act(obs, explore=False, mask=mask)

    def learn(self, transitions: Any) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.inner.load_state_dict(state)


def _constant(env: gym.Env[Any, Any], ap: int, value: float = 1.0) -> np.ndarray:
    q = np.zeros((int(env.observation_space.n), int(env.action_space.n)))
    q[:, ap] = value
    return q


def test_each_learner_trains_only_on_its_own_domains_data() -> None:
    env = _env()
    learners = _learners(env)
    diff = DifferentialTwins(learners, domains=1, sync_every=12, use="none", seed=0)
    agent = QLearning.for_env(env, CFG, rng=0)
    train(env, agent, assists=[diff], budget=120, seed=5, evaluate=False)
    for j, (name, learner) in enumerate(learners.items()):
        own = diff.storage.owned_by(j)
        assert set(own.source.tolist()) == set(diff.domains_of(j))
        assert len(own) == 120  # one transition per physical step in its one domain
        # replaying exactly its own domain's transitions into a fresh copy gives its table
        fresh = type(learner)(learner.q.shape[0], learner.q.shape[1], learner.config, rng=99)
        for i in range(len(own)):
            fresh.learn(own.rows(i)._replace(source=np.zeros(1, dtype=np.int64)))
        np.testing.assert_array_equal(fresh.q, learner.q, err_msg=name)
    assert diff.storage.sizes[0] == 0  # no physical data in the learners' storage
    np.testing.assert_array_equal(diff.storage.owners, [-1, 0, 1, 2])


def test_parameters_are_stored_with_provenance() -> None:
    env = _env()
    learners = _learners(env)
    diff = DifferentialTwins(learners, domains=2, sync_every=12, use="none", seed=0)
    train(env, QLearning.for_env(env, CFG, rng=0), assists=[diff], budget=40, seed=5,
          evaluate=False)  # fmt: skip
    assert [d["iteration"] for d in diff.decisions] == [13, 25, 37]
    scenario = diff.current_scenario()  # env.unwrapped.scenario where the env has one
    assert scenario == getattr(env.unwrapped, "scenario", None)
    assert len(diff.parameters) == 3  # the latest per learner (one scenario)
    for j, name in enumerate(learners):
        record = diff.parameters.get(name, scenario)
        assert record.learner == name and record.domains == diff.domains_of(j) == (
            2 * j + 1,
            2 * j + 2,
        )
        assert record.iteration == 37 and record.scenario == scenario and np.isfinite(record.score)
        assert record.score == diff.decisions[-1]["scores"][name]
    record = diff.parameters.get("ql", scenario)
    learners["ql"].q[:] = 123.0  # a stored record is a copy
    assert not (record.params["q"] == 123.0).all()


def _decide(diff: DifferentialTwins, env: gym.Env[Any, Any], agent: Any) -> dict[str, Any]:
    """One sync moment from the env's current state, by hand."""
    twin = DigitalTwin(env)
    twin.sync(twin.capture(env))
    diff.bind(env, twin)
    diff.attach(agent)
    obs = env.unwrapped.get_state().t  # not used by constant policies
    diff._decide(StepContext(7, int(obs), None, 0, twin), agent)
    return diff.decisions[-1]


def _constant_return(env: gym.Env[Any, Any], ap: int) -> float:
    """The independent reference: a copy of the env from its current state, always ``ap``."""
    copy = _env()
    copy.reset(seed=0)
    copy.unwrapped.set_state(env.unwrapped.get_state())
    total, done = 0.0, False
    while not done:
        _, reward, terminated, truncated, _ = copy.step(ap)
        total, done = total + float(reward), terminated or truncated
    return total


def test_adopt_picks_the_learner_with_the_best_twin_evaluation() -> None:
    env = _env()
    env.reset(seed=11)
    n = int(env.action_space.n)
    returns = [_constant_return(env, ap) for ap in range(n)]
    best, worst = int(np.argmax(returns)), int(np.argmin(returns))
    assert returns[best] > returns[worst]
    learners = {f"ap {ap}": Frozen(_constant(env, ap)) for ap in range(n)}
    agent = Frozen(_constant(env, worst))
    diff = DifferentialTwins(learners, sync_every=5, use="adopt", eval_window=1)
    decision = _decide(diff, env, agent)
    assert decision["scores"] == pytest.approx({**{f"ap {a}": r for a, r in enumerate(returns)},
                                                "physical": returns[worst]})  # fmt: skip
    assert decision["best"] == decision["adopted"] == f"ap {best}"
    np.testing.assert_array_equal(agent.inner.q, _constant(env, best))
    # a physical agent already as good as the best keeps its own parameters
    agent = Frozen(_constant(env, best, value=2.0))
    diff = DifferentialTwins(learners, sync_every=5, use="adopt", eval_window=1)
    assert _decide(diff, env, agent)["adopted"] is None
    np.testing.assert_array_equal(agent.inner.q, _constant(env, best, value=2.0))


def test_choose_by_scenario_returns_the_best_stored_for_that_scenario() -> None:
    env = _env()
    env.reset(seed=11)
    n = int(env.action_space.n)
    returns = [_constant_return(env, ap) for ap in range(n)]
    learners = {f"ap {ap}": Frozen(_constant(env, ap)) for ap in range(n)}
    diff = DifferentialTwins(learners, sync_every=5, use="scenario", eval_window=1)
    diff.set_scenario(("road", "A"))  # else env.unwrapped.scenario (see the provenance test)
    agent = Frozen(_constant(env, int(np.argmin(returns))))
    decision = _decide(diff, env, agent)
    winner_a = f"ap {int(np.argmax(returns))}"
    assert decision["adopted"] == winner_a == diff.choose(("road", "A")) == diff.choose()
    # another scenario, in which (by hand) another learner did best
    diff.parameters.put("ap 0", learners["ap 0"].state_dict(), domains=(1,), iteration=9,
                        score=1e9, scenario="B")  # fmt: skip
    diff.set_scenario("B")
    assert diff.choose() == "ap 0" and diff.choose(("road", "A")) == winner_a
    with pytest.raises(ConfigError, match="no evaluated parameters for scenario 'C'"):
        diff.choose("C")
    with pytest.raises(ConfigTypeError, match="hashable"):
        diff.choose(["not", "hashable"])
    with pytest.raises(ConfigTypeError, match="hashable"):
        diff.set_scenario({"a": 1})


def test_distillation_moves_the_student_toward_the_consensus() -> None:
    env = _env()
    teachers = {"a": QLearning.for_env(env, CFG, rng=1), "b": Sarsa.for_env(env, CFG, rng=2)}
    student = QLearning.for_env(env, CFG, rng=0)
    diff = DifferentialTwins(teachers, use="distill", distill_rate=0.6)
    diff.attach(student)
    teachers["a"].q[:10, 2] = 1.0
    teachers["b"].q[:10, 2] = 3.0
    teachers["b"].q[:10, 1] = 1.0
    student.q[:20, 0] = 1.0  # disagrees everywhere the teachers have been
    record = diff.distill(student)
    assert record == {"before": 1.0, "after": 0.0, "states": 10.0}
    # Q(s, .) <- Q(s, .) + 0.6 (consensus - Q(s, .)) in the states some teacher changed; the
    # other states unchanged
    np.testing.assert_allclose(student.q[:10, 2], 0.6 * 2.0)
    np.testing.assert_allclose(student.q[:10, 1], 0.6 * 0.5)
    np.testing.assert_allclose(student.q[:10, 0], 1.0 - 0.6 * 1.0)
    np.testing.assert_allclose(student.q[10:20, 0], 1.0)
    np.testing.assert_allclose(student.q[20:], 0.0)
    assert disagreement(student.q, np.mean([teachers["a"].q, teachers["b"].q], axis=0),
                        np.arange(student.q.shape[0]) < 10) == 0.0  # fmt: skip


def test_distillation_in_training_never_raises_disagreement() -> None:
    env = _env()
    diff = DifferentialTwins(_learners(env), sync_every=12, use="distill", distill_rate=0.5)
    train(env, QLearning.for_env(env, CFG, rng=0), assists=[diff], budget=72, seed=5,
          evaluate=False)  # fmt: skip
    assert len(diff.distillations) == 5
    assert all(d["after"] <= d["before"] for d in diff.distillations)
    assert any(d["after"] < d["before"] for d in diff.distillations)


def test_bad_options_raise_clear_errors() -> None:
    env = _env()
    ok = _learners(env)
    with pytest.raises(ConfigTypeError, match="non-empty mapping"):
        DifferentialTwins({})
    with pytest.raises(ConfigTypeError, match="non-empty mapping"):
        DifferentialTwins([QLearning.for_env(env)])  # type: ignore[arg-type]
    with pytest.raises(ConfigTypeError, match="'x' is not an agent: it lacks act, learn"):
        DifferentialTwins({"x": object()})
    with pytest.raises(ConfigError, match="other than 'physical'"):
        DifferentialTwins({"physical": QLearning.for_env(env)})
    same = QLearning.for_env(env)
    with pytest.raises(ConfigError, match="same agent object"):
        DifferentialTwins({"a": same, "b": same})
    with pytest.raises(ConfigError, match="use"):
        DifferentialTwins(ok, use="best")
    for option, value in (
        ("domains", 0),
        ("sync_every", 0),
        ("eval_window", 0),
        ("distill_rate", 0.0),
        ("distill_rate", 1.5),
        ("eval_steps", -1),
    ):
        with pytest.raises(ConfigError, match=option):
            DifferentialTwins(ok, **{option: value})  # type: ignore[arg-type]
    agent = ok["ql"]
    with pytest.raises(ConfigError, match="is the physical agent itself"):
        DifferentialTwins(ok).attach(agent)
    other = QLearning(3, 2)
    with pytest.raises(ConfigError, match="no learner's state_dict fits"):
        DifferentialTwins(ok, use="adopt").attach(other)
    with pytest.raises(ConfigError, match="shapes differ"):
        DifferentialTwins(ok, use="distill").attach(other)
    with pytest.raises(ConfigError, match="tabular agents"):
        DifferentialTwins({"f": Frozen(np.zeros((3, 2)))}, use="distill").attach(_NoTable())
    with pytest.raises(ConfigError, match="needs use='distill'"):
        DifferentialTwins(ok, use="none").distill(QLearning.for_env(env))
    with pytest.raises(ConfigError, match="no learner 'nope'"):
        DifferentialTwins(ok).learner("nope")


class _NoTable(Frozen):
    def __init__(self) -> None:
        super().__init__(np.zeros((3, 2)))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"w": np.zeros(3)}


def test_named_algorithms_build_differential_twins_deterministically() -> None:
    assert {"dt-diff", "dt-diff-distill", "sarsa", "expected-sarsa"} <= set(ALGORITHMS)
    env = _env()
    tables = []
    for _ in range(2):
        agent, assists = build_algorithm("dt-diff", env, 3, sync_every=12,
                                         agent_config={"eps0": 0.0})  # fmt: skip
        (diff,) = assists
        assert isinstance(diff, DifferentialTwins) and diff.use == "adopt"
        assert diff.names == ["q-learning", "q-learning lr x3", "q-learning eps x3", "sarsa",
                              "expected-sarsa"]  # fmt: skip
        train(env, agent, assists=assists, budget=60, seed=1, evaluate=False)
        tables.append(agent.q.tobytes())
        assert diff.stats()["decisions"] == 4
    assert tables[0] == tables[1]
    agent, _ = build_algorithm("sarsa", env, 0)
    assert type(agent) is Sarsa
    agent, assists = build_algorithm("dt-diff-distill", env, 0)
    assert assists[0].use == "distill"


def test_dt_diff_dqn_with_a_recurrent_learner_on_partially_observed_multi_uav() -> None:
    pytest.importorskip("torch")
    from twinrl.agents import DQN

    env = gym.make("twinrl/MultiUAV-v0", n_uavs=2, n_users=4, episode_steps=20,
                   sensing_radius=30.0)  # fmt: skip
    config = {"hidden": [16], "batch_size": 8, "learning_starts": 16, "buffer_capacity": 500}
    agent, (diff,) = build_algorithm("dt-diff-dqn", env, 2, agent_config=config, sync_every=60,
                                     recurrent=3)  # fmt: skip
    assert diff.names == ["dqn", "dqn lr x2", "dqn 3-step", "dqn dueling", "dqn wide",
                          "dqn recurrent"]  # fmt: skip
    _, (five,) = build_algorithm("dt-diff-dqn", env, 2, agent_config=config, sync_every=60)
    assert five.names == diff.names[:5]  # the default five, with the same initial weights
    for name in five.names:
        own, other = five.learner(name).state_dict(), diff.learner(name).state_dict()
        assert all(own[k].tobytes() == other[k].tobytes() for k in own)
    recurrent = diff.learner("dqn recurrent")
    assert isinstance(recurrent, DQN) and recurrent.config.history == 3
    train(env, agent, assists=[diff], budget=130, seed=1, evaluate=False)
    assert diff.fits["dqn recurrent"] is False and diff.fits["dqn"] is True
    assert all(d["adopted"] != "dqn recurrent" for d in diff.decisions) and diff.decisions
    scenario = diff.current_scenario()
    record = diff.parameters.get("dqn recurrent", scenario)
    assert record.learner == "dqn recurrent" and record.domains == diff.domains_of(5)
    assert record.iteration == diff.decisions[-1]["iteration"] and np.isfinite(record.score)
    assert "online.gru.weight_ih_l0" in record.params
    assert record.params["online.gru.weight_ih_l0"].shape[1] == env.observation_space.shape[0] + 1
    assert recurrent.windows is not None and len(recurrent.windows.slots) == diff.domains
