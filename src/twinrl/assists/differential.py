"""Simultaneous training on differential twins (paper 000, Section II-B).

"Different RL training methodologies [...] can be deployed to train agents with varying NN
architectures [...] across a multiplicity of digital domains. For specific tasks, users can either
adopt the best-performing agent directly [...] or draw from a panoply of NN parameters [...] saved
to storage space. Alternatively, they can share all the policies gleaned by every agent with a new
agent using [...] knowledge distillation."

:class:`DifferentialTwins` runs K twin learners (any agents: Q-learning with other step sizes or
exploration, SARSA, Expected SARSA, DQNs of other shapes), each in its own free-running domains
(:class:`~twinrl.twin.FreeRunningDomains`), and keeps their transitions and parameters in the
storage space with their provenance. How the physical agent benefits is the ``use`` option.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.agents.base import PHYSICAL, Agent, Transitions
from twinrl.assists.base import StepContext, check_count
from twinrl.errors import ConfigError, ConfigTypeError, short_repr
from twinrl.storage.parameters import ParameterStore, scenario_key
from twinrl.storage.replay import Storage
from twinrl.twin.digital_twin import DigitalTwin
from twinrl.twin.free_running import FreeRunningDomains, VisitCounter
from twinrl.twin.rollout import greedy_policy, rollout
from twinrl.validation import check_choice, check_float, check_int

USES = ("none", "adopt", "scenario", "distill")
"""What the physical agent does with the learners at each sync moment (see :class:`DifferentialTwins`)."""
PHYSICAL_NAME = "physical"
"""The name under which the physical agent's own twin evaluation is reported."""
MAX_LEARNERS = 1000


