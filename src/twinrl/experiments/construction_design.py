"""The design of the ``construction`` experiment: each case study's learners and biased
parameter (:data:`STUDIES`), the sizes of the presets (:data:`PRESETS`) and the variants every
seed runs, with their labels in report order. :mod:`twinrl.experiments.construction_study` runs
them; :mod:`twinrl.experiments.construction_report` writes the report."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypeVar

from twinrl.experiments import ap_figures, uav_runs
from twinrl.experiments.episodic import Variant
from twinrl.experiments.fidelity_study import AP_CASE, EDGE_CASE, UAV_CASE, Case

EDGE_ID = "twinrl/EdgeScheduling-v0"
NOT_BUILT = 10**9
"""``ready_after`` of a twin that could not be calibrated: never usable."""


@dataclass(frozen=True)
class Study:
    """One case study: its learners, env and the parameter a twin under construction gets wrong;
    ``case`` holds the fidelity study's thresholds (``start_below``, ``recalibrate_every``)."""

    case: Case
    physical: Variant
    assisted: Variant
    field: str
    """The twin parameter of the ``schedule`` and ``recalibration`` parts' bias."""
    unit: str
    """What the budget counts: ``episodes`` or ``iterations`` (edge: one-step episodes)."""
    env_id: str
    env_kwargs: tuple[tuple[str, Any], ...] = ()


