from __future__ import annotations

import math

import numpy as np
import pytest

from twinrl.experiments import metrics


def test_convergence_time_is_first_iteration_after_which_values_stay_good() -> None:
    v = np.array([-5.0, -3.0, -4.0, -3.0, -3.0])
    assert metrics.convergence_time(v, -3.0) == 4
    assert metrics.convergence_time(np.array([-3.0, -3.0]), -3.0) == 1
    assert metrics.convergence_time(np.array([-3.0, -4.0]), -3.0) is None
    assert metrics.convergence_time(v, -3.0, rtol=0.5) == 2  # -5 is outside -3 +- 1.5, -4 inside
    assert metrics.convergence_time(np.array([5.0, 3.0]), 3.0, higher_is_better=False) == 2


def test_convergence_time_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        metrics.convergence_time(np.array([]), 1.0)
    with pytest.raises(ValueError, match="rtol"):
        metrics.convergence_time(np.array([1.0]), 1.0, rtol=-1)


def test_normalized_reward_endpoints() -> None:
    assert metrics.normalized_reward(2.0, best=2.0, worst=6.0) == 1.0
    assert metrics.normalized_reward(6.0, best=2.0, worst=6.0) == 0.0
    assert metrics.normalized_reward(3.0, best=2.0, worst=6.0) == 0.75
    assert metrics.normalized_reward(3.0, best=3.0, worst=3.0) == 1.0


def test_mean_ci_against_hand_computed_t_interval() -> None:
    est = metrics.mean_ci([1.0, 2.0, 3.0])
    # mean 2, sd 1, t_{0.975,2} = 4.303 -> half width 4.303 / sqrt(3)
    assert est.mean == 2.0 and est.half_width == pytest.approx(4.303 / math.sqrt(3)) and est.n == 3
    assert metrics.mean_ci([4.0]).half_width == 0.0
    assert metrics.mean_ci([]).n == 0 and str(metrics.mean_ci([])) == "n/a"


def test_format_convergence_reports_share() -> None:
    assert metrics.format_convergence([10, 20, None], 100) == "20 (67% conv.)"
    assert metrics.format_convergence([None, None, 5], 100) == "> 100 (33% conv.)"