class DifferentialTwins:
    """K twin learners, each training only in its own ``domains`` free-running domains.

    After every physical step each learner acts (exploring, on the physical iteration's schedule)
    in each of its domains, all K x ``domains`` domains step in one twin call (a domain whose
    episode ends restarts from the identical domain's current state), and each learner
    learns from its own domains' transitions only (tagged, for the learner, as its own
    environment's: ``source`` 0). The storage space (:attr:`storage`) keeps every transition under
    its domain id, with the owning learner's index as provenance (``Storage.owned_by``).

    Every ``sync_every`` physical iterations (delta) the domains are synced to the identical
    domain's state, and, from the second sync moment on, each learner's greedy policy and the
    physical agent's are evaluated in the twin from that state (a rollout of at most
    ``eval_steps`` steps). A learner's score is the mean of its last ``eval_window`` evaluations
    (all policies are evaluated from the same states, so the comparison is paired); its
    parameters are stored with the score, its domains, the iteration and the scenario in
    :attr:`parameters`. Then, by ``use``:

    * ``"adopt"``: the physical agent takes the parameters (:func:`adopt`) of the best-scoring learner among
      those whose ``state_dict`` fits its own (:attr:`fits`), if it scores above the physical
      agent itself; a learner of another architecture is evaluated and stored, not adopted;
    * ``"scenario"``: the physical agent takes the fitting parameters stored as best for the
      current scenario (:meth:`current_scenario`), which may come from an earlier visit of it;
    * ``"distill"``: the physical Q table regresses toward the teachers' consensus, the mean of
      the learners' tables, in every state where some learner has changed an entry (the whole
      row: ``Q(s, .) <- Q(s, .) + distill_rate (mean_j Q_j(s, .) - Q(s, .))``; tabular agents
      only); the other states keep the physical agent's own values. The share of those states
      where the student's greedy action differs from the consensus's is recorded before and after
      (:attr:`distillations`);
    * ``"none"``: the learners only train; :meth:`choose` and :meth:`learner` give them on demand
      (e.g. to act with the winner when its parameters do not fit the physical agent).

    Args:
        learners: name -> agent (each with ``act``, ``learn``, ``state_dict``,
            ``load_state_dict``; ``begin_iteration`` is called when present).
        domains: free-running domains per learner.
        sync_every: delta, physical iterations between sync moments.
        use: ``"none"``, ``"adopt"``, ``"scenario"`` or ``"distill"``.
        eval_steps: most twin steps of one evaluation rollout.
        eval_window: evaluations averaged into a score.
        distill_rate: step of the distillation toward the consensus, in (0, 1].
        capacity: transitions the storage keeps per domain.
        seed: seed of the storage's sampling stream.
    """

    name = "differential_twins"

    def __init__(
        self,
        learners: Mapping[str, Any],
        *,
        domains: int = 1,
        sync_every: int = 512,
        use: str = "adopt",
        eval_steps: int = 1000,
        eval_window: int = 5,
        distill_rate: float = 0.5,
        capacity: int = 10_000,
        seed: int | np.random.SeedSequence | None = None,
    ) -> None:
        self.names, self.learners = _check_learners(learners)
        self.domains = check_int("domains", domains, 1, 100_000)
        self.sync_every = check_count("sync_every", sync_every)
        self.use = check_choice("use", use, USES)
        self.eval_steps = check_count("eval_steps", eval_steps)
        self.eval_window = check_int("eval_window", eval_window, 1, 1_000_000)
        self.distill_rate = check_float("distill_rate", distill_rate, 0.0, 1.0, low_open=True)
        k = len(self.learners)
        self.storage = Storage(capacity, k * self.domains, seed=seed)
        """The storage space: every learner transition under its domain id, owned by learner j."""
        for j in range(k):
            self.storage.assign(self.domains_of(j), j)
        self.parameters = ParameterStore()
        """The learners' parameters with provenance (latest per learner and scenario)."""
        self.visits = VisitCounter()
        """Distinct (observation, action) pairs the free-running domains visited."""
        self.scores: dict[str, deque[float]] = {
            n: deque(maxlen=self.eval_window) for n in (*self.names, PHYSICAL_NAME)
        }
        self.decisions: list[dict[str, Any]] = []
        """Per sync moment after the first: the iteration, each score and the best learner."""
        self.distillations: list[dict[str, float]] = []
        """Per distillation: the student's disagreement with the consensus before and after."""
        self.eval_steps_taken = 0
        """Twin steps of the evaluations (not part of the twin's ``evaluations``)."""
        self.iterations = 0
        self._env: gym.Env[Any, Any] | None = None
        self._scenario: tuple[Hashable] | None = None
        self._free: FreeRunningDomains | None = None
        self._initial_q: list[NDArray[np.float64]] = []
        self._attached = False
        self.fits: dict[str, bool] = {}
        """Per learner: whether its parameters fit the physical agent (can be adopted)."""

    # --- setup ----------------------------------------------------------------------------------
    def domains_of(self, j: int) -> tuple[int, ...]:
        """The twin domain ids (storage sources) of learner ``j``: ``1 + j m .. (j + 1) m``."""
        return tuple(range(1 + j * self.domains, 1 + (j + 1) * self.domains))

    def bind(self, env: gym.Env[Any, Any], twin: DigitalTwin | None) -> None:
        """Remember the physical env (to read ``env.unwrapped.scenario``) before training."""
        self._env = env

    def attach(self, agent: Agent) -> None:
        """Check, before the first step, that ``use`` can work with this physical agent."""
        if any(learner is agent for learner in self.learners):
            raise ConfigError(
                "a learner is the physical agent itself; give each learner its own agent"
            )
        own = _shapes(agent.state_dict())
        self.fits = {n: _shapes(a.state_dict()) == own
                     for n, a in zip(self.names, self.learners, strict=True)}  # fmt: skip
        if self.use in ("adopt", "scenario") and not any(self.fits.values()):
            raise ConfigError(
                f"use={self.use!r} copies a learner's parameters into the physical agent, but no "
                "learner's state_dict fits it (same keys and shapes); add learners of the "
                "physical agent's architecture, or use='none' and act with choose()/learner()"
            )
        if self.use == "distill":
            tables = [_q_table(name, a) for name, a in zip(self.names, self.learners, strict=True)]
            student = _q_table("the physical agent", agent)
            if any(t.shape != student.shape for t in tables):
                raise ConfigError(
                    "use='distill' regresses the physical Q table toward the learners' tables; "
                    f"their shapes differ: physical {student.shape}, learners "
                    f"{[t.shape for t in tables]}"
                )
            self._initial_q = [t.copy() for t in tables]
        self._attached = True

    # --- the step -------------------------------------------------------------------------------
    def after_step(self, ctx: StepContext, agent: Agent) -> None:
        if not self._attached:
            self.attach(agent)
        if self._free is None:
            self._free = FreeRunningDomains(ctx.twin, len(self.learners) * self.domains,
                                            self.sync_every)  # fmt: skip
        free = self._free
        self.iterations = ctx.iteration
        if free.due(ctx.iteration):
            if free.synced_at:
                self._decide(ctx, agent)
            free.sync(ctx.twin.identical_state, ctx.obs, ctx.mask, iteration=ctx.iteration)
        obs, masks = list(free.obs), list(free.masks)
        actions = []
        for j, learner in enumerate(self.learners):
            if hasattr(learner, "begin_iteration"):
                learner.begin_iteration(ctx.iteration)
            for d in range(j * self.domains, (j + 1) * self.domains):
                actions.append(np.asarray(learner.act(obs[d], explore=True, mask=masks[d])))
        stacked = np.stack(actions).astype(np.int64)
        out = free.step(stacked, restart=(ctx.twin.identical_state, ctx.obs, ctx.mask))
        self.visits.add(obs, stacked)
        for j, learner in enumerate(self.learners):
            rows = slice(j * self.domains, (j + 1) * self.domains)
            batch = Transitions(
                obs=np.stack([np.asarray(o) for o in obs[rows]]),
                action=stacked[rows],
                reward=np.asarray(out.reward[rows], dtype=np.float64),
                next_obs=np.asarray(out.next_obs[rows]),
                terminated=np.asarray(out.terminated[rows], dtype=bool),
                next_mask=None if out.next_mask is None else np.asarray(out.next_mask[rows]),
                source=np.asarray(self.domains_of(j), dtype=np.int64),
            )
            self.storage.add(batch)
            learner.learn(batch._replace(source=np.full(len(batch), PHYSICAL, dtype=np.int64)))

    # --- sync moments ---------------------------------------------------------------------------
    def _decide(self, ctx: StepContext, agent: Agent) -> None:
        """Evaluate every learner and the physical agent, store the learners' parameters, and
        apply ``use``."""
        scenario = self.current_scenario()
        for name, policy in (*zip(self.names, self.learners, strict=True), (PHYSICAL_NAME, agent)):
            self.scores[name].append(self._evaluate(ctx, policy))
        score = {name: float(np.mean(s)) for name, s in self.scores.items()}
        for j, (name, learner) in enumerate(zip(self.names, self.learners, strict=True)):
            self.parameters.put(name, learner.state_dict(), domains=self.domains_of(j),
                                iteration=ctx.iteration, score=score[name],
                                scenario=scenario)  # fmt: skip
        best = max(self.names, key=lambda n: score[n])
        decision: dict[str, Any] = {"iteration": ctx.iteration, "scores": score, "best": best,
                                    "adopted": None}  # fmt: skip
        fitting = [n for n in self.names if self.fits[n]]
        if self.use == "adopt":
            pick = max(fitting, key=lambda n: score[n])
            if score[pick] > score[PHYSICAL_NAME]:
                adopt(agent, self.learner(pick).state_dict())
                decision["adopted"] = pick
        elif self.use == "scenario":
            record = self.parameters.best(scenario, among=fitting)
            if record.score > score[PHYSICAL_NAME]:
                adopt(agent, record.params)
                decision["adopted"] = record.learner
        elif self.use == "distill":
            self.distill(agent)
        self.decisions.append(decision)

    def _evaluate(self, ctx: StepContext, policy_agent: Any) -> float:
        """Greedy return of ``policy_agent`` in the twin from the identical domain's state (not
        counted as twin work; counted in :attr:`eval_steps_taken`)."""
        twin = ctx.twin
        policy = greedy_policy(policy_agent)
        before = twin.evaluations, twin.calls
        out = rollout(twin, [twin.identical_state], policy([ctx.obs], [ctx.mask]), policy,
                      horizon=self.eval_steps)  # fmt: skip
        twin.evaluations, twin.calls = before
        self.eval_steps_taken += int(out.steps[0])
        return float(out.returns[0])

    def distill(self, agent: Agent) -> dict[str, float]:
        """Regress the physical Q table toward the learners' consensus (see the class docstring);
        returns (and records) the disagreement before and after."""
        if not self._initial_q:
            raise ConfigError("distill() needs use='distill' (tabular learners and agent)")
        tables = [_q_table(n, a) for n, a in zip(self.names, self.learners, strict=True)]
        visited = np.zeros(tables[0].shape, dtype=bool)
        for table, initial in zip(tables, self._initial_q, strict=True):
            visited |= table != initial
        consensus = np.mean(tables, axis=0)
        state = agent.state_dict()
        q = np.asarray(state["q"], dtype=np.float64)
        rows = np.asarray(visited.any(axis=1), dtype=bool)
        before = disagreement(q, consensus, rows)
        q = np.where(rows[:, None], q + self.distill_rate * (consensus - q), q)
        agent.load_state_dict({**state, "q": q})
        record = {"before": before, "after": disagreement(q, consensus, rows),
                  "states": float(rows.sum())}  # fmt: skip
        self.distillations.append(record)
        return record

    # --- on demand ------------------------------------------------------------------------------
    def set_scenario(self, scenario: Hashable) -> None:
        """Name the current scenario (any hashable key) instead of ``env.unwrapped.scenario``."""
        self._scenario = (scenario_key(scenario),)

    def current_scenario(self) -> Hashable:
        """The key of :meth:`set_scenario`, else ``env.unwrapped.scenario`` of the bound env if
        it has one, else None."""
        if self._scenario is not None:
            return self._scenario[0]
        base = None if self._env is None else self._env.unwrapped
        return scenario_key(getattr(base, "scenario", None))

    def choose(self, scenario: Hashable = None, *, current: bool = True) -> str:
        """The learner stored as best for ``scenario`` (with ``current`` and no ``scenario``:
        the current one, :meth:`current_scenario`)."""
        if scenario is None and current:
            scenario = self.current_scenario()
        return self.parameters.best(scenario).learner

    def learner(self, name: str) -> Any:
        """The learner called ``name``."""
        if name not in self.names:
            raise ConfigError(f"no learner {short_repr(name)}; learners: {', '.join(self.names)}")
        return self.learners[self.names.index(name)]

    def winner(self) -> str | None:
        """The learner with the best current score (None before the first evaluation)."""
        scored = [n for n in self.names if self.scores[n]]
        return max(scored, key=lambda n: float(np.mean(self.scores[n]))) if scored else None

    def stats(self) -> dict[str, Any]:
        """Scores, wins, adoptions, distillations and coverage, as plain JSON values."""
        wins = {n: sum(d["best"] == n for d in self.decisions) for n in self.names}
        pairs = len(self.visits)
        return {
            "learners": list(self.names),
            "scores": {n: float(np.mean(s)) if s else math.nan for n, s in self.scores.items()},
            "wins": wins,
            "winner": self.winner(),
            "adoptions": sum(d["adopted"] is not None for d in self.decisions),
            "decisions": len(self.decisions),
            "distinct_pairs": pairs,
            "pairs_per_step": pairs / max(self.iterations, 1),
            "restarts": 0 if self._free is None else self._free.restarts,
            "eval_steps": self.eval_steps_taken,
            "distillations": list(self.distillations),
        }


