"""n-step returns for DQN: consecutive physical transitions -> k-step transitions with discount."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from twinrl.agents.base import PHYSICAL, Transitions


class NStepBuffer:
    """Turns consecutive physical one-step transitions into n-step ones (n-step DQN).

    Each emitted row holds ``R = sum_i gamma^i r_{t+i}`` over ``k <= n`` steps, the observation
    ``k`` steps ahead and ``discount = gamma^k``. At termination every pending row is emitted with
    the remaining steps (terminated). An episode that ends by truncation bootstraps: it is detected
    when the next transition does not start where the previous one ended (the env was reset), or by
    :meth:`flush`, and its pending rows are emitted shorter and not terminated.
    """

    def __init__(self, n: int, gamma: float) -> None:
        self.n, self.gamma = n, gamma
        self.pending: deque[tuple[Any, ...]] = deque()

    def push(self, row: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Add one ``(obs, action, reward, next_obs, terminated, next_mask)``; return rows done."""
        out: list[tuple[Any, ...]] = []
        if self.pending and not np.array_equal(row[0], self.pending[-1][3]):
            out += self.flush()
        self.pending.append(row)
        if row[4]:
            out += self.flush()
        elif len(self.pending) == self.n:
            out.append(self._emit())
            self.pending.popleft()
        return out

    def flush(self) -> list[tuple[Any, ...]]:
        """Emit every pending row (episode end); terminated iff the last pending row is."""
        out = []
        while self.pending:
            out.append(self._emit())
            self.pending.popleft()
        return out

    def _emit(self) -> tuple[Any, ...]:
        first, last = self.pending[0], self.pending[-1]
        ret = sum(self.gamma**i * float(row[2]) for i, row in enumerate(self.pending))
        k = len(self.pending)
        return (first[0], first[1], ret, last[3], bool(last[4]), last[5], self.gamma**k)


def rows_to_transitions(rows: Sequence[tuple[Any, ...]], with_mask: bool) -> Transitions:
    """Physical Transitions from :class:`NStepBuffer` rows ``(obs, action, R, next_obs,
    terminated, next_mask, discount)``."""
    return Transitions(
        obs=np.stack([np.asarray(r[0]) for r in rows]),
        action=np.stack([np.asarray(r[1], dtype=np.int64) for r in rows]),
        reward=np.array([r[2] for r in rows], dtype=np.float64),
        next_obs=np.stack([np.asarray(r[3]) for r in rows]),
        terminated=np.array([r[4] for r in rows], dtype=bool),
        next_mask=np.stack([np.asarray(r[5], dtype=np.int8) for r in rows]) if with_mask else None,
        source=np.full(len(rows), PHYSICAL, dtype=np.int64),
        discount=np.array([r[6] for r in rows], dtype=np.float64),
    )
