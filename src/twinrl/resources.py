"""Memory estimates made before a large allocation, so a request too big for the machine fails
with a :class:`~twinrl.errors.ResourceError` that names the size and the knob to turn, instead of
a ``MemoryError`` traceback (or the kernel's out-of-memory killer) halfway through a run.

The estimates count the dominant arrays only; they are meant to catch requests that are off by
orders of magnitude, not to budget memory to the byte. This module imports nothing of twinrl but
:mod:`twinrl.errors`, so every layer may use it.
"""

from __future__ import annotations

import os

from twinrl.errors import ResourceError

__all__ = [
    "FLOAT_BYTES",
    "available_memory",
    "check_memory",
    "format_bytes",
    "history_bytes",
    "qtable_bytes",
    "replay_bytes",
    "tabular_bytes",
    "twin_agents_bytes",
]

FLOAT_BYTES = 8
"""Bytes of one float64 (Q tables, training history)."""
DEFAULT_AVAILABLE = 1 << 50
"""What :func:`available_memory` assumes when the platform reports nothing (1 PiB: no limit)."""
FRACTION = 0.9
"""Share of the available memory a single request may take."""


def available_memory() -> int:
    """Bytes of memory available to this process now.

    Reads ``MemAvailable`` from ``/proc/meminfo`` (Linux), else free physical pages from
    ``os.sysconf``, else assumes :data:`DEFAULT_AVAILABLE`.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return DEFAULT_AVAILABLE


def format_bytes(nbytes: float) -> str:
    """``nbytes`` in the largest binary unit that keeps it >= 1, e.g. ``"116.0 GiB"``."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def check_memory(nbytes: float, what: str, knob: str, available: int | None = None) -> None:
    """Raise :class:`ResourceError` if ``nbytes`` exceeds 90% of the available memory.

    Args:
        nbytes: estimated size of the allocation (a Python int or float: it may be astronomically
            large, so compute it with Python integers, never numpy ones that could overflow).
        what: what is allocated, e.g. ``"the Q table (10 states x 3628800 actions)"``.
        knob: what the user can reduce, e.g. ``"env_kwargs.n_tasks"``.
        available: bytes available; default :func:`available_memory`.
    """
    free = available_memory() if available is None else available
    if nbytes > FRACTION * free:
        raise ResourceError(
            f"twinrl needs {format_bytes(nbytes)} for {what}, but only {format_bytes(free)} is "
            f"available; reduce {knob}"
        )


def qtable_bytes(n_states: int, n_actions: int) -> int:
    """Bytes of one float64 Q table."""
    return int(n_states) * int(n_actions) * FLOAT_BYTES


def twin_agents_bytes(n_agents: int, agent_bytes: int) -> int:
    """Peak bytes of :class:`~twinrl.assists.TwinAgents` beside the physical agent: ``n_agents``
    copies of its parameters and the shared base copy, and while sharing (Algorithm 1, lines
    11-17) one more copy of every agent's parameters (their ``state_dict``), the merged result,
    the change sum, the change counts and the new base: ``2 n_agents + 6`` copies."""
    return (2 * int(n_agents) + 6) * int(agent_bytes)


def tabular_bytes(n_states: int, n_actions: int, n_twin_agents: int = 0) -> int:
    """Peak bytes of a tabular learner: its Q table, plus :func:`twin_agents_bytes` of
    ``n_twin_agents`` copies of it (DTAQL) when there are any."""
    table = qtable_bytes(n_states, n_actions)
    return table + (twin_agents_bytes(n_twin_agents, table) if n_twin_agents else 0)


def replay_bytes(capacity: int, obs_size: int, n_domains: int = 2, n_branches: int = 1) -> int:
    """Bytes of a replay storage with ``n_domains`` buffers of ``capacity`` transitions: float32
    ``obs`` and ``next_obs``, int64 actions per branch, and about 48 bytes of reward, flags,
    source and discount per row."""
    row = 2 * 4 * int(obs_size) + 8 * int(n_branches) + 48
    return int(n_domains) * int(capacity) * row


def history_bytes(budget: int, n_keys: int) -> int:
    """Bytes of the training history: ``n_keys`` float64 arrays of ``budget`` entries each."""
    return int(budget) * int(n_keys) * FLOAT_BYTES
