"""Checkpoint files: numeric arrays plus a manifest that says which run wrote them, checksummed.

A checkpoint is an ``.npz`` archive (the layout ``np.savez`` writes: one uncompressed ``.npy``
member per array) with two reserved members:

* ``__twinrl_manifest__``: the manifest as UTF-8 canonical JSON in a ``uint8`` array. Its fields
  (see :func:`manifest_for`) name the format version, the twinrl version, the algorithm, a SHA-256
  of the canonical JSON of the configuration and a canonical description of both spaces.
* ``__twinrl_checksum__``: SHA-256 over the manifest bytes and every array's name, dtype, shape and
  bytes (in name order), so any change to the data that ``zip``'s CRC-32 misses is still caught.

The zip comment, the last bytes of the file, is ``twinrl-sha256:`` and the hex SHA-256 of every
byte before it; it catches changes to the zip's own metadata too, which readers partly ignore.
Files are written atomically (a temporary file in the same directory, then ``os.replace``), with
fixed zip timestamps, so the same input gives the same bytes. :func:`load_checkpoint` reads every
member itself with ``allow_pickle`` off: the ``.npy`` header is checked against the member's size
before anything is allocated, a member holding Python objects is refused before it is read, and
every failure (missing file, not a zip, truncation, CRC or checksum mismatch, object or
non-numeric dtype, NaN/inf in a float array, unknown format version, another run's manifest)
raises :class:`~twinrl.errors.CheckpointError` with one line that says what is wrong.

:func:`check_state_dict` is the same refusal for a state dict handed over in memory; the agents'
and the storage's ``load_state_dict`` use it.

Modules: :mod:`~twinrl.checkpoint.files` (save and load), :mod:`~twinrl.checkpoint.format` (the
zip and ``.npy`` layout, checksum and file digest), :mod:`~twinrl.checkpoint.manifest` (building,
reading and comparing manifests), :mod:`~twinrl.checkpoint.state` (dtype and NaN/inf checks).
"""

from __future__ import annotations

from twinrl.checkpoint.files import load_checkpoint, save_checkpoint
from twinrl.checkpoint.format import CHECKSUM_KEY, MANIFEST_KEY
from twinrl.checkpoint.format import _checksum as _checksum  # the tests forge files with these
from twinrl.checkpoint.format import _seal as _seal
from twinrl.checkpoint.format import _write_zip as _write_zip
from twinrl.checkpoint.manifest import FORMAT_VERSION, describe_space, manifest_for
from twinrl.checkpoint.state import all_finite, check_like, check_state_dict, state_kind

__all__ = [
    "CHECKSUM_KEY",
    "FORMAT_VERSION",
    "MANIFEST_KEY",
    "all_finite",
    "check_like",
    "check_state_dict",
    "describe_space",
    "load_checkpoint",
    "manifest_for",
    "save_checkpoint",
    "state_kind",
]
