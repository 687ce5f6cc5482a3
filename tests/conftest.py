"""Test-session settings: one BLAS/OpenMP thread, set before torch or numpy's BLAS starts.

The tests run one at a time and their networks are small: a second thread gains nothing and, on
shared cores, oversubscription made one tiny multi-UAV run 40x slower (torch's ``linear``)."""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
