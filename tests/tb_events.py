"""Reading TensorBoard event files back, independently of the writer: the TFRecord framing
(length, CRC, data, CRC) parsed by hand, each record an ``Event`` protobuf, and TensorBoard's
purge rule applied across files (a ``SessionLog.START`` at step s drops the earlier files' events
at steps >= s)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any


def events(path: Path) -> list[Any]:
    """Every whole record of one event file (a torn last record, from a killed writer, is
    ignored as TensorBoard ignores it)."""
    from tensorboardX.proto.event_pb2 import Event

    data, offset, out = path.read_bytes(), 0, []
    while offset + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        end = offset + 12 + length + 4
        if end > len(data):
            break
        out.append(Event.FromString(data[offset + 12 : offset + 12 + length]))
        offset = end
    return out


def tensorboard_view(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` as TensorBoard shows the files of ``logdir``."""
    scalars: dict[str, dict[int, float]] = {}
    for index, path in enumerate(sorted(logdir.glob("events.out.tfevents.*"))):
        for event in events(path):
            if index and event.HasField("session_log") and event.session_log.status == 1:
                for values in scalars.values():  # status 1: START, the purge marker
                    for step in [s for s in values if s >= event.step]:
                        del values[step]
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return {tag: sorted(values.items()) for tag, values in scalars.items()}