def adopt(agent: Agent, params: Mapping[str, Any]) -> None:
    """Load a learner's parameters into ``agent``: every floating-point array of ``params``
    (weights, Q values, optimizer moments); the others (counters, the RNG state) stay the agent's
    own, so the physical agent keeps its own random stream (as ``TwinAgents`` does)."""
    own = agent.state_dict()
    merged = {key: np.array(params[key], copy=True)
              if np.issubdtype(np.asarray(own[key]).dtype, np.floating) else value
              for key, value in own.items()}  # fmt: skip
    agent.load_state_dict(merged)


def disagreement(
    student: NDArray[np.float64], teacher: NDArray[np.float64], rows: NDArray[np.bool_]
) -> float:
    """Share of the states ``rows`` where the student's greedy action (first maximum) differs
    from the teacher's (0 when no state is selected)."""
    if not rows.any():
        return 0.0
    return float(np.mean(student[rows].argmax(axis=1) != teacher[rows].argmax(axis=1)))


def _check_learners(learners: Any) -> tuple[list[str], list[Any]]:
    if not isinstance(learners, Mapping) or not learners:
        raise ConfigTypeError(
            f"learners must be a non-empty mapping of name -> agent, got {short_repr(learners)}"
        )
    if len(learners) > MAX_LEARNERS:
        raise ConfigError(f"{len(learners)} learners; at most {MAX_LEARNERS}")
    for name, agent in learners.items():
        if not isinstance(name, str) or not name or name == PHYSICAL_NAME:
            raise ConfigError(
                f"learner name {short_repr(name)} must be a non-empty string other than "
                f"{PHYSICAL_NAME!r}"
            )
        missing = [m for m in ("act", "learn", "state_dict", "load_state_dict")
                   if not callable(getattr(agent, m, None))]  # fmt: skip
        if missing:
            raise ConfigTypeError(
                f"learner {name!r} is not an agent: it lacks {', '.join(missing)}"
            )
    if len({id(a) for a in learners.values()}) != len(learners):
        raise ConfigError("two learners are the same agent object; give each its own agent")
    return list(learners), list(learners.values())


def _shapes(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {key: np.shape(value) for key, value in state.items()}


def _q_table(name: str, agent: Any) -> NDArray[np.float64]:
    table = agent.state_dict().get("q")
    if table is None:
        raise ConfigError(
            f"use='distill' regresses Q tables, and {name} has none (state_dict key 'q'); "
            "distillation is implemented for tabular agents (QLearning, Sarsa, ExpectedSarsa)"
        )
    return np.asarray(table, dtype=np.float64)
