"""The design of the ``prediction`` experiment: cells (env factors), arms, presets and the
pre-registered predictions (docs/prediction.md records them, committed before the decisive run).

The claim under test (paper 000, Section II-B and Fig. 5): "training with prediction" -- k-step
targets averaged over m twin trajectories -- beats n-step learning and plain deep Q-learning in
dynamic networks. The cells vary one factor at a time from the dense/slow/short setting of
``fig5`` (where no effect was seen), so each prediction compares the base cell with one other:

* reward: the mean rate (dense) / the share of users covered above a threshold (sparse) / the
  mean rate paid every 10 slots (periodic);
* user mobility: today's slow users / fast users with memory / migrating clusters;
* horizon: 50 slots with gamma 0.95 (short) / 150 slots with gamma 0.99 (long).

Every arm of a cell runs at the same physical steps and the same gradient steps per physical
step (one), except the "data" arm and its DQL control, which both take two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twinrl.experiments import uav_runs
from twinrl.experiments.episodic import Variant


@dataclass(frozen=True)
class BaseLearner:
    """A base learner of the grid: its (plain, n-step, with prediction) algorithm names of
    :func:`twinrl.algorithms.build_algorithm`, and the env and agent settings it needs."""

    algorithms: tuple[str, str, str]
    env: tuple[tuple[str, Any], ...] = ()
    agent: tuple[tuple[str, Any], ...] = ()


BASE_LEARNERS = {
    "dqn": BaseLearner(("dqn", "nstep-dqn", "dt-dqn")),
    "vdn": BaseLearner(("dqn", "nstep-dqn", "dt-dqn"), env=(("observation", "per_uav"),),
                       agent=tuple(sorted(uav_runs.BASE_AGENT.items()))),
}  # fmt: skip
"""The base learners (one knob: :data:`BASE`). ``dqn``: the factorized double DQN fig5 used
before this round (one torso, each UAV's branch regressed on the joint target; the pilot's base).
``vdn``: fig5's base learner now (:data:`twinrl.experiments.uav_runs.BASE_AGENT`): per-UAV
utilities from one shared network, each UAV reading its own observation block, summed into the
joint value. A stronger learner joins by adding an entry here."""
BASE = "vdn"
"""The base learner every arm uses (a key of :data:`BASE_LEARNERS`). Switched from ``dqn``
before the decisive run: the pilot showed ``dqn`` far below the static k-means placement in
every cell (docs/prediction.md, "Amendment")."""
K = 5
"""Look-ahead k of every DT-DQL arm and n of the n-step DQN arm."""
MS = (1, 4, 16)
"""Twin trajectories m of the DT-DQL arms."""
M_MAIN = 4
"""m of the main DT-DQL arm, the one the predictions judge (fig5's m)."""


@dataclass(frozen=True)
class Cell:
    """One env setting of the grid: a level of each factor."""

    reward: str
    mobility: str
    horizon: str

    @property
    def name(self) -> str:
        return f"{self.reward}/{self.mobility}/{self.horizon}"

    def env_kwargs(self) -> dict[str, Any]:
        """The MultiUAV settings of this cell (see :data:`REWARDS`, :data:`MOBILITY`,
        :data:`HORIZONS`)."""
        return {**REWARDS[self.reward], **MOBILITY[self.mobility], **HORIZONS[self.horizon][0]}

    def agent(self) -> dict[str, Any]:
        """The agent settings of this cell (the discount of its horizon)."""
        return dict(HORIZONS[self.horizon][1])


REWARDS: dict[str, dict[str, Any]] = {
    "dense": {"reward": "mean_rate", "reward_centre": 20.0},
    "sparse": {"reward": "coverage", "coverage_threshold": 23.0, "reward_centre": 0.0},
    "periodic": {"reward": "periodic", "reward_period": 10, "reward_centre": 20.0},
}
"""Reward levels. Dense: fig5's centred mean rate. Sparse: the share of users within about 15 m
(ground) of a UAV (23 Mbit/s). Periodic: the centred mean rate paid at every 10th slot, 10 times."""
MOBILITY: dict[str, dict[str, Any]] = {
    "slow": {},
    "fast": {"user_speed_std": 4.0, "user_memory": 0.95},
    "clusters": {"user_layout": "clusters", "n_clusters": 3, "cluster_spread": 5.0,
                 "cluster_speed": 4.0, "user_speed_std": 0.3, "user_memory": 0.99},
}  # fmt: skip
"""Mobility levels. Slow: the default Gauss-Markov users (about 1.25 m/s, memory 0.8). Fast:
about 5 m/s with memory 0.95 (a heading kept for about 20 s). Clusters: 3 groups of users
crossing the area together at 4 m/s."""
HORIZONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "short": ({"episode_steps": 50}, {"gamma": 0.95}),
    "long": ({"episode_steps": 150}, {"gamma": 0.99}),
}
"""Horizon levels: (env settings, agent settings)."""

