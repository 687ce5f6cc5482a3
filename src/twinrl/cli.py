"""The ``twinrl`` command: ``list``, ``train`` and ``reproduce``.

Every error a user can cause ends the command with one line on stderr: ``twinrl <cmd>: error:
<message>`` and exit status 2 (bad input, a bad ``--out``, a file system error, memory running
out); an interrupt (SIGINT, SIGTERM) exits 130 or 143 after saying what finished work was kept;
anything else is an internal error (exit 1). ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from twinrl import __version__, tblog
from twinrl.algorithms import ALGORITHMS, Streams, build_algorithm
from twinrl.checkpoint import manifest_for, save_checkpoint
from twinrl.config import TrainConfig, build_config
from twinrl.envs import ENV_IDS
from twinrl.errors import CheckpointError, ConfigError, TwinrlError, short_repr
from twinrl.experiments.parallel import ENGINES, Interrupted, interrupts_raise
from twinrl.experiments.runner import EXPERIMENTS, PRESET_NAMES, git_commit, reproduce
from twinrl.outdir import RunDir, recorded_command, to_json
from twinrl.resume import Checkpointing, load_resume
from twinrl.training import train
from twinrl.twin import DigitalTwin

_MESSAGE_LIMIT = 500
"""Longest message printed (an exception's text can hold a value of any size)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twinrl", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"twinrl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    # --debug is also accepted after the subcommand; SUPPRESS keeps the top-level value
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an error")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", parents=[debug], help="show environments, algorithms and experiments")

    tr = sub.add_parser("train", parents=[debug],
                        help="train one agent and write its metrics and checkpoint")  # fmt: skip
    tr.add_argument("--env", help="registered environment id (default twinrl/EdgeScheduling-v0)")
    tr.add_argument("--allow-import", action="store_true",
                    help="let --env be gymnasium's 'module:Env-v0', importing that module")  # fmt: skip
    tr.add_argument("--algo", choices=sorted(ALGORITHMS), help="algorithm (default dteql)")
    tr.add_argument("--budget", type=int, help="physical iterations (default 25600)")
    tr.add_argument("--seed", type=int, help="seed of every random stream (default 0)")
    tr.add_argument("--config", help="YAML or TOML file of TrainConfig fields")
    tr.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, e.g. env_kwargs.n_tasks=6 or agent.lr=0.2")  # fmt: skip
    tr.add_argument("--out",
                    help="output directory: new, empty, or a previous train run with "
                         "--overwrite (default runs/train)")  # fmt: skip
    tr.add_argument("--overwrite", action="store_true",
                    help="replace the previous twinrl train run in --out (only its files)")  # fmt: skip
    tr.add_argument("--checkpoint-every", type=int, metavar="N",
                    help="write a resume checkpoint (resume.npz) every N physical iterations")  # fmt: skip
    tr.add_argument("--resume", metavar="DIR",
                    help="continue the killed twinrl train run in DIR from its last checkpoint "
                         "(its options are reused; options given must equal them)")  # fmt: skip
    tr.add_argument("--tensorboard", action=argparse.BooleanOptionalAction,
                    help="write TensorBoard events to DIR/tensorboard (default: on when "
                         "tensorboardX is installed)")  # fmt: skip
    tr.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    rp = sub.add_parser("reproduce", parents=[debug],
                        help="run the paper experiments and write a report")  # fmt: skip
    rp.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"experiments: {', '.join(EXPERIMENTS)} (none: the paper reproductions, "
        f"{', '.join(n for n, e in EXPERIMENTS.items() if e.default)})",
    )
    rp.add_argument("--preset", default="quick", choices=PRESET_NAMES)
    rp.add_argument("--out", default="runs/reproduce",
                    help="output directory: new, empty, or a previous reproduce run with "
                         "--overwrite (default runs/reproduce)")  # fmt: skip
    rp.add_argument("--overwrite", action="store_true",
                    help="replace the previous twinrl reproduce run in --out (only its files)")  # fmt: skip
    rp.add_argument("--resume", action="store_true",
                    help="continue the interrupted twinrl reproduce run in --out (the same "
                         "command): runs finished there are not run again")  # fmt: skip
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--workers", type=int, default=2,
                    help="parallel worker processes (with --engine ray and no --address: the "
                         "local Ray instance's CPUs)")  # fmt: skip
    rp.add_argument("--engine", default="local", choices=ENGINES,
                    help="run the runs in local processes, or as Ray tasks (the ray extra); "
                         "both give the same results (default local)")  # fmt: skip
    rp.add_argument("--address",
                    help="with --engine ray: the Ray cluster to join ('auto', or HOST:PORT of "
                         "its head node); default: start a local Ray instance")  # fmt: skip
    rp.add_argument("--instances", type=int, help="task instances per N (overrides the preset)")
    rp.add_argument("--seeds", type=int, help="seeds per method of fig4/safety (overrides preset)")
    rp.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = _parser().parse_args(argv)
    prefix = f"twinrl {args.command}:"
    try:
        with interrupts_raise():
            _run(args)
    except KeyboardInterrupt as exc:
        if args.debug:
            raise
        signum = getattr(exc, "signum", signal.SIGINT)
        kept = getattr(exc, "kept", "")
        name = (
            "interrupted"
            if signum == signal.SIGINT
            else f"stopped by {signal.Signals(signum).name}"
        )
        _say(f"{prefix} {name}" + (f"; {kept}" if kept else ""))
        return 128 + signum
    except MemoryError:
        if args.debug:
            raise
        _say(f"{prefix} error: out of memory; use a smaller budget or config, or fewer workers")
        return 2
    except (TwinrlError, ValueError, TypeError, ImportError) as exc:
        if args.debug:
            raise
        _say(f"{prefix} error: {exc}")
        return 2
    except OSError as exc:  # a file system error: disk full, permissions, a file vanished
        if args.debug:
            raise
        where = f": {short_repr(str(exc.filename))}" if exc.filename else ""
        _say(f"{prefix} error: {exc.strerror or exc}{where}")
        return 2
    except Exception as exc:
        if args.debug:
            raise
        _say(f"{prefix} internal error: {type(exc).__name__}: {_cut(str(exc), 300)}; "
             "run with --debug for the traceback")  # fmt: skip
        return 1
    return 0


