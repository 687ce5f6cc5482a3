"""TensorBoard logging of a training run (the optional extra ``tensorboard``: ``tensorboardX``).

:class:`TensorBoardLog` is a :func:`~twinrl.training.train` ``callback`` that writes, beside the
CSV, TensorBoard event files into ``DIR/tensorboard/``, one file per session
(``events.out.tfevents.<session>.twinrl``: 0 for the first, 1 after the first ``--resume``, ...),
each listed in the run marker before it is created. The step of every scalar is the physical
iteration. Scalars (tags):

* ``physical/episode_return`` at the end of every episode;
* ``eval/greedy_return`` after every greedy evaluation that changed the value (rolled out in the
  twin from the episode's start, as ``metrics.csv``'s ``greedy_return``);
* every ``stride``-th iteration (at most about 1,000 points per curve): ``physical/reward``,
  ``agent/epsilon``, ``twin/evaluations`` and ``twin/calls`` (the twin's work so far),
  ``fidelity/<metric>`` (the twin's one-step errors, when measured) and ``learn/<key>`` (what the
  agent's ``learn`` returned for the physical step: ``td_abs_mean`` for Q-learning, ``loss`` and
  ``q_mean`` for a DQN once it updates).

Events are flushed at every ``flush_every``-th iteration (a resumed run passes its checkpoint
interval, so everything up to the checkpoint is on disk) and at :meth:`close`. A session that
continues a run first writes TensorBoard's purge marker at the resumed step, so the events the
killed session wrote after its last checkpoint are dropped when TensorBoard reads the files.
"""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

from twinrl.outdir import RunDir
from twinrl.training import Run

MISSING = (
    "--tensorboard needs the tensorboardX package: pip install 'twinrl[tensorboard]' "
    "(or pass --no-tensorboard)"
)
SUBDIR = "tensorboard"
POINTS = 1000
"""About the most points of a per-iteration curve (the stride is ``budget // POINTS``)."""


def available() -> bool:
    """Whether the writer package (``tensorboardX``) is installed."""
    return importlib.util.find_spec("tensorboardX") is not None


def event_file(session: int) -> str:
    """The event file of ``session``, relative to the run directory."""
    return f"{SUBDIR}/events.out.tfevents.{session:04d}.twinrl"


def _session(name: str) -> int | None:
    """The session of an :func:`event_file` name (None for another file)."""
    match = re.fullmatch(rf"{SUBDIR}/events\.out\.tfevents\.(\d{{4}})\.twinrl", name)
    return int(match.group(1)) if match else None


class TensorBoardLog:
    """Write a run's scalars as TensorBoard events (see the module docstring).

    Args:
        run_dir: the run's output directory; the event file is claimed in it.
        budget: the run's physical iterations (sets the stride of per-iteration curves).
        twin: the run's digital twin (its work counters are logged), or None.
        first: the first iteration this session runs (> 1 when it resumes a run).
        flush_every: flush after every ``flush_every``-th iteration (None: at close only).

    Raises:
        ImportError: ``tensorboardX`` is not installed (:data:`MISSING`).
    """

    def __init__(
        self,
        run_dir: RunDir,
        *,
        budget: int,
        twin: Any = None,
        first: int = 1,
        flush_every: int | None = None,
    ) -> None:
        if not available():
            raise ImportError(MISSING)
        self.run_dir, self.first = run_dir, first
        self.stride = max(1, budget // POINTS)
        self.twin, self.flush_every = twin, flush_every
        self._writer: Any = None
        self._episodes = 0

    def _open(self) -> None:
        """Claim and start this session's event file (at the first logged iteration, so a run
        that fails before training leaves none)."""
        from tensorboardX.proto.event_pb2 import Event, SessionLog
        from tensorboardX.proto.summary_pb2 import Summary
        from tensorboardX.record_writer import RecordWriter

        self._event, self._summary = Event, Summary
        session = 0
        if self.first > 1:  # a resumed run: keep the earlier sessions' files, start the next
            earlier = [f for f in self.run_dir.previous_files if _session(f) is not None]
            for name in earlier:
                self.run_dir.claim(name)
            session = max((cast(int, _session(f)) + 1 for f in earlier), default=0)
        path: Path = self.run_dir.claim(event_file(session))
        self._writer = RecordWriter(str(path))
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))
        if self.first > 1:  # TensorBoard drops the events of earlier files from this step on
            start = SessionLog(status=SessionLog.START)
            self._write(Event(wall_time=time.time(), step=self.first, session_log=start))

    def __call__(self, i: int, run: Run) -> None:
        """Log iteration ``i`` of ``run`` (a ``train`` callback)."""
        if self._writer is None:
            self._open()
            ended_now = run.episodes and sum(run.episode_lengths) == i
            self._episodes = run.episodes - 1 if ended_now else run.episodes
        scalars: dict[str, float] = {}
        for episode in range(self._episodes, run.episodes):
            scalars["physical/episode_return"] = run.episode_returns[episode]
        self._episodes = run.episodes
        greedy = run.history.get("greedy_return")
        if greedy is not None and np.isfinite(greedy[i - 1]):
            before = greedy[i - 2] if i > 1 else np.nan
            if greedy[i - 1] != before:  # a new evaluation (NaN before: the first)
                scalars["eval/greedy_return"] = float(greedy[i - 1])
        if i % self.stride == 0 or i == 1:
            scalars["physical/reward"] = float(run.history["reward"][i - 1])
            scalars["agent/epsilon"] = float(run.history["epsilon"][i - 1])
            for key, values in run.history.items():
                if key.startswith("twin_") and key.endswith("_error"):
                    metric = key.removeprefix("twin_").removesuffix("_error")
                    scalars[f"fidelity/{metric}"] = float(values[i - 1])
            if self.twin is not None:
                scalars["twin/evaluations"] = float(self.twin.evaluations)
                scalars["twin/calls"] = float(self.twin.calls)
            for key, value in run.last_learn.items():
                scalars[f"learn/{key}"] = float(value)
        finite = [(tag, v) for tag, v in scalars.items() if np.isfinite(v)]
        if finite:
            entries = [self._summary.Value(tag=tag, simple_value=v) for tag, v in finite]
            summary = self._summary(value=entries)
            self._write(self._event(wall_time=time.time(), step=i, summary=summary))
        if self.flush_every is not None and i % self.flush_every == 0:
            self._writer.flush()

    def _write(self, event: Any) -> None:
        self._writer.write(event.SerializeToString())

    def close(self) -> None:
        """Flush and close the event file (once; nothing when nothing was logged)."""
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
