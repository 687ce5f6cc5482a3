"""Free-running digital domains: twin domains that run their own trajectories between sync moments.

Paper 000, Section II-A: "Other digital domains, referred to as different digital domains, only
synchronize with the physical space at specific moments. At other times, these domains test the
impact of various actions [...]. Thus, their behavior can differ from that of the physical space."
The assists that try actions from the synced state (``ActionTrials``, ``TwinAgents``) re-sync
their domains to the physical state at every step; :class:`FreeRunningDomains` keeps n domain
states of its own instead. They are set to the identical domain's state at the sync moments
(every ``sync_every`` physical iterations, 1, 1 + delta, 1 + 2 delta, ..., or on demand with
:meth:`FreeRunningDomains.sync`) and in between each follows the actions its user gives it. A
domain whose episode ends restarts from a state the twin knows: the one its user passes (e.g. the
identical domain's current mirror of the physical state: the domain alone is synced on demand),
else the state of the last sync.

:class:`VisitCounter` counts the distinct (observation, action) pairs a set of domains visited, the
coverage measure reported per physical step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from twinrl.contract import DomainSteps
from twinrl.errors import ConfigError
from twinrl.validation import check_int

if TYPE_CHECKING:
    from twinrl.twin.digital_twin import DigitalTwin

MAX_DOMAINS = 1_000_000
"""Most free-running domains of one set."""


class FreeRunningDomains:
    """``n`` different domains of ``twin`` that run their own trajectories between sync moments.

    Args:
        twin: the digital space whose model steps the domains (its :meth:`DigitalTwin.step_domains`,
            so the steps count as twin work in :attr:`DigitalTwin.evaluations`).
        n: number of domains.
        sync_every: delta: the domains are synced at physical iterations 1, 1 + delta, 1 + 2 delta,
            ... (:meth:`due`); None: only when :meth:`sync` is called (on demand).
    """

    def __init__(self, twin: DigitalTwin, n: int, sync_every: int | None = None) -> None:
        self.twin = twin
        self.n = check_int("n", n, 1, MAX_DOMAINS)
        self.sync_every = None if sync_every is None else check_int("sync_every", sync_every, 1,
                                                                    2**62)  # fmt: skip
        self.states: list[Any] = []
        """Each domain's current state (empty before the first sync)."""
        self.obs: list[Any] = []
        """Each domain's current observation."""
        self.masks: list[NDArray[np.int8] | None] = []
        """Each domain's valid actions (None: all valid)."""
        self.synced_at: list[int] = []
        """The physical iterations at which the domains were synced, in order."""
        self.restarts = 0
        """Domain episodes that ended and restarted from the last synced state."""
        self._origin: tuple[Any, Any, NDArray[np.int8] | None] | None = None

    def due(self, iteration: int) -> bool:
        """Whether physical iteration ``iteration`` (1-based) is a sync moment: the first one, and
        every ``sync_every``-th after it (never on schedule when ``sync_every`` is None, except
        before the first sync)."""
        if not self.synced_at:
            return True
        return self.sync_every is not None and (iteration - 1) % self.sync_every == 0

    def sync(
        self, state: Any, obs: Any, mask: NDArray[np.int8] | None = None, *, iteration: int = 0
    ) -> None:
        """Set every domain to ``state`` (with its observation and mask), e.g. the identical
        domain's mirror of the physical state; ``iteration`` is recorded in :attr:`synced_at`."""
        self._origin = (state, obs, mask)
        self.states = [state] * self.n
        self.obs = [obs] * self.n
        self.masks = [mask] * self.n
        self.synced_at.append(int(iteration))

    def step(
        self,
        actions: NDArray[np.int64] | Sequence[Any],
        restart: tuple[Any, Any, NDArray[np.int8] | None] | None = None,
    ) -> DomainSteps:
        """Step every domain once with its own action (one :meth:`DigitalTwin.step_domains` call)
        and advance it; a domain whose episode ended (terminated or truncated) restarts from
        ``restart`` = ``(state, obs, mask)`` if given, else from the last synced state. Returns the
        step's outcome (``next_obs`` as reached, before a restart)."""
        if self._origin is None:
            raise ConfigError("free-running domains must be synced (sync()) before they step")
        actions = np.asarray(actions, dtype=np.int64)
        if actions.shape[0] != self.n:
            raise ConfigError(f"got {actions.shape[0]} actions for {self.n} free-running domains")
        out = self.twin.step_domains(self.states, actions)
        done = out.done
        state, obs, mask = self._origin if restart is None else restart
        for j in range(self.n):
            if done[j]:
                self.states[j], self.obs[j], self.masks[j] = state, obs, mask
                self.restarts += 1
            else:
                self.states[j] = out.states[j]
                self.obs[j] = out.next_obs[j]
                self.masks[j] = None if out.next_mask is None else out.next_mask[j]
        return out


class VisitCounter:
    """Distinct (observation, action) pairs seen: observations and actions are keyed by their
    bytes, so any numpy observation (an index or a feature vector) works."""

    def __init__(self) -> None:
        self._seen: set[tuple[bytes, bytes]] = set()

    def add(self, obs: Sequence[Any] | NDArray[Any], actions: Sequence[Any] | NDArray[Any]) -> None:
        """Record the pairs ``(obs[i], actions[i])``."""
        for o, a in zip(obs, actions, strict=True):
            self._seen.add((np.asarray(o).tobytes(), np.asarray(a, dtype=np.int64).tobytes()))

    def __len__(self) -> int:
        return len(self._seen)