STUDIES = {
    "ap": Study(AP_CASE, Variant("QL", "ql"), Variant("DT-QL n=5", "dteql", n_trials=5),
                "ap_rates", "episodes", ap_figures.ENV_ID),
    "edge": Study(EDGE_CASE, Variant("QL", "ql"), Variant("DTEQL", "dteql"), "rate",
                  "iterations", EDGE_ID),
    "uav": Study(UAV_CASE, Variant("DQL", "dqn"),
                 Variant("DT-DQL k=5", "dt-dqn", k=5, m=uav_runs.TRAJECTORIES), "user_speed_std",
                 "episodes", uav_runs.ENV_ID, tuple(sorted(uav_runs.ENV.items()))),
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class CaseSize:
    """Budget and levels of one case study."""

    episodes: int
    """Physical budget of a run, in :attr:`Study.unit` (edge scheduling: iterations)."""
    seeds: int
    """Paired seeds (edge scheduling: task instances, one seed each)."""
    eval_episodes: int = 0
    """Physical greedy evaluation episodes after training (access points, UAVs)."""
    fractions: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
    """T_c as fractions of the same seed's physical-only time to converge."""
    bias: float = -0.5
    """Relative bias of :attr:`Study.field` in the twin under construction (``schedule``) and in
    the prior of the recalibrating twin."""
    improve_episodes: int = 200
    """``schedule``: episodes over which that bias shrinks to 0 (``improve_over``)."""
    calibration_episodes: tuple[int, ...] = (1, 5, 20, 100)
    """``calibration``: physical episodes observed before the calibrated twin is built."""
    window: int = 50
    """Moving-average window of the curves (episodes; access points, UAVs)."""


@dataclass(frozen=True, kw_only=True)
class EdgeSize(CaseSize):
    """Edge scheduling: :attr:`episodes` is the physical-only learner's iteration budget."""

    n_tasks: int = 5
    phi: int = 100
    """DTEQL's twin trials per physical iteration."""
    eval_every: int = 5
    """Greedy evaluation period (iterations): convergence is this exact."""
    settle: int = 500
    """A twin-assisted run stops this many iterations after its twin is built and improved
    (``ready_after`` + ``improve_over``; at most at the budget): DTEQL converges within a few
    hundred once its twin is accurate, and the twin's trials are what a run costs."""


@dataclass(frozen=True)
class Preset:
    ap: CaseSize | None
    edge: EdgeSize | None = None
    uav: CaseSize | None = None
    """None: the multi-UAV case study is not run."""


_Size = TypeVar("_Size", bound=CaseSize)

PRESETS = {
    "quick": Preset(
        ap=CaseSize(episodes=400, seeds=3, eval_episodes=20, fractions=(0.0, 0.25, 0.5, 0.75, 1.0),
                    calibration_episodes=(1, 5)),
        edge=EdgeSize(episodes=5000, seeds=3, fractions=(0.0, 0.25, 0.5, 0.75, 1.0),
                      improve_episodes=1000, calibration_episodes=(1, 10, 100)),
        uav=CaseSize(episodes=40, seeds=2, eval_episodes=uav_runs.EVAL_EPISODES, fractions=(0.0, 0.5),
                     bias=2.0, improve_episodes=20, calibration_episodes=(1,), window=10),
    ),
    "paper": Preset(
        ap=CaseSize(episodes=600, seeds=8, eval_episodes=40, improve_episodes=300),
        edge=EdgeSize(episodes=25000, seeds=6, fractions=(0.0, 0.25, 0.5, 0.75, 1.0), n_tasks=6,
                      improve_episodes=5000, calibration_episodes=(1, 10, 100), settle=2000),
        uav=CaseSize(episodes=100, seeds=3, eval_episodes=uav_runs.EVAL_EPISODES,
                     fractions=(0.0, 0.25, 0.5, 0.75, 1.0), bias=2.0, improve_episodes=50,
                     calibration_episodes=(1, 5), window=10),
    ),
}  # fmt: skip
"""``quick``: a smoke run (3 seeds on AP and edge, 2 on multi-UAV, whose verdicts then say "too
few seeds"). ``paper``: the AP part of the first measurement with 8 of its 10 seeds (the same
runs for those seeds), edge scheduling at N = 6 and multi-UAV on 3 seeds, to stay within 15
minutes on 2 cores."""


# --- the variants --------------------------------------------------------------------------------


def construction_label(fraction: float, physical: str = "QL") -> str:
    if fraction == 0:
        return "T_c = 0 (perfect twin)"
    return f"T_c = {fraction:.0%} of {physical}'s time"


def calibration_label(episodes: int, unit: str = "episodes") -> str:
    return f"calibrated after {episodes} {unit}"


SCHEDULES = ("early (noisy)", "wait (accurate)", "start_below")
RECALIBRATION = "online recalibration"


def schedule_variants(
    size: CaseSize, steps: int, study: Study | None = None
) -> list[tuple[str, float, Variant, int]]:
    """A twin whose bias shrinks to 0 over ``improve_episodes`` episodes of ``steps`` steps: used
    at once, awaited, or started once its measured error is at most the case's ``start_below``."""
    study = study or STUDIES["ap"]
    improve = size.improve_episodes * steps
    building = (("bias", {study.field: size.bias}), ("improve_over", improve))
    assisted = study.assisted
    return [
        ("schedule", 0.0, replace(assisted, label=SCHEDULES[0], fidelity=building), 0),
        ("schedule", 1.0, replace(assisted, label=SCHEDULES[1],
                                  fidelity=(("ready_after", improve),)), 0),
        ("schedule", 2.0, replace(assisted, label=SCHEDULES[2], fidelity=building,
                                  start_below=study.case.start_below), 0),
    ]  # fmt: skip


def recalibration_variant(size: CaseSize, study: Study) -> tuple[str, float, Variant, int]:
    """The schedule's biased prior, used at once and re-estimated online from the physical
    transitions every ``Case.recalibrate_every`` steps."""
    return ("recalibration", 0.0, replace(
        study.assisted, label=RECALIBRATION, fidelity=(("bias", {study.field: size.bias}),),
        recalibrate=(("every", study.case.recalibrate_every),)), 0)  # fmt: skip


def labels(size: CaseSize, study: Study | None = None) -> list[str]:
    """Every variant's label, in report order."""
    study = study or STUDIES["ap"]
    name = study.physical.label
    return [name, *(construction_label(f, name) for f in size.fractions), *SCHEDULES,
            *(calibration_label(n, study.unit) for n in size.calibration_episodes),
            RECALIBRATION]  # fmt: skip
