"""The digital space: :class:`DigitalTwin`, the backends that run its domains, and the one twin
rollout."""

from __future__ import annotations

from twinrl.contract import DomainSteps
from twinrl.twin.backends import (
    BACKENDS,
    EnvCopy,
    SerialBackend,
    VectorizedBackend,
    make_backend,
    snapshot_mode,
)
from twinrl.twin.calibration import Calibrator, Recalibration, calibrator_for
from twinrl.twin.digital_twin import DigitalTwin
from twinrl.twin.fidelity import Fidelity, Measured
from twinrl.twin.free_running import FreeRunningDomains, VisitCounter
from twinrl.twin.rollout import Rollout, greedy_policy, rollout

__all__ = [
    "BACKENDS",
    "Calibrator",
    "DigitalTwin",
    "DomainSteps",
    "EnvCopy",
    "Fidelity",
    "FreeRunningDomains",
    "Measured",
    "Recalibration",
    "Rollout",
    "SerialBackend",
    "VectorizedBackend",
    "VisitCounter",
    "calibrator_for",
    "greedy_policy",
    "make_backend",
    "rollout",
    "snapshot_mode",
]
