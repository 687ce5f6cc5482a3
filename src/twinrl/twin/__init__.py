"""The digital space: :class:`DigitalTwin` and the backends that run its domains."""

from __future__ import annotations

from twinrl.twin.backends import (
    BACKENDS,
    DomainSteps,
    SerialBackend,
    VectorizedBackend,
    make_backend,
)
from twinrl.twin.digital_twin import DigitalTwin

__all__ = [
    "BACKENDS",
    "DigitalTwin",
    "DomainSteps",
    "SerialBackend",
    "VectorizedBackend",
    "make_backend",
]
