"""Asynchronous twin agents (DTAQL, paper 002 Algorithm 1)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from twinrl.agents.base import Agent, Transitions, as_generator
from twinrl.assists.base import StepContext, check_count, trusted_rows, twin_transitions
from twinrl.checkpoint import check_like
from twinrl.errors import CheckpointError
from twinrl.resources import check_memory, twin_agents_bytes
from twinrl.validation import check_choice, check_int

MAX_TWIN_AGENTS = 100_000
"""Most twin agents (phi) of one TwinAgents assist."""
OWN_KEYS = ("rng",)
"""State entries every agent keeps as its own through a sharing step (its random stream)."""
AVERAGES = ("mean", "visit")
"""Readings of Algorithm 1, line 12 (see :class:`TwinAgents`)."""


class Spawnable(Agent, Protocol):
    def spawn(self, rng: np.random.Generator) -> Any: ...

    def begin_iteration(self, iteration: int) -> None: ...

    def load_state_dict(self, state: dict[str, NDArray[Any]], *, validate: bool = True) -> None: ...


class TwinAgents:
    """``n_agents`` twin agents, each with its own parameters, act epsilon-greedily from the synced
    state in their own digital domains and learn from their own outcomes (Algorithm 1, lines 7-10).
    Every ``sync_every`` physical iterations the physical and twin parameters are averaged and the
    average is copied to all of them (lines 11-17).

    Averaging applies to every floating-point array of ``state_dict()``. It is computed as
    ``base + (sum_i (theta_i - base)) / (1 + phi)``, with ``base`` the parameters all agents shared
    after the previous averaging (or the twins' initial copy) and the deltas summed in the order
    physical, twin 1, ..., twin phi. This equals the plain average, keeps every parameter that no
    agent changed exactly at its shared value, and lets a sparse backend read only what changed.
    Other arrays (counters) are kept from the physical agent, except :data:`OWN_KEYS` (each
    agent's random stream), which every agent keeps as its own. Algorithm 1, line 9 writes the
    physical reward ``r``; each twin agent learns from its own reward.

    Line 12 has two readings (``average``):

    * ``"mean"`` (the default, line 12 as written): every entry is the plain mean of the physical
      and the phi twin tables, so an entry one agent updated moves by its change / (1 + phi).
    * ``"visit"``: every entry is the mean over the agents that updated it since the last sharing
      step, ``base + (sum of their changes) / (how many changed it)``; an entry no agent changed
      keeps its shared value. An update is seen by its effect, so one that leaves an entry
      unchanged to the last bit (its target equals it) is not counted; with a perfect twin and
      one-step episodes every update of an entry from the same shared value has the same target,
      so such an entry is unchanged in every agent that updated it and both counts agree.

    Args:
        n_agents: phi, the number of twin agents.
        sync_every: delta, the knowledge-sharing period in physical iterations (512 in the paper).
        rng: stream from which each twin agent's own stream is spawned.
        average: the reading of line 12, ``"mean"`` or ``"visit"``.
    """

    name = "twin_agents"

    def __init__(
        self,
        n_agents: int,
        sync_every: int = 512,
        *,
        rng: np.random.SeedSequence | int | None = None,
        average: str = "mean",
    ) -> None:
        self.n_agents = check_int("n_agents", n_agents, 1, MAX_TWIN_AGENTS)
        self.sync_every = check_count("sync_every", sync_every)
        self.average = check_choice("average", average, AVERAGES)
        seq = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
        self._streams = seq.spawn(self.n_agents)
        self.agents: list[Spawnable] = []
        self._base: dict[str, NDArray[Any]] = {}

    def attach(self, agent: Agent) -> None:
        """Create the twin agents as copies of the physical agent (Fig. 1: twins mirror it)."""
        spawn = getattr(agent, "spawn", None)
        if not callable(spawn):
            raise TypeError(f"{type(agent).__name__} cannot spawn twin agents (needs spawn(rng))")
        nbytes = getattr(agent, "nbytes", None)  # without copying the parameters to count them
        if nbytes is None:
            nbytes = sum(np.asarray(v).nbytes for v in agent.state_dict().values())
        check_memory(twin_agents_bytes(self.n_agents, nbytes),
                     f"{self.n_agents} twin agents' parameters", "n_agents")  # fmt: skip
        self.agents = [spawn(as_generator(s)) for s in self._streams]
        self._base = self.agents[0].state_dict()

    def after_step(self, ctx: StepContext, agent: Agent) -> None:
        if not self.agents:
            self.attach(agent)
        actions = np.empty(self.n_agents, dtype=np.int64)
        for j, twin_agent in enumerate(self.agents):  # line 8
            twin_agent.begin_iteration(ctx.iteration)
            actions[j] = twin_agent.act(ctx.obs, explore=True, mask=ctx.mask)
        out = ctx.twin.trial_identical(actions)
        batch = twin_transitions(ctx, actions, out._replace(info={}))  # every agent's own row
        trusted = trusted_rows(out)
        for j, twin_agent in enumerate(self.agents):  # line 9
            if trusted is None or trusted[j]:
                twin_agent.learn(_row(batch, j))
        if ctx.iteration % self.sync_every == 0:  # lines 11-17
            self.share(agent)

    def _average(
        self, base: NDArray[np.float64], deltas: Iterator[NDArray[np.float64]]
    ) -> NDArray[np.float64]:
        """Line 12 for one array, from each agent's change (physical first, then twins 1..phi)."""
        delta = next(deltas)
        if self.average == "mean":
            for own in deltas:
                delta += own
            return shared_average(base, delta, self.n_agents)
        changed = (delta != 0).astype(np.int64)
        for own in deltas:
            delta += own
            changed += own != 0
        return visit_average(base, delta, changed)

    def share(self, agent: Agent) -> None:
        """Average the physical and twin parameters and copy the average to all of them."""
        states = [agent.state_dict()] + [a.state_dict() for a in self.agents]
        merged = dict(states[0])
        for key, value in states[0].items():
            if np.issubdtype(np.asarray(value).dtype, np.floating):
                base = np.asarray(self._base[key], dtype=np.float64)
                deltas = (np.asarray(st[key], dtype=np.float64) - base for st in states)
                merged[key] = self._average(base, deltas)
        agent.load_state_dict(merged)  # validated once, on the physical agent
        for twin_agent, own in zip(self.agents, states[1:], strict=True):
            keep = {key: own[key] for key in OWN_KEYS if key in own}  # its own random stream
            twin_agent.load_state_dict({**merged, **keep}, validate=False)
        self._base = {key: np.array(value, copy=True) for key, value in merged.items()}

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """Arrays only: every twin agent's ``state_dict()`` entry stacked along a first axis of
        ``n_agents`` (``agents.<key>``) and the shared parameters of the last sharing step
        (``base.<key>``, the float entries). Empty before :meth:`attach`."""
        if not self.agents:
            return {}
        states = [a.state_dict() for a in self.agents]
        out = {f"agents.{k}": np.stack([st[k] for st in states]) for k in states[0]}
        for key, value in self._base.items():
            if np.issubdtype(np.asarray(value).dtype, np.floating):
                out[f"base.{key}"] = np.array(value, copy=True)
        return out

    def load_state_dict(self, state: Mapping[str, NDArray[Any]]) -> None:
        """Restore :meth:`state_dict` output into the attached twin agents (checked first;
        ``CheckpointError`` naming the key, nothing changed then)."""
        if not self.agents:
            raise CheckpointError(
                "TwinAgents.load_state_dict needs attached agents: attach() first"
            )
        state = check_like(state, self.state_dict(), owner="TwinAgents")
        stacked = {
            k.removeprefix("agents."): v for k, v in state.items() if k.startswith("agents.")
        }
        for j, twin_agent in enumerate(self.agents):  # each agent checks its own entries
            twin_agent.load_state_dict({k: v[j] for k, v in stacked.items()})
        for key, value in state.items():
            if key.startswith("base."):
                self._base[key.removeprefix("base.")] = np.array(value, copy=True)


def shared_average(
    base: NDArray[np.float64], delta_sum: NDArray[np.float64], n_twins: int
) -> NDArray[np.float64]:
    """Algorithm 1, line 12: the mean of the physical and ``n_twins`` twin parameters, as
    ``base + (sum of their changes from base) / (1 + n_twins)``. The one implementation: the
    fused backend calls it too."""
    return base + delta_sum / (1 + n_twins)


def visit_average(
    base: NDArray[np.float64], delta_sum: NDArray[np.float64], changed: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Algorithm 1, line 12 read per entry (``TwinAgents(average="visit")``): the mean over the
    agents that changed an entry, ``base + (sum of their changes) / changed``, and ``base`` where
    no agent changed it. The one implementation: the fused backend calls it too."""
    return np.where(changed > 0, base + delta_sum / np.maximum(changed, 1), base)


def _row(batch: Transitions, j: int) -> Transitions:
    def pick(x: NDArray[Any] | None) -> NDArray[Any] | None:
        return None if x is None else x[j : j + 1]

    return Transitions(*(pick(x) for x in batch))  # type: ignore[arg-type]
