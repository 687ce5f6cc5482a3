"""The hand-checkable road shared by the APSelection env and baseline tests."""

from __future__ import annotations

from twinrl.envs.ap_dynamics import APSelectionParams

# A road where times are easy to check by hand: 100 m at 10 m/s, 10 epochs -> epoch t at t s and
# x = 10 t m. AP0 covers [0, 100] m = [0, 10] s at 1 Mbit/s (price 2); AP1 covers [20, 40] m =
# [2, 4] s at 2 Mbit/s (0.5); AP2 covers [70, 90] m = [7, 9] s at 1 Mbit/s (1). Class 0: 1 Mbit due
# in 2 s; class 1: 3 Mbit due in 10 s. Reward on success: 10 - latency - price * Mbit.
HAND = {
    "road_length": 100.0,
    "speed": 10.0,
    "n_steps": 10,
    "ap_positions": (50.0, 30.0, 80.0),
    "ap_radii": (50.0, 10.0, 10.0),
    "ap_rates": (1e6, 2e6, 1e6),
    "ap_prices": (2.0, 0.5, 1.0),
    "task_sizes": (1e6, 3e6),
    "task_deadlines": (2.0, 10.0),
    "task_probs": (0.5, 0.5),
}
P = APSelectionParams(**HAND)  # type: ignore[arg-type]
