"""Small checks shared by parameter dataclasses: each raises an error that names the bad value."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def check_range(name: str, value: Any, low: float, high: float) -> None:
    """Raise if ``value`` is not a real number within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    if math.isnan(value) or not low <= value <= high:
        raise ValueError(f"{name}={value!r} is out of range; allowed: [{low}, {high}]")


def check_positive(name: str, value: Any) -> None:
    """Raise if ``value`` is not a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}={value!r} is out of range; allowed: a finite number > 0")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """Raise if ``value`` is not one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {', '.join(choices)}")
