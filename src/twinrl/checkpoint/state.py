"""Checks of the arrays a checkpoint or a state dict holds: numeric dtypes and finite floats.

:func:`_check_arrays` is what :func:`~twinrl.checkpoint.save_checkpoint` and
:func:`~twinrl.checkpoint.load_checkpoint` refuse; :func:`check_state_dict` is the same refusal
for a state dict handed over in memory (the agents' and the storage's ``load_state_dict``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.errors import CheckpointError, short_repr

_KINDS = {"b": "bool", "i": "integer", "u": "integer", "f": "float", "c": "complex"}
_SUM_FIRST = 1 << 16  # arrays larger than this are checked for NaN/inf by their sum first


def _numeric(dtype: np.dtype[Any]) -> bool:
    """True for the dtypes a checkpoint may hold: bool, integer, float and complex, without
    objects or fields (a record or a union dtype)."""
    return not dtype.hasobject and dtype.kind in _KINDS and dtype.fields is None


def state_kind(dtype: np.dtype[Any]) -> str:
    """The dtype kind :func:`check_state_dict` compares: ``"i"`` for every integer, signed or
    unsigned, else numpy's own kind (``"f"``, ``"b"``, ...). Owners build their ``expected``
    kinds from their own ``state_dict()`` with it, so the two never disagree."""
    return "i" if dtype.kind == "u" else dtype.kind


def _check_arrays(arrays: Mapping[str, NDArray[Any]], allow: Collection[str], label: str) -> None:
    for name, array in arrays.items():
        if not _numeric(array.dtype):
            raise CheckpointError(
                f"checkpoint {label}: array {name!r} has dtype {array.dtype}; a checkpoint holds "
                "bool, integer and float arrays only (no objects, strings or records)"
            )
        if name not in allow and (bad := _count_nonfinite(array)):
            raise CheckpointError(
                f"checkpoint {label}: array {name!r} holds {bad} NaN/inf value(s) of "
                f"{array.size}; training diverged or the data is damaged"
            )


def all_finite(array: NDArray[Any]) -> bool:
    """True when ``array`` holds no NaN or inf (always for bool and integer arrays).

    A large array is first summed: a sum of finite numbers is NaN or inf only if an entry is, or
    if the sum overflows, and only then is every entry tested (no temporary mask in the common
    case). A small one is tested directly, which is cheaper than entering ``np.errstate``."""
    if array.dtype.kind not in "fc" or array.size == 0:
        return True
    if array.size > _SUM_FIRST:
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(array.sum()):
                return True
    return bool(np.isfinite(array).all())


def _count_nonfinite(array: NDArray[Any]) -> int:
    """How many entries of ``array`` are NaN or inf; 0 after the :func:`all_finite` fast path."""
    if all_finite(array):
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def check_state_dict(
    state: Mapping[str, Any],
    expected: Mapping[str, tuple[tuple[int, ...], str]],
    *,
    owner: str,
    counters: Collection[str] = (),
    allow_nonfinite: Collection[str] = (),
) -> dict[str, NDArray[Any]]:
    """Validate a state dict handed to ``load_state_dict`` and return it as numpy arrays.

    Args:
        state: the state dict to load.
        expected: ``{key: (shape, kinds)}`` for every key the owner needs; ``kinds`` holds the
            accepted dtype kinds: ``"f"`` (float), ``"i"`` (integer, signed or unsigned), ``"b"``
            (bool), e.g. ``"fi"`` for an observation that may be either.
        owner: the owner's name in messages (``"QLearning"``).
        counters: keys that are non-negative integer scalars (iterations, step counters).
        allow_nonfinite: float keys that may hold NaN/inf (a NaN-coded column).

    Raises:
        CheckpointError: a key is missing or extra, an entry has the wrong shape or dtype kind,
            a float entry holds NaN/inf, or a counter is negative; the message names the key.
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(
            f"{owner}.load_state_dict takes a dict of arrays, got {type(state).__name__}"
        )
    if state.keys() != expected.keys():
        missing = sorted(set(expected) - set(state))
        extra = sorted(str(k) for k in set(state) - set(expected))
        parts = [f"lacks {short_repr(missing)}"] if missing else []
        parts += [f"has unknown {short_repr(extra)}"] if extra else []
        raise CheckpointError(
            f"{owner} state {' and '.join(parts)}; pass the state_dict() of a {owner} built with "
            "the same sizes"
        )
    out: dict[str, NDArray[Any]] = {}
    for key, (shape, kind) in expected.items():
        value = np.asarray(state[key])
        got = state_kind(value.dtype)
        if got not in kind or value.dtype.hasobject:
            wanted = " or ".join(_KINDS[k] for k in kind)
            raise CheckpointError(
                f"{owner} state entry {key!r} has dtype {value.dtype}; expected {wanted} values "
                f"of shape {shape}"
            )
        if value.shape != tuple(shape):
            raise CheckpointError(
                f"{owner} state entry {key!r} has shape {value.shape}; this {owner} needs {shape}"
            )
        if got == "f" and key not in allow_nonfinite and (bad := _count_nonfinite(value)):
            raise CheckpointError(
                f"{owner} state entry {key!r} holds {bad} NaN/inf value(s) of {value.size}; "
                "expected finite floats (did training diverge?)"
            )
        out[key] = value
    for key in counters:
        if out[key].item() < 0:  # a scalar: its shape () was checked above
            raise CheckpointError(
                f"{owner} state entry {key!r} is {out[key].item()}; expected an integer >= 0"
            )
    return out


def check_like(
    state: Mapping[str, Any],
    own: Mapping[str, NDArray[Any]],
    *,
    owner: str,
    counters: Collection[str] = (),
    allow_nonfinite: Collection[str] = (),
) -> dict[str, NDArray[Any]]:
    """:func:`check_state_dict` against the owner's own ``state_dict()`` ``own``: the same keys,
    shapes and dtype kinds (the check every ``load_state_dict`` of a fixed-size owner makes)."""
    expected = {key: (np.shape(v), state_kind(np.asarray(v).dtype)) for key, v in own.items()}
    return check_state_dict(
        state, expected, owner=owner, counters=counters, allow_nonfinite=allow_nonfinite
    )
