"""TwinAgents' two readings of Algorithm 1, line 12 (paper 002): "mean" and "visit"."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import twinrl
from twinrl.agents import QLearning, QLearningConfig
from twinrl.algorithms import build_algorithm
from twinrl.assists import TwinAgents
from twinrl.errors import ConfigError


def _two_twins(average: str) -> tuple[QLearning, TwinAgents]:
    """A physical agent and two twin agents over one state and 3! = 6 orders, all at Q = 0."""
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=3)
    agent = QLearning.for_env(env, rng=0)
    twins = TwinAgents(2, sync_every=1, rng=0, average=average)
    twins.attach(agent)
    return agent, twins


def _changes(agent: QLearning, twins: TwinAgents) -> None:
    """Entry 0: physical -> 3, twin 1 -> 6. Entry 1: twin 2 -> 9. Entry 2: twin 1 -> -2, twin 2
    -> -4. Entries 3-5: nobody."""
    agent.q[0, 0] = 3.0
    twins.agents[0].q[0, 0] = 6.0
    twins.agents[1].q[0, 1] = 9.0
    twins.agents[0].q[0, 2] = -2.0
    twins.agents[1].q[0, 2] = -4.0


def test_visit_averages_each_entry_over_the_agents_that_changed_it() -> None:
    agent, twins = _two_twins("visit")
    _changes(agent, twins)
    twins.share(agent)
    # (3 + 6) / 2, 9 / 1, (-2 - 4) / 2, and 0 kept where nobody changed the entry
    np.testing.assert_array_equal(agent.q[0], [4.5, 9.0, -3.0, 0.0, 0.0, 0.0])
    for twin in twins.agents:
        np.testing.assert_array_equal(twin.q, agent.q)


def test_mean_divides_every_change_by_all_agents() -> None:
    agent, twins = _two_twins("mean")
    _changes(agent, twins)
    twins.share(agent)
    np.testing.assert_allclose(agent.q[0], [3.0, 3.0, -2.0, 0.0, 0.0, 0.0], rtol=1e-15)


def test_visit_counts_changes_since_the_last_sharing_step() -> None:
    agent, twins = _two_twins("visit")
    _changes(agent, twins)
    twins.share(agent)  # shared: [4.5, 9, -3, 0, 0, 0]
    twins.agents[1].q[0, 0] = 5.5  # only twin 2 moves entry 0 from the shared 4.5
    agent.q[0, 3] = 1.0
    twins.agents[0].q[0, 3] = 2.0
    twins.agents[1].q[0, 1] = 9.0  # written back unchanged: not counted
    twins.share(agent)
    np.testing.assert_array_equal(agent.q[0], [5.5, 9.0, -3.0, 1.5, 0.0, 0.0])


def test_visit_keeps_an_entry_whose_updates_left_it_unchanged() -> None:
    """A pessimistic start with the worst order's reward exactly at Q0: its update is a no-op."""
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=3)
    costs = []
    for a in range(6):
        env.reset(seed=0)
        costs.append(-env.step(a)[1])
    worst = int(np.argmax(costs))
    cfg = QLearningConfig(reward_offset=max(costs), eps_min=1.0, eps0=0.0)  # always explore
    agent, assists = build_algorithm("dtaql-visit", env, 3, agent_config=cfg, n_agents=4,
                                     sync_every=50)  # fmt: skip
    twinrl.train(env, agent, assists=assists, budget=50, seed=0, evaluate=False)
    assert agent.q[0, worst] == 0.0
    assert (np.delete(agent.q[0], worst) > 0).all()  # 250 random tries reached every other order


def test_mean_is_the_default_and_bit_identical_to_it() -> None:
    runs = []
    for average in (None, "mean"):
        env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4)
        agent = QLearning.for_env(env, rng=5)
        kwargs = {} if average is None else {"average": average}
        twins = TwinAgents(3, sync_every=7, rng=6, **kwargs)
        run = twinrl.train(env, agent, assists=[twins], budget=60, seed=1)
        runs.append((agent.q.tobytes(), run.history["greedy_return"].tobytes()))
    assert runs[0] == runs[1]


def test_the_two_readings_differ_and_each_is_deterministic() -> None:
    def final_q(algo: str) -> bytes:
        env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4)
        agent, assists = build_algorithm(algo, env, 2, n_agents=4, sync_every=10)
        twinrl.train(env, agent, assists=assists, budget=80, seed=2, evaluate=False)
        return bytes(agent.q.tobytes())

    visit = final_q("dtaql-visit")
    assert visit == final_q("dtaql-visit")
    assert visit != final_q("dtaql")


@pytest.mark.parametrize("bad", ["median", "Mean", "", 1, None])
def test_average_must_be_a_known_reading(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"average=.* is not allowed; choose one of mean, visit"):
        TwinAgents(2, average=bad)  # type: ignore[arg-type]
