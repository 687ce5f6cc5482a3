"""Output directories of ``twinrl train`` and ``twinrl reproduce``: never delete what twinrl did
not write.

The rule:

* ``--out`` is checked before any work starts: it must not be empty, it is created if missing
  (parents too), and it must be a writable directory (probed with a temporary file that is removed
  again). An OS error (name too long, permission denied, read-only file system, ``/proc``) becomes
  one :class:`~twinrl.errors.OutputDirError`.
* A twinrl run directory holds a marker file, ``twinrl-run.json``: ``{"kind": "train" |
  "reproduce", "version": ..., "complete": bool, "files": [...]}`` where ``files`` lists, relative
  to the directory, every file the run wrote (``reproduce`` adds ``"command"``: its experiments
  and options, which ``--resume`` must match). The marker is rewritten *before* each new file is
  created, so it always covers every file twinrl put there, even after an interrupted run.
* An existing non-empty directory without a marker, or with the marker of another kind of run, is
  refused. A previous run of the same kind is refused unless ``overwrite=True`` (``--overwrite``);
  then its files are replaced one by one, and at the end the files it listed that the new run did
  not write are removed (they are twinrl's own). Nothing else is ever removed, a file twinrl did
  not write is never overwritten, and no directory is ever deleted recursively.
* ``resume=True`` (``--resume``) continues a previous run instead: ``--out`` must hold one of the
  same kind, whose marker records the same ``command`` (e.g. the experiments, preset and seed of
  ``twinrl reproduce``); anything else is refused, and nothing is created. Its files are then
  treated as with ``overwrite`` (the run reads what it keeps, e.g. finished results, first).
* Every file is written to a temporary name in its own directory inside ``--out`` and moved into
  place with :func:`os.replace`, so a reader never sees a half-written file. Nothing is written
  beside ``--out``.

JSON files are strict JSON (:func:`to_json`): non-finite floats become ``null``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np

from twinrl import __version__
from twinrl.errors import OutputDirError, short_repr

MARKER = "twinrl-run.json"
"""Name of the marker file of a twinrl run directory."""
_TMP = ".twinrl-tmp"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def to_json(value: Any, *, indent: int | None = 1, lenient: bool = False) -> str:
    """``value`` as strict JSON: numpy scalars and arrays become numbers and lists, tuples lists,
    and NaN or infinite floats ``null`` (``json.dumps`` would write ``NaN``, which is not JSON).
    The one writer of every JSON file of a run (config, summaries, partial results).

    Args:
        value: Nested dicts, lists, tuples, numbers, strings, ``None`` and numpy values.
        indent: As :func:`json.dumps`; ``None`` writes one line.
        lenient: Write any other object as its (shortened) repr instead of raising.

    Raises:
        TypeError: ``value`` holds an object JSON cannot represent (and ``lenient`` is false).
    """
    return json.dumps(_jsonable(value, lenient), indent=indent, allow_nan=False)


def _jsonable(value: Any, lenient: bool) -> Any:
    if isinstance(value, dict):
        return {
            k if isinstance(k, str) else str(k): _jsonable(v, lenient) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, lenient) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), lenient)
    if isinstance(value, np.generic):
        return _jsonable(value.item(), lenient)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float)):
        return value
    if lenient:
        return short_repr(value, 200)
    raise TypeError(f"cannot write {type(value).__name__} {short_repr(value)} as JSON")


class RunDir:
    """An output directory owned by one twinrl run (see the module docstring for the rule).

    Create it with :meth:`open`; write with :meth:`write_text`, :meth:`write_json`,
    :meth:`write_with`, :meth:`append_line` and :meth:`adopt`; end with :meth:`finish` (success)
    or :meth:`abandon` (failure).
    """

    def __init__(
        self,
        path: Path,
        kind: str,
        old_files: set[str],
        created: list[Path],
        command: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self.kind = kind
        self.command = command
        self._old = old_files
        self._files: set[str] = set()
        self._created = created

    @classmethod
    def open(
        cls,
        out: str | Path,
        kind: str,
        *,
        overwrite: bool = False,
        resume: bool = False,
        command: dict[str, Any] | None = None,
    ) -> RunDir:
        """Check ``out`` and make it ready for a run of ``kind``; nothing is deleted.

        ``command`` (JSON-able) is recorded in the marker; ``resume`` requires a previous ``kind``
        run in ``out`` that recorded the same ``command``.

        Raises:
            OutputDirError: ``out`` is empty, not a writable directory, or holds files of
                something else than a previous ``kind`` run (or of one, without ``overwrite`` or
                ``resume``); with ``resume``, it holds no ``kind`` run of the same ``command``.
        """
        if str(out) == "":
            raise OutputDirError("--out is empty; give a directory, e.g. --out runs/mine")
        if overwrite and resume:
            raise OutputDirError(
                "--resume and --overwrite exclude each other: --resume continues the run in "
                "--out, --overwrite replaces it; choose one"
            )
        path = Path(out)
        shown = short_repr(str(path))
        created: list[Path] = []
        try:
            if path.exists() and not path.is_dir():
                raise OutputDirError(
                    f"--out {shown} is a file, not a directory; choose an empty or new directory"
                )
            if resume:
                old = _resumable_files(path, kind, shown, command)
            else:
                created = _make_dirs(path, shown)
                old = _previous_files(path, kind, shown, overwrite=overwrite)
            _probe(path, shown)
        except OSError as exc:  # e.g. a name too long for the file system, from exists()
            _remove_empty(created)
            raise OutputDirError(
                f"--out {shown} cannot be used: {exc.strerror or exc}; choose another directory"
            ) from None
        except BaseException:
            _remove_empty(created)
            raise
        return cls(path, kind, old, created, command)

    @property
    def previous_files(self) -> frozenset[str]:
        """The files of the previous run (with ``overwrite`` or ``resume``) that this run has not
        written again yet, relative to :attr:`path`."""
        return frozenset(self._old - self._files)

    @property
    def files(self) -> list[str]:
        """The files this run wrote so far, relative to :attr:`path`."""
        return sorted(self._files)

    def write_with(self, rel: str, write: Callable[[IO[bytes]], object]) -> Path:
        """Write ``rel`` by calling ``write(binary file)`` on a temporary file moved into place."""
        target = self.claim(rel)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=_TMP)
        try:
            os.fchmod(fd, _FILE_MODE)  # mkstemp makes 0600; a plain open() would honour the umask
            with os.fdopen(fd, "wb") as fh:
                write(fh)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return target

    def write_text(self, rel: str, text: str) -> Path:
        """Write ``text`` (UTF-8) to ``rel``, atomically."""
        return self.write_with(rel, lambda fh: fh.write(text.encode()))

    def write_json(self, rel: str, value: Any) -> Path:
        """Write ``value`` as strict JSON (:func:`to_json`) to ``rel``, atomically."""
        return self.write_text(rel, to_json(value))

    def append_line(self, rel: str, line: str) -> None:
        """Append one line to ``rel`` (created empty by the first call of this run)."""
        new = rel not in self._files
        target = self.claim(rel)
        with target.open("w" if new else "a") as fh:
            fh.write(line.rstrip("\n") + "\n")

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        """A temporary directory inside :attr:`path`, removed on exit (for writers that want a
        directory of their own; move their files into place with :meth:`adopt`)."""
        tmp = Path(tempfile.mkdtemp(prefix=_TMP + "-", dir=self.path))
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # our own temporary directory, never a user's

    def adopt(self, source: Path, rel_dir: str) -> list[str]:
        """Move every file under ``source`` (a :meth:`scratch` directory) to ``rel_dir``."""
        moved = []
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            rel = str(PurePosixPath(rel_dir, *file.relative_to(source).parts))
            target = self.claim(rel)
            os.replace(file, target)
            moved.append(rel)
        return moved

    def discard(self, rel: str) -> None:
        """Remove ``rel``, a file this run wrote or the previous run listed (e.g. a resume
        checkpoint once the run is complete), and stop listing it; nothing else is removed."""
        if rel not in self._files and rel not in self._old:
            return
        with contextlib.suppress(FileNotFoundError):
            (self.path / rel).unlink()
        self._files.discard(rel)
        self._old.discard(rel)
        self._write_marker(complete=False)

    def finish(self) -> None:
        """Remove the previous run's files this run did not write; mark the run complete."""
        for rel in sorted(self._old - self._files):
            target = self.path / rel
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            parent = target.parent
            while parent != self.path and _rmdir_if_empty(parent):
                parent = parent.parent
        self._old = set()
        self._write_marker(complete=True)

    def abandon(self) -> None:
        """After a failure: remove the directories :meth:`open` created if they are still empty
        (the files written so far stay, listed in the marker)."""
        _remove_empty(self._created)

    def claim(self, rel: str) -> Path:
        """The path of ``rel``, after listing it in the marker; refuses a file twinrl did not
        write. For a writer that writes atomically itself (e.g. ``save_checkpoint``)."""
        target = self.path / rel
        if rel not in self._files:
            if rel not in self._old and (target.exists() or target.is_symlink()):
                raise OutputDirError(
                    f"--out {short_repr(str(self.path))}: {short_repr(rel)} exists and was not "
                    "written by twinrl; move it away or choose an empty or new directory"
                )
            self._files.add(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            self._write_marker(complete=False)
        return target

    def _write_marker(self, *, complete: bool) -> None:
        files = sorted(self._files | self._old)
        marker: dict[str, Any] = {"kind": self.kind, "version": __version__,
                                  "complete": complete, "files": files}  # fmt: skip
        if self.command is not None:
            marker["command"] = self.command
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{MARKER}.", suffix=_TMP)
        try:
            os.fchmod(fd, _FILE_MODE)
            with os.fdopen(fd, "w") as fh:
                fh.write(to_json(marker))
            os.replace(tmp, self.path / MARKER)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def recorded_command(out: str | Path, kind: str) -> dict[str, Any] | None:
    """The ``command`` recorded in the marker of the ``kind`` run in ``out``; None when there is
    none (no such run, an unreadable marker, another kind: :meth:`RunDir.open` names why)."""
    try:
        marker = json.loads((Path(out) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("kind") != kind:
        return None
    command = marker.get("command")
    return command if isinstance(command, dict) else None


def _make_dirs(path: Path, shown: str) -> list[Path]:
    """Create ``path`` and its missing parents; returns those created, deepest last."""
    missing = []
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise OutputDirError(
                    f"--out {shown} is under {short_repr(str(parent))}, which is a file; "
                    "choose a directory path"
                )
            break
        missing.append(parent)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(list(reversed(missing)))
        raise OutputDirError(
            f"--out {shown} cannot be created: {exc.strerror or exc}; choose a writable directory"
        ) from None
    return list(reversed(missing))


def _probe(path: Path, shown: str) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path, prefix=".twinrl-probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputDirError(
            f"--out {shown} is not writable: {exc.strerror or exc}; choose a writable directory"
        ) from None


def _previous_files(path: Path, kind: str, shown: str, *, overwrite: bool) -> set[str]:
    """The files of a previous ``kind`` run in ``path`` (empty for an empty directory)."""
    try:
        entries = os.listdir(path)
    except OSError as exc:
        raise OutputDirError(
            f"--out {shown} cannot be read: {exc.strerror or exc}; choose a writable directory"
        ) from None
    if not entries:
        return set()
    refuse = f"--out {shown} is not empty and {{}}; choose an empty or new directory"
    if MARKER not in entries:
        raise OutputDirError(refuse.format("holds no twinrl run"))
    try:
        marker = json.loads((path / MARKER).read_text())
        old_kind, files = marker["kind"], marker["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise OutputDirError(refuse.format(f"its {MARKER} is unreadable")) from None
    if old_kind != kind:
        raise OutputDirError(refuse.format(f"holds a twinrl {short_repr(old_kind)} run"))
    if not overwrite:
        state = "a previous" if marker.get("complete") else "an unfinished (interrupted)"
        raise OutputDirError(
            f"--out {shown} holds {state} twinrl {kind} run; pass --overwrite to replace it "
            "(files twinrl did not write are kept) or choose an empty or new directory"
        )
    if not isinstance(files, list) or not all(_inside(path, f) for f in files):
        raise OutputDirError(refuse.format(f"its {MARKER} lists files outside it"))
    return set(files)


def _resumable_files(path: Path, kind: str, shown: str, command: dict[str, Any] | None) -> set[str]:
    """The files of the previous ``kind`` run of ``command`` in ``path``, which ``--resume``
    continues; refuses anything else, naming what differs."""
    nothing = (
        f"--out {shown} {{}}, so there is no twinrl {kind} run to resume; give the --out of an "
        f"interrupted twinrl {kind} run, or run without --resume"
    )
    try:
        entries = os.listdir(path) if path.is_dir() else None
    except OSError as exc:
        raise OutputDirError(
            f"--out {shown} cannot be read: {exc.strerror or exc}; choose a readable directory"
        ) from None
    if entries is None:
        raise OutputDirError(nothing.format("does not exist"))
    if not entries:
        raise OutputDirError(nothing.format("is empty"))
    if MARKER not in entries:
        raise OutputDirError(nothing.format(f"holds no {MARKER}"))
    try:
        marker = json.loads((path / MARKER).read_text())
        old_kind = marker.get("kind")
    except (OSError, ValueError, AttributeError):
        marker, old_kind = {}, kind  # _previous_files names the unreadable marker
    if old_kind != kind:
        raise OutputDirError(nothing.format(f"holds a twinrl {short_repr(old_kind)} run"))
    old = _previous_files(path, kind, shown, overwrite=True)
    recorded = marker.get("command")
    wanted = json.loads(to_json(command)) if command is not None else None
    if recorded != wanted:
        if not isinstance(recorded, dict) or not isinstance(wanted, dict):
            what = "did not record its command (an older twinrl wrote it)"
        else:
            diffs = [
                f"{name}: {short_repr(recorded.get(name), 40)} there, "
                f"{short_repr(wanted.get(name), 40)} here"
                for name in sorted(set(recorded) | set(wanted))
                if recorded.get(name) != wanted.get(name)
            ]
            what = f"was started by another command ({'; '.join(diffs)})"
        raise OutputDirError(
            f"--out {shown} holds a twinrl {kind} run that {what}; resume it with the same "
            "command and options, or pass --overwrite instead of --resume to replace it"
        )
    return old


def _inside(root: Path, rel: Any) -> bool:
    """``rel`` is a plain relative path that stays inside ``root`` (no ``..``, no symlink out)."""
    if not isinstance(rel, str) or not rel or rel == MARKER:
        return False
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts:
        return False
    return (root / rel).resolve().is_relative_to(root.resolve())


def _rmdir_if_empty(path: Path) -> bool:
    try:
        path.rmdir()  # only ever removes an empty directory
    except OSError:
        return False
    return True


def _remove_empty(created: list[Path]) -> None:
    """Remove the directories of ``created`` (deepest last) that are empty, deepest first."""
    for path in reversed(created):
        if not _rmdir_if_empty(path):
            return
