"""On-policy tabular learners beside Q-learning: SARSA and Expected SARSA (Sutton & Barto, 2nd ed.,
Sections 6.4 and 6.6), for the differential twins of paper 000, Section II-B ("different RL
training methodologies").

Both are :class:`~twinrl.agents.QLearning` with another value of the next state
(:meth:`~twinrl.agents.QLearning.next_value`): the same table, configuration, exploration schedule,
epsilon-greedy choice and Eq. (5) update (:mod:`twinrl.agents.selection`), the same checkpoints.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from twinrl.agents.qlearning import QLearning
from twinrl.agents.selection import UNIFORMS_PER_ACTION, epsilon_greedy


class Sarsa(QLearning):
    """SARSA: the target bootstraps on ``Q(s', a')`` with ``a'`` drawn from the agent's own
    epsilon-greedy policy in ``s'`` (two uniforms from its RNG, as :meth:`act` draws them).

    The :class:`~twinrl.agents.Agent` protocol hands a learner whole transitions, not the next
    action it will take, so ``a'`` is a fresh draw from the policy at learning time rather than the
    action executed next. Its distribution is the same (the policy's in ``s'``), so the expected
    target is SARSA's; the draw is independent of the executed action.
    """

    def next_value(self, row: NDArray[np.float64]) -> float:
        u = self.rng.random(UNIFORMS_PER_ACTION)
        valid = np.arange(row.shape[0], dtype=np.int64)
        ties = self.config.tie_break == "random"
        return float(row[epsilon_greedy(row, valid, self.epsilon, u[0], u[1], ties)])


class ExpectedSarsa(QLearning):
    """Expected SARSA: the target bootstraps on the expectation of ``Q(s', .)`` under the agent's
    epsilon-greedy policy, ``(1 - eps) max Q(s', .) + eps mean Q(s', .)`` over the valid actions
    (the greedy share goes to the best value whichever tied action the policy picks)."""

    def next_value(self, row: NDArray[np.float64]) -> float:
        eps = self.epsilon
        return float((1.0 - eps) * row.max() + eps * row.mean())
