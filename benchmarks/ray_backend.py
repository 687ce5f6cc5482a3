"""Benchmark: twin domains of a slow third-party env stepped by the Ray actor backend vs the serial
backend vs ``gymnasium.vector.AsyncVectorEnv``, and scaling from 1 to 2 workers, in one run.

The env is gymnasium's ``CartPole-v1`` inside :class:`BusyStep`, a wrapper that burns ``--ms``
milliseconds of CPU (not sleep) in every step: a stand-in for a third-party simulator whose step
costs milliseconds. Each call steps ``--domains`` twin domains from one snapshot (as
``DigitalTwin.trial`` does); the serial backend does that in this process, the Ray backend in
blocks in 1 or 2 actors. AsyncVectorEnv steps its own 1 or 2 env copies in subprocesses ``domains
/ envs`` times per call: the same number of env steps on the same env, but without restoring a
snapshot per domain (it cannot run domains from a given state), so it is a reference for plain
parallel stepping rather than a twin backend.

Throughput is domain steps per wall second, as a ratio against the serial backend measured in the
same run; CPU seconds are those of this process plus the workers' (Ray actors, AsyncVectorEnv
subprocesses; read from ``/proc``, Linux). Needs the ``ray`` extra.

    python benchmarks/ray_backend.py [--ms 2] [--domains 64] [--calls 20]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from twinrl.twin.backends import SerialBackend, capture
from twinrl.twin.ray_backend import RayBackend
from twinrl.twin.ray_session import ensure_connected


class BusyStep(gym.Wrapper[Any, Any, Any, Any]):
    """Burns ``seconds`` of this thread's CPU time in every step before stepping the env (a slow
    simulator; CPU, not sleep, so that parallel workers compete for the cores as a real one
    would). Changes nothing the agent sees."""

    def __init__(self, env: gym.Env[Any, Any], seconds: float) -> None:
        super().__init__(env)
        self.seconds = seconds

    def step(self, action: Any) -> Any:
        end = time.thread_time() + self.seconds
        while time.thread_time() < end:
            pass
        return self.env.step(action)


def slow_cartpole(seconds: float) -> gym.Env[Any, Any]:
    return BusyStep(gym.make("CartPole-v1"), seconds)


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(
    step: Callable[[], object], calls: int, worker_cpu: Callable[[], float]
) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and the workers) of ``calls`` calls."""
    step()  # warm up: start workers, size blocks
    cpu0, wall0, workers0 = time.process_time(), time.perf_counter(), worker_cpu()
    for _ in range(calls):
        step()
    wall = time.perf_counter() - wall0
    return wall, time.process_time() - cpu0 + worker_cpu() - workers0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ms", type=float, default=2.0, help="CPU milliseconds per env step")
    parser.add_argument("--domains", type=int, default=64, help="domains per call")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per configuration")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    env = slow_cartpole(args.ms / 1e3)
    env.reset(seed=0)
    state = capture(env, "copy")
    states = [state] * args.domains
    actions = np.arange(args.domains, dtype=np.int64) % 2
    steps = args.domains * args.calls
    rows: list[tuple[str, float, float]] = []

    serial = SerialBackend(env)
    wall, cpu = _measure(lambda: serial.step(states, actions), args.calls, lambda: 0.0)
    rows.append(("serial backend", wall, cpu))
    ray = ensure_connected()
    for workers in (1, 2):
        backend = RayBackend(env, workers=workers)

        def actors_cpu(b: RayBackend = backend) -> float:
            return sum(ray.get([a.cpu_seconds.remote() for a in b._actors])) if b._actors else 0.0

        wall, cpu = _measure(lambda b=backend: b.step(states, actions), args.calls, actors_cpu)
        rows.append((f"ray backend, {workers} actor(s), block {backend.block}", wall, cpu))
    for envs in (1, 2):
        vec = gym.vector.AsyncVectorEnv([lambda: slow_cartpole(args.ms / 1e3)] * envs)
        vec.reset(seed=0)
        pids = [p.pid for p in vec.processes]
        vec_actions = np.arange(envs, dtype=np.int64) % 2
        wall, cpu = _measure(
            lambda v=vec, a=vec_actions, n=envs: [v.step(a) for _ in range(args.domains // n)],
            args.calls,
            lambda p=pids: sum(_proc_cpu(pid) for pid in p),
        )
        vec.close()
        rows.append((f"AsyncVectorEnv, {envs} process(es)", wall, cpu))
    _report(rows, steps, args, load)


def _report(rows: list[tuple[str, float, float]], steps: int, args: Any, load: float) -> None:
    base = rows[0][1]
    print(f"{args.domains} domains per call x {args.calls} calls of CartPole-v1 with "
          f"{args.ms:g} ms CPU per step; load average before the run {load:.2f} "
          f"(2 cores, shared)")  # fmt: skip
    print("| configuration | domain steps/s | vs serial | CPU-s | wall-s |")
    print("|---|---:|---:|---:|---:|")
    for name, wall, cpu in rows:
        print(f"| {name} | {steps / wall:,.0f} | {base / wall:.2f}x | {cpu:.2f} | {wall:.2f} |")
    by: dict[str, list[float]] = {name.split(",")[0]: [] for name, _, _ in rows[1:]}
    for name, wall, _ in rows[1:]:
        by[name.split(",")[0]].append(wall)
    for name, (one, two) in by.items():
        print(f"{name}: 1 -> 2 workers speed-up {one / two:.2f}x, "
              f"scaling efficiency {one / two / 2:.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