def _say(message: str) -> None:
    """Print ``message`` to stderr as one bounded line."""
    print(_cut(message, _MESSAGE_LIMIT), file=sys.stderr)


def _cut(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _run(args: argparse.Namespace) -> None:
    if args.command == "list":
        _list()
    elif args.command == "train":
        cfg, run_dir = _train_setup(args)
        tensorboard = tblog.available() if args.tensorboard is None else args.tensorboard
        _train(cfg, run_dir, progress=not args.no_progress, tensorboard=tensorboard,
               resume=args.resume is not None)  # fmt: skip
    else:
        report = reproduce(args.names, preset=args.preset, out=args.out, seed=args.seed,
                           workers=args.workers, instances=args.instances, seeds=args.seeds,
                           progress=not args.no_progress, overwrite=args.overwrite,
                           resume=args.resume, engine=args.engine,
                           address=args.address)  # fmt: skip
        print(f"report: {report}")


def _list() -> None:
    print("environments:")
    for env_id in ENV_IDS:
        print(f"  {env_id}")
    print("algorithms:")
    width = max(map(len, ALGORITHMS))
    for name, text in ALGORITHMS.items():
        print(f"  {name:{width}s} {text}")
    print("experiments (twinrl reproduce NAME; * only when named):")
    width = max(map(len, EXPERIMENTS))
    for name, experiment in EXPERIMENTS.items():
        mark = " " if experiment.default else "*"
        print(f" {mark}{name:{width}s} {experiment.description}")


def resolve_env(env_id: str | None, *, allow_import: bool = False) -> str | None:
    """The registered id ``--env`` names, refusing anything else before it is imported.

    Gymnasium reads ``"module:Env-v0"`` as "import ``module``, then make ``Env-v0``", which would
    run any installed module's import-time code; only with ``allow_import`` is ``module``
    imported (it should register ``Env-v0``), and ``Env-v0`` returned. ``None`` (no ``--env``)
    stays ``None``; the config file's ``env`` is checked by :class:`TrainConfig`.

    Raises:
        ConfigError: ``env_id`` names a module (without ``allow_import``) or is not registered.
        ImportError: the module of ``"module:Env-v0"`` cannot be imported.
    """
    if env_id is None:
        return None
    shown = short_repr(env_id)
    module, colon, name = env_id.partition(":")
    if colon and not allow_import:
        raise ConfigError(
            f"--env {shown} names a module to import (the part before ':'); pass --allow-import "
            f"to import it, or use a registered id such as {', '.join(ENV_IDS)}"
        )
    if colon:
        importlib.import_module(module)
        env_id = name
    if env_id not in gym.registry:
        raise ConfigError(
            f"--env {short_repr(env_id)} is not a registered environment; twinrl's are "
            f"{', '.join(ENV_IDS)} (another package's: --env 'module:Env-v0' --allow-import)"
        )
    return env_id


RESUME = "resume.npz"
"""The resume checkpoint of a ``twinrl train`` run with ``--checkpoint-every``."""


def _train_setup(args: argparse.Namespace) -> tuple[TrainConfig, RunDir]:
    """The config and output directory of ``twinrl train``; with ``--resume DIR``, the config
    recorded in DIR's marker unless options are given (then they must equal it)."""
    env = resolve_env(args.env, allow_import=args.allow_import)
    options = {"env": env, "algo": args.algo, "budget": args.budget, "seed": args.seed,
               "checkpoint_every": args.checkpoint_every}  # fmt: skip
    out = "runs/train" if args.out is None else args.out
    if args.resume is not None:
        if not args.resume:
            raise ConfigError("--resume is empty; give the directory of the run to continue")
        if args.out is not None and Path(args.out) != Path(args.resume):
            raise ConfigError(
                f"--resume {short_repr(args.resume)} continues the run in that directory; drop "
                f"--out {short_repr(args.out)}"
            )
        out = args.resume
        recorded = None if args.overwrite else recorded_command(out, "train")
        if recorded is not None:  # options given must equal the recorded ones
            cfg = build_config(args.config, args.overrides, base=recorded, **options)
            return cfg, RunDir.open(out, "train", resume=True, command=cfg.to_dict())
    cfg = build_config(args.config, args.overrides, **options)
    run_dir = RunDir.open(out, "train", overwrite=args.overwrite,
                          resume=args.resume is not None, command=cfg.to_dict())  # fmt: skip
    return cfg, run_dir


def _train(
    cfg: TrainConfig, run_dir: RunDir, *, progress: bool, tensorboard: bool, resume: bool
) -> None:
    """Train, then write config.json, metrics.csv, summary.json, timing.json and checkpoint.npz
    into ``run_dir``, each file atomically; with ``checkpoint_every``, ``resume.npz`` during the
    run (removed at the end), and with ``resume``, continue from it."""
    logger = None
    try:
        try:
            env = gym.make(cfg.env, **cfg.env_kwargs)
        except gym.error.Error as exc:
            raise ConfigError(
                f"env={short_repr(cfg.env)}: {exc}; known: {', '.join(ENV_IDS)}"
            ) from exc
        agent, assists = build_algorithm(
            cfg.algo, env, cfg.seed, agent_config=cfg.agent_config(), n_trials=cfg.n_trials,
            n_agents=cfg.n_agents, sync_every=cfg.sync_every, k=cfg.k, m=cfg.m,
        )  # fmt: skip
        twin = DigitalTwin(env, backend=cfg.backend)
        manifest = manifest_for(cfg.algo, cfg.to_dict(), env.observation_space, env.action_space)
        resume_from = _resume_state(run_dir, manifest) if resume else None
        every = cfg.checkpoint_every
        checkpoint = Checkpointing(run_dir.claim(RESUME), every, manifest) if every else None
        if tensorboard:
            first = 1 if resume_from is None else int(resume_from["loop.iteration"]) + 1
            logger = tblog.TensorBoardLog(run_dir, budget=cfg.budget, twin=twin, first=first,
                                          flush_every=every)  # fmt: skip
        run = train(env, agent, budget=cfg.budget, assists=assists, twin=twin,
                    seed=Streams.from_seed(cfg.seed).env_seed, progress=progress,
                    evaluate=cfg.evaluate, eval_every=cfg.eval_every,
                    eval_steps=cfg.eval_steps, checkpoint=checkpoint, resume_from=resume_from,
                    callback=logger)  # fmt: skip
        meta = {"version": __version__, "git_commit": git_commit(), **cfg.to_dict()}
        run_dir.write_json("config.json", meta)
        keys = list(run.history)
        table = io.StringIO()
        writer = csv.writer(table)
        writer.writerow(["iteration", *keys])
        for i in range(run.iterations):
            writer.writerow([i + 1, *(repr(float(run.history[k][i])) for k in keys)])
        run_dir.write_text("metrics.csv", table.getvalue())
        greedy = run.history.get("greedy_return", np.array([np.nan]))
        returns = run.episode_returns[-10:]
        summary = {"iterations": run.iterations, "episodes": run.episodes,
                   "twin_evaluations": run.twin_evaluations,
                   "final_greedy_return": float(greedy[-1]),
                   "mean_return_last_10_episodes": float(np.mean(returns)) if returns else None}  # fmt: skip
        run_dir.write_json("summary.json", summary)  # NaN (no evaluation) is written as null
        run_dir.write_json("timing.json", {"wall_time_s": run.wall_time})  # the machine's
        save_checkpoint(run_dir.claim("checkpoint.npz"), agent.state_dict(), manifest)
        run_dir.discard(RESUME)
        run_dir.finish()
    except KeyboardInterrupt as exc:
        run_dir.abandon()
        signum = getattr(exc, "signum", signal.SIGINT)
        kept = (
            f"the last checkpoint is kept: continue with twinrl train --resume {run_dir.path}"
            if cfg.checkpoint_every and (run_dir.path / RESUME).exists()
            else "train keeps no partial results"
        )
        raise Interrupted(signum, kept) from None
    except BaseException:
        run_dir.abandon()
        raise
    finally:
        if logger is not None:
            logger.close()
    print(to_json(summary, indent=None))


def _resume_state(run_dir: RunDir, manifest: dict[str, Any]) -> dict[str, Any]:
    """The arrays of ``run_dir``'s resume checkpoint, refused unless it is this run's."""
    path = run_dir.path / RESUME
    if RESUME not in run_dir.previous_files or not path.is_file():
        raise CheckpointError(
            f"--resume {short_repr(str(run_dir.path))} holds no {RESUME} (the run finished, was "
            "killed before its first checkpoint, or ran without --checkpoint-every); start it "
            "again with --overwrite"
        )
    return load_resume(path, expect=manifest)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
