"""Random streams in checkpoints: a numpy Generator's PCG64 state as 6 ``uint64`` words
(:func:`~twinrl.contract.pcg64_to_array`) and back, checked, so every stateful piece (agents,
storage, assists, the twin, the env) saves and restores its stream the same way."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.contract import pcg64_from_array, pcg64_to_array
from twinrl.errors import CheckpointError


def rng_words(rng: np.random.Generator, owner: str) -> NDArray[np.uint64]:
    """The state of ``rng`` as 6 ``uint64`` words.

    Raises:
        CheckpointError: ``rng`` does not run on PCG64 (numpy's default), whose state is the
            only one a checkpoint stores; the message names ``owner``.
    """
    state = rng.bit_generator.state
    if state.get("bit_generator") != "PCG64":
        raise CheckpointError(
            f"{owner}'s random stream runs on {state.get('bit_generator')}; a checkpoint stores "
            "PCG64 streams only (numpy's default: np.random.default_rng(seed))"
        )
    return pcg64_to_array(dict(state))


def checked_rng_state(words: NDArray[Any], owner: str) -> Any:
    """The PCG64 state stored as :func:`rng_words`, checked (``CheckpointError`` naming
    ``owner`` otherwise)."""
    try:
        state = pcg64_from_array(np.asarray(words))
        np.random.PCG64().state = state
    except (ValueError, TypeError, OverflowError) as err:
        raise CheckpointError(f"{owner} state entry 'rng' is not a PCG64 state ({err})") from err
    if state["has_uint32"] not in (0, 1) or not 0 <= state["uinteger"] < 2**32:
        raise CheckpointError(f"{owner} state entry 'rng' is not a PCG64 state (bad cached word)")
    return state


def set_rng_words(rng: np.random.Generator, words: NDArray[Any], owner: str) -> None:
    """Restore ``rng`` from :func:`rng_words` output, checked."""
    rng.bit_generator.state = checked_rng_state(words, owner)
