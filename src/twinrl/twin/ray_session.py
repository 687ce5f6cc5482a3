"""The optional Ray dependency: import it with a message naming the extra, and connect to a Ray
instance (a local one started here, or an existing cluster) for the Ray engine of
``twinrl reproduce`` and the Ray twin backend."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

from twinrl.errors import ConfigError, short_repr

RAY_MISSING = 'needs ray, which is not installed: from a twinrl checkout, pip install -e ".[ray]"'
"""The end of the message when Ray is used but not installed."""


def require_ray(what: str = "this") -> Any:
    """The ``ray`` module.

    Raises:
        ImportError: Ray is not installed; the message says ``what`` needs it and how to install.
    """
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"{what} {RAY_MISSING}") from exc
    return ray


@contextlib.contextmanager
def connected(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Connect to Ray for the duration of the block; yields the ``ray`` module.

    Already connected (e.g. the caller ran ``ray.init`` itself): that connection is used and left
    open. Else ``address`` names an existing cluster (``"auto"``: the one ``ray start`` runs on
    this machine; ``"HOST:PORT"``: its head node), or, with ``None``, a local instance with
    ``num_cpus`` CPUs is started; either is closed (a local instance stopped) on exit.

    Raises:
        ImportError: Ray is not installed.
        ConfigError: no Ray cluster answers at ``address``.
    """
    ray = require_ray("--engine ray" if address is None else f"--address {address}")
    if address is not None:
        _check_address(address)  # a dead address is refused even where a connection is reused
    if ray.is_initialized():
        yield ray
        return
    _init(ray, address, num_cpus)
    try:
        yield ray
    finally:
        ray.shutdown()


def ensure_connected() -> Any:
    """The ``ray`` module, connected: to the Ray instance already connected, else to a local
    instance started now with every CPU of this machine (stopped when Python exits)."""
    ray = require_ray("Ray")
    if not ray.is_initialized():
        _init(ray, None, None)
    return ray


def _init(ray: Any, address: str | None, num_cpus: int | None) -> None:
    """``ray.init`` quietly, keeping the caller's SIGTERM handler (see :func:`connected`).

    Raises:
        ConfigError: no Ray cluster answers at ``address``.
    """
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                               "logging_level": logging.WARNING}  # fmt: skip
    # ray.init replaces the SIGTERM handler with sys.exit; keep the caller's (twinrl's turns
    # SIGTERM into Interrupted, which keeps the finished runs and names them)
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        if address is None:
            ray.init(address="local", num_cpus=num_cpus, **options)  # never a running cluster
        else:
            ray.init(address=address, **options)
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        raise ConfigError(
            f"--address {short_repr(address)}: no Ray cluster could be reached there ({exc}); "
            "start one with 'ray start --head' and pass the address it prints, or leave out "
            "--address to start a local Ray instance"
        ) from exc
    finally:
        if threading.current_thread() is threading.main_thread() and sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)


def _check_address(address: str, timeout: float = 5.0) -> None:
    """Refuse within ``timeout`` seconds an address where nothing listens (``HOST:PORT`` or
    ``ray://HOST:PORT``): ``ray.init`` would retry it for ever. ``"auto"`` is left to Ray, which
    fails at once when no cluster runs on this machine.

    Raises:
        ConfigError: ``address`` is not ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``, or
            nothing accepts a connection there.
    """
    if address == "auto":
        return
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"--address {short_repr(address)} is not a Ray cluster address; pass 'auto' (the "
            "cluster 'ray start' runs on this machine) or HOST:PORT of its head node"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--address {short_repr(address)}: no Ray cluster could be reached there "
            f"({exc.strerror or exc}); start one with 'ray start --head' and pass the address "
            "it prints, or leave out --address to start a local Ray instance"
        ) from exc
