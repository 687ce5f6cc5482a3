"""The errors twinrl raises for what a user gave it: one base class, one subclass per kind.

Every user-facing error is a :class:`TwinrlError`; the command line prints it as one line and exits
with status 2. Each subclass also derives from the built-in exception a library caller would expect
(``ValueError`` for a bad value, ``TypeError`` for a value of the wrong type), so
``except ValueError`` keeps working. This module sits at the bottom of the package: every layer may
import it, and it imports nothing of twinrl.
"""

from __future__ import annotations

from typing import Any


class TwinrlError(Exception):
    """Base of every error twinrl raises for a user's input, files or resources."""


class ConfigError(TwinrlError, ValueError):
    """A configuration value, option or argument is out of range or not allowed."""


class ConfigTypeError(ConfigError, TypeError):
    """A configuration value has the wrong type (a string where a number belongs, ...)."""


class InputFileError(TwinrlError, ValueError):
    """A file the user handed in (a config file) is missing, unreadable or malformed."""


class OutputDirError(TwinrlError, ValueError):
    """``--out`` cannot be used: not writable, under a file, or holding data twinrl did not write."""


class CheckpointError(TwinrlError, ValueError):
    """A checkpoint is corrupt, truncated, non-finite, or belongs to another run or env."""


class ResourceError(TwinrlError, ValueError):
    """A request would need more memory (or another resource) than the machine has."""


class WorkerLostError(TwinrlError, RuntimeError):
    """A worker process died (killed, out of memory) and its job could not be finished."""


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, so an error message never prints an unbounded
    value (a huge list, or a YAML alias bomb that expands to a billion elements).

    Containers are described by type and size before their repr is built, so this stays cheap
    however large the value is.
    """
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        size = _bounded_size(value, budget=10_000)
        if size >= 10_000:
            return f"<{type(value).__name__} with more than 10,000 elements>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bounded_size(value: Any, budget: int) -> int:
    """Number of elements in a nested container, counting at most ``budget`` of them."""
    seen = 0
    stack = [value]
    while stack and seen < budget:
        item = stack.pop()
        if isinstance(item, dict):
            seen += len(item)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            seen += len(item)
            stack.extend(item)
        else:
            seen += 1
    return seen
