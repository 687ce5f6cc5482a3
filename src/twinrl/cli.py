"""The ``twinrl`` command: ``list``, ``train`` and ``reproduce``."""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np

from twinrl import __version__
from twinrl.algorithms import ALGORITHMS, DEEP, Streams, build_algorithm
from twinrl.config import TrainConfig, build_config
from twinrl.envs import ENV_IDS
from twinrl.experiments.runner import EXPERIMENTS, PRESET_NAMES, git_commit, reproduce
from twinrl.training import train
from twinrl.twin import DigitalTwin


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twinrl", description=__doc__)
    parser.add_argument("--version", action="version", version=f"twinrl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="show environments, algorithms and experiments")

    tr = sub.add_parser("train", help="train one agent and write its metrics and checkpoint")
    tr.add_argument("--env", help="environment id (default twinrl/EdgeScheduling-v0)")
    tr.add_argument("--algo", choices=sorted(ALGORITHMS), help="algorithm (default dteql)")
    tr.add_argument("--budget", type=int, help="physical iterations (default 25600)")
    tr.add_argument("--seed", type=int, help="seed of every random stream (default 0)")
    tr.add_argument("--config", help="YAML or TOML file of TrainConfig fields")
    tr.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, e.g. env_kwargs.n_tasks=6 or agent.lr=0.2")  # fmt: skip
    tr.add_argument("--out", default="runs/train", help="output directory (default runs/train)")
    tr.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    rp = sub.add_parser("reproduce", help="run the paper experiments and write a report")
    rp.add_argument(
        "names", nargs="*", metavar="NAME", help=f"experiments: {', '.join(EXPERIMENTS)}"
    )
    rp.add_argument("--preset", default="quick", choices=PRESET_NAMES)
    rp.add_argument("--out", default="runs/reproduce", help="output directory")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--workers", type=int, default=2, help="parallel worker processes")
    rp.add_argument("--instances", type=int, help="task instances per N (overrides the preset)")
    rp.add_argument("--seeds", type=int, help="seeds per method of fig4/safety (overrides preset)")
    rp.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            _list()
        elif args.command == "train":
            cfg = build_config(args.config, args.overrides, env=args.env, algo=args.algo,
                               budget=args.budget, seed=args.seed)  # fmt: skip
            _train(cfg, Path(args.out), progress=not args.no_progress)
        else:
            report = reproduce(args.names, preset=args.preset, out=args.out, seed=args.seed,
                               workers=args.workers, instances=args.instances, seeds=args.seeds,
                               progress=not args.no_progress)  # fmt: skip
            print(f"report: {report}")
    except (ValueError, TypeError, ImportError) as exc:
        print(f"twinrl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _list() -> None:
    print("environments:")
    for env_id in ENV_IDS:
        print(f"  {env_id}")
    print("algorithms:")
    for name, text in ALGORITHMS.items():
        print(f"  {name:8s} {text}")
    print("experiments (twinrl reproduce NAME):")
    for name, experiment in EXPERIMENTS.items():
        print(f"  {name:8s} {experiment.description}")


def _train(cfg: TrainConfig, out: Path, *, progress: bool) -> None:
    """Train, then write config.json, metrics.csv, summary.json and checkpoint.npz atomically."""
    try:
        env = gym.make(cfg.env, **cfg.env_kwargs)
    except gym.error.Error as exc:
        raise ValueError(f"env={cfg.env!r}: {exc}; known: {', '.join(ENV_IDS)}") from exc
    agent, assists = build_algorithm(
        cfg.algo, env, cfg.seed, agent_config=cfg.agent_config(), n_trials=cfg.n_trials,
        n_agents=cfg.n_agents, sync_every=cfg.sync_every, k=cfg.k, m=cfg.m,
    )  # fmt: skip
    twin = DigitalTwin(env, backend=cfg.backend)
    evaluate = cfg.evaluate if cfg.evaluate is not None else cfg.algo not in DEEP
    run = train(env, agent, budget=cfg.budget, assists=assists, twin=twin,
                seed=Streams.from_seed(cfg.seed).env_seed, progress=progress,
                evaluate=evaluate)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        meta = {"version": __version__, "git_commit": git_commit(), **cfg.to_dict()}
        (staging / "config.json").write_text(json.dumps(meta, indent=1))
        keys = list(run.history)
        with (staging / "metrics.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["iteration", *keys])
            for i in range(run.iterations):
                writer.writerow([i + 1, *(repr(float(run.history[k][i])) for k in keys)])
        greedy = run.history.get("greedy_return", np.array([np.nan]))
        returns = run.episode_returns[-10:]
        summary = {"iterations": run.iterations, "episodes": run.episodes,
                   "twin_evaluations": run.twin_evaluations, "wall_time_s": run.wall_time,
                   "final_greedy_return": None if np.isnan(greedy[-1]) else float(greedy[-1]),
                   "mean_return_last_10_episodes": float(np.mean(returns)) if returns else None}  # fmt: skip
        (staging / "summary.json").write_text(json.dumps(summary, indent=1))
        np.savez(staging / "checkpoint.npz", **agent.state_dict())
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(json.dumps(summary))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
