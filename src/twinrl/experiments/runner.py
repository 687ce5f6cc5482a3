"""Named experiments and ``twinrl reproduce``: run, then write each experiment's outputs.

``out`` follows the rule of :mod:`twinrl.outdir`: it is checked before any run starts, only
twinrl's own files are ever replaced (with ``overwrite``), and every file is moved into place
whole. As each run finishes, its result is appended to ``out/partial/<group>.jsonl`` (see
:func:`reproduce`), so an interrupted command keeps its finished work, and, exactly, to
``out/partial/<group>.resume.jsonl`` (:mod:`twinrl.checkpoint.results`), from which ``resume``
continues it.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinrl import __version__
from twinrl.checkpoint.results import KeptResults, read_results, result_line
from twinrl.errors import ConfigError, short_repr
from twinrl.experiments import (
    adaptation_report,
    adaptation_study,
    ap_figures,
    construction_report,
    construction_study,
    differential,
    differential_report,
    edge_report,
    edge_tables,
    fidelity_report,
    fidelity_study,
    prediction,
    prediction_report,
    scale_report,
    scale_study,
    uav_figures,
)
from twinrl.experiments.parallel import (
    Interrupted,
    check_engine,
    job_label,
    on_result,
    resume_from,
    use_engine,
)
from twinrl.outdir import RunDir, to_json
from twinrl.validation import check_int


@dataclass(frozen=True)
class Experiment:
    """A named experiment. Experiments of one ``group`` share one run (e.g. Table I and II)."""

    description: str
    group: str
    write: Callable[[dict[str, Any], Path], dict[str, Any]]
    """Writes ``table.md`` and figures into a directory from the group's summary."""
    needs: tuple[str, ...] = ()
    """Optional modules the experiment imports (e.g. ``torch``)."""
    extra: str = ""
    """The twinrl extra that installs :attr:`needs`."""
    default: bool = True
    """Part of a bare ``twinrl reproduce`` (the paper reproductions); False for our own studies
    (e.g. ``fidelity``), which run only when named."""

    def missing(self) -> list[str]:
        """The modules of :attr:`needs` that are not installed."""
        return [m for m in self.needs if importlib.util.find_spec(m) is None]


@dataclass(frozen=True)
class Group:
    """How to run a group: ``run(preset, seed=, workers=, progress=, instances=, seeds=)``."""

    run: Callable[..., dict[str, Any]]