BASE_CELL = Cell("dense", "slow", "short")
CELLS = (
    BASE_CELL,
    Cell("sparse", "slow", "short"),
    Cell("periodic", "slow", "short"),
    Cell("dense", "fast", "short"),
    Cell("dense", "clusters", "short"),
    Cell("dense", "slow", "long"),
)
"""One factor at a time from the base cell (a full 3 x 3 x 2 factorial does not fit the budget)."""
MECHANISM_CELLS = (Cell("sparse", "slow", "short"), Cell("dense", "fast", "short"))
"""Cells that also run the mechanism arms (m = 1 and 16, the physical future, varied first
actions, the data arm and its control): the sparse cell (where targets carry the most new
information) and the fast cell (where the m futures differ most)."""


def arm_names() -> dict[str, str]:
    """Arm label -> what it is."""
    return {
        "DQL": "the base learner alone, one-step targets",
        f"n-step n={K}": f"the physical trajectory's {K}-step return (the paper's n-step learning)",
        **{f"DT-DQL m={m}": f"PredictiveTargets(k={K}, m={m}): first a_t, then greedy, each "
           "future its own guess of the users' motion; half of each batch" for m in MS},
        "DT-DQL m=1 physical future": "m = 1 along the future the physical network will take "
        "(an oracle: greedy continuation without averaging over futures)",
        f"DT-DQL m={M_MAIN} varied first actions": "trajectory 0 starts with a_t, the others "
        "with uniform random actions",
        f"DT-DQL m={M_MAIN} data": "two gradient steps per physical step (the twin rows add "
        "steps instead of replacing half of one batch)",
        "DQL 2 steps": "the data arm's control: DQL with two gradient steps per physical step",
    }  # fmt: skip


CORE_ARMS = ("DQL", f"n-step n={K}", f"DT-DQL m={M_MAIN}")


def variants(cell: Cell, arms: tuple[str, ...] | None = None) -> list[Variant]:
    """The arms of ``cell`` as :class:`Variant` (label ``"<cell>: <arm>"``)."""
    base = BASE_LEARNERS[BASE]
    plain, nstep, predict = base.algorithms
    env = tuple(sorted({**cell.env_kwargs(), **dict(base.env)}.items()))
    agent = tuple(sorted(cell.agent().items()))
    two = tuple(sorted({**cell.agent(), "gradient_steps": 2}.items()))
    table = {
        "DQL": Variant("", plain, agent=agent),
        f"n-step n={K}": Variant("", nstep, k=K, agent=agent),
        **{f"DT-DQL m={m}": Variant("", predict, k=K, m=m, agent=agent) for m in MS},
        "DT-DQL m=1 physical future": Variant("", predict, k=K, m=1, agent=agent,
                                              prediction=(("future", "physical"),)),
        f"DT-DQL m={M_MAIN} varied first actions": Variant(
            "", predict, k=K, m=M_MAIN, agent=agent, prediction=(("first_actions", "varied"),)),
        f"DT-DQL m={M_MAIN} data": Variant("", predict, k=K, m=M_MAIN, agent=two),
        "DQL 2 steps": Variant("", plain, agent=two),
    }  # fmt: skip
    chosen = arms if arms is not None else (
        tuple(table) if cell in MECHANISM_CELLS else CORE_ARMS)  # fmt: skip
    out = []
    for arm in chosen:
        v = table[arm]
        out.append(Variant(f"{cell.name}: {arm}", v.algorithm, k=v.k, m=v.m, env_kwargs=env,
                           prediction=v.prediction, agent=v.agent))  # fmt: skip
    return out


@dataclass(frozen=True)
class Preset:
    steps: int
    """Physical steps per run (episodes = steps / the cell's episode length)."""
    seeds: int
    eval_episodes: int = 10
    """Greedy evaluation episodes at each budget (the same episodes for every arm of a seed)."""
    window: int = 5
    """Moving-average window of the learning-curve figures (episodes)."""


PRESETS = {
    "quick": Preset(steps=3000, seeds=2),
    "paper": Preset(steps=6000, seeds=10),
}
"""quick: a smoke run (its verdicts say its seeds cannot decide); paper: seeds sized from a pilot
(the quick preset with 3 seeds: at most 10 needed in every cell, docs/prediction.md), steps sized
to stay under 90 minutes of 2 cores."""
BUDGET_FRACTIONS = (0.25, 0.5, 1.0)
"""Budgets (shares of the physical steps) at which the greedy policy is judged."""


def agent_config(preset: Preset) -> dict[str, Any]:
    """DQN settings shared by every arm (the base learner's and fig5's, scaled to the run):
    exploration decays over the first 40% of the physical steps, learning starts after 500 steps
    or a quarter of the run, a target copy every 250 gradient steps."""
    return {
        **dict(BASE_LEARNERS[BASE].agent),
        "eps_decay_steps": max(1, int(0.4 * preset.steps)),
        "learning_starts": max(1, min(500, preset.steps // 4)),
        "target_update": 250,
    }


def episodes(preset: Preset, cell: Cell) -> int:
    """Training episodes of ``cell``: the preset's physical steps in whole episodes."""
    length = int(HORIZONS[cell.horizon][0]["episode_steps"])
    return max(1, preset.steps // length)
