"""Observation windows of a recurrent :class:`~twinrl.agents.dqn.DQN` (``DQNConfig.history`` > 1).

A recurrent Q-network for partial observation reads the last L observations, not the current one
alone. The agent keeps that window itself, so every caller goes on handing it one observation at
a time (the training loop, ``DifferentialTwins``' free-running domains, twin rollouts). A window
is L frames, oldest first; a frame is the observation, flattened, followed by a flag that is 1 for
a real observation; the frames before an episode's first are zeros (flag 0), so a padded frame
never looks like an observation of zeros.

Which window goes on while learning: the agent may act in several trajectories between two ``learn`` calls
(``DifferentialTwins`` gives a learner one observation per domain, then learns one row per
domain), so windows are kept per *slot*: the i-th ``act`` since the last ``learn`` and the i-th
physical row of that ``learn`` are slot i. A slot's window goes on while each observation is the
previous row's next observation (the test :class:`~twinrl.agents.nstep.NStepBuffer` uses too);
otherwise (a reset, a restart or a sync of the domain) a fresh window starts; a terminated row
ends it. An episode that restarts in a state whose observation equals the last one reached
continues its window: a known limit of telling episodes apart by observations.

Greedy acting (``act(explore=False)``, e.g. an evaluation loop over the physical env) is not
followed by ``learn``, so nothing tells the agent where an episode starts: it keeps one greedy
window that each greedy act extends, and the caller starts an episode with
``DQN.begin_episode()`` after each ``env.reset``. A twin rollout builds its own windows
(:meth:`ObservationHistory.greedy_policy`, used by :func:`twinrl.twin.greedy_policy`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.agents.base import PHYSICAL, Transitions
from twinrl.checkpoint import check_state_dict
from twinrl.errors import CheckpointError, ConfigError

Window = NDArray[np.float32]
"""``(history, obs_size + 1)``: the frames, oldest first; the last column flags real ones."""
MAX_SLOTS = 1_000_000
"""Most windows kept at once (one per trajectory the agent acts in), in memory or a checkpoint."""


class ObservationHistory:
    """The windows of one recurrent agent (see the module docstring).

    Args:
        history: frames per window, L > 1.
        obs_size: entries of one flattened observation.
    """

    def __init__(self, history: int, obs_size: int) -> None:
        self.history, self.obs_size = history, obs_size
        self.frame_size = obs_size + 1
        self.window_size = history * self.frame_size
        """Entries of a flattened window: what the network reads per row."""
        self.slots: list[Window | None] = []
        """Per slot, the window its next observation extends (None: the episode ended)."""
        self.acted: list[Window] = []
        """The windows of the exploring ``act`` calls since the last ``learn``, in order."""
        self.greedy: Window | None = None
        """The window of greedy acting (``act(explore=False)``), None at an episode's start."""

    # --- windows --------------------------------------------------------------------------------
    def _frame(self, obs: Any) -> NDArray[np.float32]:
        x = np.asarray(obs, dtype=np.float32).reshape(-1)
        if x.size != self.obs_size:
            raise ValueError(f"observation has {x.size} entries, this DQN takes {self.obs_size}")
        return np.append(x, np.float32(1.0))

    def fresh(self, obs: Any) -> Window:
        """The window of an episode's first observation: zeros, then ``obs``."""
        window = np.zeros((self.history, self.frame_size), dtype=np.float32)
        window[-1] = self._frame(obs)
        return window

    def extend(self, window: Window, obs: Any) -> Window:
        """``window`` with ``obs`` appended and its oldest frame dropped."""
        return np.concatenate([window[1:], self._frame(obs)[None]])

    def _continues(self, window: Window | None, obs: Any) -> bool:
        return window is not None and np.array_equal(window[-1], self._frame(obs))

    def _window(self, slot: int, obs: Any) -> Window:
        """The window of ``obs`` in ``slot``: the slot's own extended, if ``obs`` continues it."""
        last = self.slots[slot] if slot < len(self.slots) else None
        return last if last is not None and self._continues(last, obs) else self.fresh(obs)

    # --- acting and learning --------------------------------------------------------------------
    def for_act(self, obs: Any) -> Window:
        """The window to act on ``obs`` with (the next slot), remembered for :meth:`rows`."""
        if len(self.acted) >= MAX_SLOTS:
            raise ConfigError(
                f"{MAX_SLOTS} exploring act() calls of a recurrent DQN without a learn(): each "
                "keeps a window for the row it will learn from; act with explore=False outside "
                "training (then call begin_episode() at each reset)"
            )
        window = self._window(len(self.acted), obs)
        self.acted.append(window)
        return window

    def for_greedy(self, obs: Any) -> Window:
        """The window to act greedily on ``obs``: the greedy window extended by ``obs`` (fresh
        after :meth:`begin_episode`). Greedy acts are not learned from, so no slot is used."""
        self.greedy = self.fresh(obs) if self.greedy is None else self.extend(self.greedy, obs)
        return self.greedy

    def begin_episode(self) -> None:
        """The next greedy act starts an episode (a fresh window)."""
        self.greedy = None

    def rows(self, transitions: Transitions) -> Transitions:
        """``transitions`` (physical rows only) with windows as ``obs`` and ``next_obs``; each
        row's slot then holds its next window (none after a terminated row).

        Raises:
            ConfigError: a twin row (source >= 1): it comes from a rollout without history.
        """
        source = np.asarray(transitions.source)
        if not len(transitions):
            return transitions
        if (source != PHYSICAL).any():
            raise ConfigError(
                "a recurrent DQN (agent.history > 1) learns from physical trajectories only; a "
                "twin row (source >= 1, e.g. from PredictiveTargets) has no observation history. "
                "Use history=1 with twin transitions, or drop the assist"
            )
        obs, windows = [], []
        slots: list[Window | None] = []
        for i in range(len(transitions)):
            acted = self.acted[i] if i < len(self.acted) else None
            o = transitions.obs[i]
            window = (
                acted if acted is not None and self._continues(acted, o) else self._window(i, o)
            )
            following = self.extend(window, transitions.next_obs[i])
            obs.append(window.reshape(-1))
            windows.append(following.reshape(-1))
            slots.append(None if bool(transitions.terminated[i]) else following)
        self.slots, self.acted = slots, []
        return transitions._replace(obs=np.stack(obs), next_obs=np.stack(windows))

    def greedy_policy(
        self, batched: Callable[[NDArray[np.float32], Any], NDArray[np.int64]]
    ) -> Callable[[Sequence[Any], Sequence[Any]], NDArray[np.int64]]:
        """A greedy policy over one batch of trajectories (:data:`twinrl.twin.rollout.Policy`):
        its windows start fresh at the first call and each continues with its trajectory's next
        observation (the agent's own slots are not touched). A twin rollout drops trajectories
        whose episode ended, which would mix the windows up, so a change of the batch's size is
        refused; one trajectory (every greedy evaluation) is always fine."""
        windows: list[Window] = []

        def policy(observations: Sequence[Any], masks: Sequence[Any]) -> NDArray[np.int64]:
            if not windows:
                windows.extend(self.fresh(o) for o in observations)
            elif len(observations) != len(windows):
                raise ConfigError(
                    f"a recurrent DQN's greedy policy followed {len(windows)} trajectories and "
                    f"is now asked for {len(observations)}: it cannot tell which ended. Roll "
                    "out one trajectory at a time, or use history=1"
                )
            else:
                windows[:] = [self.extend(w, o) for w, o in zip(windows, observations, strict=True)]
            given = None if all(m is None for m in masks) else list(masks)
            return np.asarray(batched(np.stack([w.reshape(-1) for w in windows]), given), np.int64)

        return policy

    # --- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, NDArray[Any]]:
        """The slots' windows as ``history.windows`` ``(slots, L, obs_size + 1)`` and
        ``history.live`` (False where the slot's episode ended). Windows of ``act`` calls not yet
        learned from are not saved: the training loop saves after ``learn``."""
        live = np.array([w is not None for w in self.slots], dtype=bool)
        shape = (len(self.slots), self.history, self.frame_size)
        windows = np.zeros(shape, dtype=np.float32)
        for i, w in enumerate(self.slots):
            if w is not None:
                windows[i] = w
        return {"history.windows": windows, "history.live": live}

    def load_state_dict(self, state: Mapping[str, NDArray[Any]]) -> None:
        """Restore :meth:`state_dict` output, checked first (nothing changes on an error).

        Raises:
            CheckpointError: a key is missing or extra, or a shape, dtype or value is wrong.
        """
        live = np.asarray(state.get("history.live", np.zeros((0,), bool)))
        n = live.shape[0] if live.ndim == 1 else -1
        if not 0 <= n <= MAX_SLOTS:
            raise CheckpointError(
                f"checkpoint history.live has shape {live.shape}; expected (slots,)"
            )
        expected = {
            "history.windows": ((n, self.history, self.frame_size), "f"),
            "history.live": ((n,), "b"),
        }
        checked = check_state_dict(state, expected, owner="DQN history")
        windows = np.asarray(checked["history.windows"], dtype=np.float32)
        flags = windows[..., -1]
        if not np.isin(flags, (0.0, 1.0)).all():
            raise CheckpointError("checkpoint history.windows holds a flag other than 0 or 1")
        self.slots = [windows[i].copy() if live[i] else None for i in range(n)]
        self.acted = []