GROUPS: dict[str, Group] = {
    "edge": Group(edge_tables.run_preset),
    "ap": Group(ap_figures.run_preset),
    "uav": Group(uav_figures.run_preset),
    "fidelity": Group(fidelity_study.run_preset),
    "construction": Group(construction_study.run_preset),
    "scale": Group(scale_study.run_preset),
    "adaptation": Group(adaptation_study.run_preset),
    "differential": Group(differential.run_preset),
    "prediction": Group(prediction.run_preset),
}
EXPERIMENTS: dict[str, Experiment] = {
    "table1": Experiment(
        "edge scheduling, paper 002 Table I: QL / DTEQL / DTAQL at N = 8, with baselines",
        "edge",
        edge_report.write_table1,
    ),
    "table2": Experiment(
        "edge scheduling, paper 002 Table II: convergence time for N = 6, 7, 8",
        "edge",
        edge_report.write_table2,
    ),
    "fig4": Experiment(
        "access-point selection, paper 000 Fig. 4: QL vs DT-QL with n = 2..M trials per state",
        "ap",
        ap_figures.write_fig4,
    ),
    "safety": Experiment(
        "access-point selection: physical failures during training, with SafeExploration",
        "ap",
        ap_figures.write_safety,
    ),
    "fig5": Experiment(
        "multi-UAV trajectories, paper 000 Fig. 5: DQL vs DT-DQL with k-step twin prediction "
        "(k = 1, 3, 5) vs n-step DQN (torch extra)",
        "uav",
        uav_figures.write_fig5,
        needs=("torch",),
        extra="torch",
    ),
    "observation": Experiment(
        "multi-UAV with a sensing radius: partial observation with and without GlobalObservation "
        "(torch extra)",
        "uav",
        uav_figures.write_observation,
        needs=("torch",),
        extra="torch",
    ),
    "fidelity": Experiment(
        "is an imperfect twin worth building: twin-assisted minus physical-only learning vs model "
        "bias, measurement noise and staleness, with and without mitigations (domain averaging, "
        "a fidelity-triggered start, online recalibration), on access points, edge scheduling "
        "and multi-UAV (torch extra)",
        "fidelity",
        fidelity_report.write_fidelity,
        default=False,
    ),
    "construction": Experiment(
        "when does building a twin pay off once its construction time counts (access points, edge "
        "scheduling, multi-UAV): time to the physical learner's level vs the construction delay "
        "T_c, a twin improving while built, a calibrated twin, online recalibration",
        "construction",
        construction_report.write_construction,
        default=False,
    ),
    "scale": Experiment(
        "edge scheduling beyond the paper: a DQN on the sequential formulation at N = 10 to 20, "
        "greedy and with a twin rollout, against the exact optimum, EDF, SPT, Johnson and local "
        "search (torch extra)",
        "scale",
        scale_report.write_scale,
        needs=("torch",),
        extra="torch",
        default=False,
    ),
    "prediction": Experiment(
        "multi-UAV, can the grid decide paper 000's claim that training with prediction beats "
        "n-step learning and DQL: reward x mobility x horizon cells, DT-DQL m = 1/4/16, the "
        "physical-future oracle, varied first actions, the data arm, pre-registered (torch extra)",
        "prediction",
        prediction_report.write_prediction,
        needs=("torch",),
        extra="torch",
        default=False,
    ),
    "adaptation": Experiment(
        "scenario adaptation on access points: pre-training in twins of sampled scenarios vs "
        "fine-tuning without a twin vs scratch on a held-out scenario (jump-start, episodes to "
        "converge), re-training in a twin after a mid-run change (episodes to recover), "
        "scenario-aware vs uniform storage replay",
        "adaptation",
        adaptation_report.write_adaptation,
        default=False,
    ),
    "differential": Experiment(
        "differential twins (paper 000, II-B): K learners (Q-learning variants, SARSA, Expected "
        "SARSA; DQN variants with torch) in their own free-running domains vs the single "
        "physical learner and the best single configuration, with adopt-best and distillation, "
        "on access points (and multi-UAV where torch is installed)",
        "differential",
        differential_report.write_differential,
        default=False,
    ),
}
PRESET_NAMES = ("quick", "paper")


