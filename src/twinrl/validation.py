"""Checks shared by every parameter and configuration dataclass.

Each check takes the field's name and the value the user gave, raises
:class:`~twinrl.errors.ConfigTypeError` (a ``TypeError``) for a value of the wrong type or
:class:`~twinrl.errors.ConfigError` (a ``ValueError``) for one out of range, with a message that
names the field, shows the value (bounded by :func:`~twinrl.errors.short_repr`) and states what is
allowed, and returns the value as a plain Python object: numpy scalars become ``int``/``float``/
``bool`` and a list becomes a tuple, so a dataclass holds plain values and serializes to JSON.

This module sits at the bottom of the package: it imports nothing of twinrl but
:mod:`twinrl.errors`, so every layer (envs, agents, config) may use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from twinrl.errors import ConfigError, ConfigTypeError, short_repr

__all__ = [
    "check_bool",
    "check_choice",
    "check_float",
    "check_float_tuple",
    "check_int",
    "check_int_tuple",
    "check_positive",
    "check_range",
    "plain",
    "set_field",
]


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _fmt(bound: float) -> str:
    """A bound as text: integers without a decimal point, large ones in exponent form."""
    if math.isinf(bound):
        return "inf" if bound > 0 else "-inf"
    if float(bound).is_integer() and abs(bound) < 1e7:
        return str(int(bound))
    return f"{bound:g}".replace("e+", "e")


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    return f"{'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}{')' if high_open else ']'}"


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as a Python ``int`` in ``[low, high]``.

    Accepts ``int`` and numpy integers; refuses ``bool`` and floats (even ``5.0``: a float where a
    count belongs is usually a mistake, e.g. ``1e6`` written for a budget).
    """
    allowed = f"an integer in [{_fmt(low)}, {_fmt(high)}]"
    if _is_bool(value) or not isinstance(value, (int, np.integer)):
        hint = ""
        if isinstance(value, (float, np.floating)):
            hint = "; write it without a decimal point or exponent (1000000, not 1e6)"
        raise ConfigTypeError(f"{name} must be {allowed}, got {short_repr(value)}{hint}")
    number = int(value)
    if not low <= number <= high:
        raise ConfigError(f"{name}={short_repr(value)} is out of range; allowed: {allowed}")
    return number


def check_float(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a Python ``float`` in the interval from ``low`` to ``high``.

    The bounds are closed unless ``low_open``/``high_open``; NaN is always refused and infinity is
    refused unless it is a closed bound (``high=math.inf``). Accepts ``int``, ``float`` and numpy
    numbers; refuses ``bool`` and strings.
    """
    allowed = f"a number in {_interval(low, high, low_open, high_open)}"
    if _is_bool(value) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigTypeError(f"{name} must be {allowed}, got {short_repr(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        raise ConfigError(
            f"{name}={short_repr(value)} is out of range; allowed: {allowed}"
        ) from None
    below = number < low or (low_open and number == low)
    above = number > high or (high_open and number == high)
    if math.isnan(number) or below or above:
        raise ConfigError(f"{name}={short_repr(value)} is out of range; allowed: {allowed}")
    return number


def check_range(name: str, value: Any, low: float, high: float) -> float:
    """``value`` as a ``float`` in the closed interval ``[low, high]``."""
    return check_float(name, value, low, high)


def check_positive(name: str, value: Any, high: float = 1e300) -> float:
    """``value`` as a finite ``float`` in ``(0, high]``."""
    return check_float(name, value, 0.0, high, low_open=True)


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a Python ``bool``; only ``True``/``False`` (or numpy bools) are accepted."""
    if not _is_bool(value):
        raise ConfigTypeError(f"{name} must be true or false, got {short_repr(value)}")
    return bool(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(
            f"{name}={short_repr(value)} is not allowed; choose one of {', '.join(choices)}"
        )
    return value


def _sequence(name: str, value: Any, what: str, min_len: int, max_len: int) -> tuple[Any, ...]:
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ConfigTypeError(
            f"{name} must be a list of {min_len} to {max_len} {what}, got {short_repr(value)}"
        )
    if not min_len <= len(value) <= max_len:
        raise ConfigError(
            f"{name}={short_repr(value)} has {len(value)} entries; allowed: {min_len} to "
            f"{max_len} {what}"
        )
    return tuple(value)


def check_int_tuple(
    name: str, value: Any, low: int, high: int, *, min_len: int = 1, max_len: int = 64
) -> tuple[int, ...]:
    """A list or tuple of ``min_len`` to ``max_len`` integers in ``[low, high]``, as a tuple."""
    items = _sequence(name, value, f"integers in [{_fmt(low)}, {_fmt(high)}]", min_len, max_len)
    return tuple(check_int(f"{name}[{i}]", item, low, high) for i, item in enumerate(items))


def check_float_tuple(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    min_len: int = 1,
    max_len: int = 64,
    low_open: bool = False,
) -> tuple[float, ...]:
    """A list or tuple of ``min_len`` to ``max_len`` numbers in range, as a tuple of floats."""
    what = f"numbers in {_interval(low, high, low_open, False)}"
    items = _sequence(name, value, what, min_len, max_len)
    return tuple(
        check_float(f"{name}[{i}]", item, low, high, low_open=low_open)
        for i, item in enumerate(items)
    )


def set_field(obj: Any, name: str, value: Any) -> None:
    """Store a validated (converted) value on a frozen dataclass from its ``__post_init__``."""
    object.__setattr__(obj, name, value)


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` with numpy scalars turned into Python ones, inside lists, tuples and dicts too.

    Raises :class:`ConfigError` for containers nested deeper than 32 levels."""
    if depth > 32:
        raise ConfigError("a value is nested more than 32 levels deep; flatten it")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v, depth + 1) for v in value)
    return value
