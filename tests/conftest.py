"""Test-session settings: one BLAS/OpenMP thread, set before torch or numpy's BLAS starts.

The tests run one at a time and their networks are small: a second thread gains nothing and, on
shared cores, oversubscription made one tiny multi-UAV run 40x slower (torch's ``linear``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[Any]:
    """One local Ray instance of 2 CPUs for the whole test session (started by the first test
    that asks for it; skipped without the ``ray`` extra). twinrl reuses a connected Ray, so the
    engine and the backend under test run on it. Its workers get this session's ``sys.path``,
    so they can import the test modules whose functions they run."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}})  # fmt: skip
    yield ray
    ray.shutdown()