def reproduce(
    names: Sequence[str],
    *,
    preset: str = "quick",
    out: str | Path = "runs/reproduce",
    seed: int = 0,
    workers: int = 1,
    instances: int | None = None,
    seeds: int | None = None,
    progress: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    engine: str = "local",
    address: str | None = None,
) -> Path:
    """Run the named experiments and write ``out/<name>/{summary.json,table.md,*.png}`` and
    ``out/report.md``. Returns the report path.

    ``instances`` overrides the task sets per N of the edge-scheduling tables; ``seeds`` the seeds
    per method of the episodic experiments. ``overwrite`` replaces a previous ``reproduce`` run in
    ``out`` (only twinrl's own files; see :mod:`twinrl.outdir`).

    Finished runs are kept as they finish in ``out/partial/<group>.jsonl`` (``group`` is ``edge``,
    ``ap`` or ``uav``): one strict-JSON object per line, the result dict of one run exactly as the
    group's job returned it (numpy arrays as nested lists, NaN and infinities as ``null``), in
    completion order. The file is rewritten from the start by each command; the last line of an
    interrupted command may be incomplete and should be skipped by a reader.

    Each run's result is also kept exactly in ``out/partial/<group>.resume.jsonl``
    (:mod:`twinrl.checkpoint.results`: keyed by :func:`~twinrl.experiments.parallel.job_key`,
    checksummed, with the twinrl version, preset and seed). ``resume`` continues the previous
    run of the same command in ``out`` (same names, preset, seed, instances and seeds; refused
    otherwise): the runs kept there are not run again, and the outputs equal an uninterrupted
    run's (but for the ``seconds`` it took); either engine may continue the other's run.

    ``engine`` runs the runs locally (``workers`` processes) or as Ray tasks (``ray``, the
    ``ray`` extra): on the Ray cluster at ``address``, or on a local Ray instance of ``workers``
    CPUs (:func:`~twinrl.experiments.parallel.use_engine`). Both give the same results.

    Raises:
        ConfigError: an unknown name, preset or an out-of-range count, or both ``resume`` and
            ``overwrite``.
        ImportError: a named experiment or the engine needs an extra that is not installed.
        OutputDirError: ``out`` cannot be used (see :meth:`twinrl.outdir.RunDir.open`).
        Interrupted: SIGINT or SIGTERM; its ``kept`` says how many finished runs were kept.
        WorkerLostError: a worker process (or a Ray task's) died twice.
    """
    named = list(dict.fromkeys(names))
    unknown = [n for n in named if n not in EXPERIMENTS]
    if unknown:
        shown = ", ".join(short_repr(n, 40) for n in unknown[:5])
        raise ConfigError(f"unknown experiment(s) {shown}; choose from {', '.join(EXPERIMENTS)}")
    for name in named:
        if EXPERIMENTS[name].missing():
            raise ImportError(_needs(name))
    # with no names: every default experiment whose optional modules are installed; the others
    # are named in the report as skipped
    defaults = [n for n, e in EXPERIMENTS.items() if e.default]
    names = named or [n for n in defaults if not EXPERIMENTS[n].missing()]
    skipped = [n for n in defaults if not named and EXPERIMENTS[n].missing()]
    for name in skipped:
        print(f"twinrl reproduce: skipping {_needs(name)}", file=sys.stderr)
    if preset not in PRESET_NAMES:
        raise ConfigError(
            f"preset={short_repr(preset)} is not allowed; choose one of {', '.join(PRESET_NAMES)}"
        )
    for label, value in (("workers", workers), ("instances", instances), ("seeds", seeds)):
        if value is None and label != "workers":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{label}={short_repr(value)} is out of range; allowed: an int >= 1")
    check_int("seed", seed, 0, 2**63 - 1)
    check_engine(engine, address)
    if resume and overwrite:
        raise ConfigError(
            "--resume and --overwrite exclude each other: --resume continues the run in --out, "
            "--overwrite replaces it; choose one"
        )
    command = {"names": named, "preset": preset, "seed": seed, "instances": instances,
               "seeds": seeds}  # fmt: skip
    run_dir = RunDir.open(out, "reproduce", overwrite=overwrite, resume=resume, command=command)
    groups = list(dict.fromkeys(EXPERIMENTS[n].group for n in names))
    scope = {"version": __version__, "preset": preset, "seed": seed}
    stores = {g: _Store(run_dir, g, scope, resume=resume) for g in groups}
    if resume:
        every = KeptResults()
        for store in stores.values():
            every.lines.update(store.kept.lines)
            every.ignored.update(store.kept.ignored)
        print(f"twinrl reproduce: resuming {run_dir.path}: {every.describe()}", file=sys.stderr)
    finished = 0

    def keep(group: str) -> Callable[[dict[str, Any]], None]:
        def append(result: dict[str, Any]) -> None:
            nonlocal finished
            run_dir.append_line(
                f"partial/{group}.jsonl", to_json(result, indent=None, lenient=True)
            )
            finished += 1

        return append

    try:
        summaries: dict[str, tuple[dict[str, Any], float]] = {}
        with use_engine(engine, address=address, workers=workers):
            for group in groups:
                start = time.perf_counter()
                with on_result(keep(group)), resume_from(stores[group]):
                    summary = GROUPS[group].run(preset, seed=seed, workers=workers,
                                                progress=progress, instances=instances,
                                                seeds=seeds)  # fmt: skip
                summaries[group] = (summary, time.perf_counter() - start)
        sections = []
        for name in names:
            summary, elapsed = summaries[EXPERIMENTS[name].group]
            with run_dir.scratch() as scratch:
                result = EXPERIMENTS[name].write(summary, scratch / name)
                run_dir.adopt(scratch / name, name)
            payload = {"experiment": name, "meta": _meta(preset, seed, elapsed), **result}
            payload["grid"] = summary
            run_dir.write_json(f"{name}/summary.json", payload)
            sections.append((run_dir.path / name / "table.md").read_text())
        total = sum(elapsed for _, elapsed in summaries.values())
        ran = f"with {workers} worker(s)" if engine == "local" else (
            f"on the Ray cluster at {address}" if address else f"on a local Ray instance of "
            f"{workers} CPU(s)")  # fmt: skip
        report = [f"# twinrl report ({preset} preset)", "",
                  f"twinrl {__version__}, seed {seed}, {total:.0f} s of compute {ran}.", ""]  # fmt: skip
        for name, text in zip(names, sections, strict=True):
            report += [text.replace("](", f"]({name}/"), ""]
        report += [f"Not run: {_needs(name)}.\n" for name in skipped]
        run_dir.write_text("report.md", "\n".join(report))
        run_dir.finish()
    except KeyboardInterrupt as exc:
        run_dir.abandon()
        where = run_dir.path / "partial"
        kept = f"{finished} finished run(s) kept in {where}/" if finished else "no run finished"
        raise Interrupted(getattr(exc, "signum", signal.SIGINT), kept) from None
    except BaseException:
        run_dir.abandon()
        raise
    return run_dir.path / "report.md"


class _Store:
    """The results kept in ``partial/<group>.resume.jsonl``: those of the previous command (with
    ``resume``), and each result computed now, appended as it finishes."""

    def __init__(self, run_dir: RunDir, group: str, scope: dict[str, Any], *, resume: bool) -> None:
        self.run_dir = run_dir
        self.rel = f"partial/{group}.resume.jsonl"
        self.scope = scope
        self.kept = KeptResults()
        if resume and self.rel in run_dir.previous_files:  # never read a file twinrl did not list
            self.kept = read_results(run_dir.path / self.rel, scope)
            # carry the usable lines over at once (dropping an incomplete last line), so new
            # lines are appended after them and a second interruption keeps them too
            run_dir.write_text(self.rel, "".join(f"{t}\n" for t in self.kept.lines.values()))

    def __contains__(self, key: str) -> bool:
        return key in self.kept.lines

    def result(self, key: str) -> Any:
        return self.kept.result(key)

    def keep(self, key: str, job: object, result: dict[str, Any]) -> None:
        try:
            line = result_line(key, self.scope, job_label(job), result)
        except TypeError:
            return  # a result JSON cannot hold exactly is not kept: its job runs again
        self.run_dir.append_line(self.rel, line)


def _needs(name: str) -> str:
    exp = EXPERIMENTS[name]
    return (f"{name} needs {', '.join(exp.missing())}: from a twinrl checkout, "
            f"pip install -e \".[{exp.extra}]\"")  # fmt: skip


def _meta(preset: str, seed: int, elapsed: float) -> dict[str, Any]:
    return {"preset": preset, "seed": seed, "seconds": elapsed, "version": __version__,
            "git_commit": git_commit()}  # fmt: skip


def git_commit() -> str | None:
    """The commit of the twinrl checkout, if it is one."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent, timeout=5,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
