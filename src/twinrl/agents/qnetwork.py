"""The factorized (branching) Q-network of :class:`~twinrl.agents.dqn.DQN`; torch extra.

One shared MLP torso and one linear head per action branch (one per UAV for
``MultiDiscrete([5] * M)``; one for ``Discrete(n)``), all branch heads held in one output layer
of ``branches x actions`` units (action branching, Tavakoli et al., AAAI 2018).

Torch is imported only by :func:`import_torch`, called when a DQN is built, so importing this
module (and ``twinrl.agents``) does not need it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

if TYPE_CHECKING:
    import torch

TORCH_MISSING = "DQN needs torch: pip install 'twinrl[torch]'"


def import_torch() -> Any:
    try:
        import torch
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(TORCH_MISSING) from err
    return torch


def action_branches(space: gym.Space[Any]) -> tuple[int, int, bool]:
    """(branches, actions per branch, is Discrete) of a Discrete or MultiDiscrete space."""
    if isinstance(space, gym.spaces.Discrete):
        if int(space.start) != 0:
            raise ValueError(f"Discrete action spaces must start at 0, got start={space.start}")
        return 1, int(space.n), True
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec)
        if nvec.ndim != 1 or nvec.size == 0 or not (nvec == nvec[0]).all():
            raise ValueError(
                f"the factorized Q-head needs a 1-D MultiDiscrete with equal sizes, got nvec={nvec}"
            )
        if np.any(np.asarray(space.start) != 0):
            raise ValueError("MultiDiscrete action spaces must start at 0")
        return int(nvec.size), int(nvec[0]), False
    raise TypeError(f"DQN needs a Discrete or MultiDiscrete action space, got {space}")


def build_network(
    torch: Any,
    obs_size: int,
    hidden: tuple[int, ...],
    n_outputs: int,
    init: np.random.Generator | None,
    *,
    dueling_branches: int = 0,
) -> torch.nn.Module:
    """Torso MLP of widths ``hidden`` (ReLU after each layer), then one linear layer of
    ``n_outputs`` units holding all branch heads; weights drawn from ``init`` with torch's default
    bounds ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (``None`` keeps torch's own initialisation).

    With ``dueling_branches`` B > 0 the head is a dueling one (Wang et al., ICML 2016) per branch:
    a value unit ``V(s)`` and advantages ``A_b(s, a)``, combined as
    ``Q_b(s, a) = V(s) + A_b(s, a) - mean_a A_b(s, a)`` (the ``n_outputs`` outputs are B branches
    of ``n_outputs / B`` actions)."""
    nn = torch.nn
    layers: list[Any] = []
    width = obs_size
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    net: Any
    if dueling_branches:
        net = _dueling(nn, nn.Sequential(*layers), width, dueling_branches, n_outputs)
    else:
        layers.append(nn.Linear(width, n_outputs))
        net = nn.Sequential(*layers)
    if init is not None:
        with torch.no_grad():
            for layer in net.modules():
                if isinstance(layer, nn.Linear):
                    bound = 1.0 / math.sqrt(layer.in_features)
                    for p in (layer.weight, layer.bias):
                        drawn = init.uniform(-bound, bound, size=tuple(p.shape))
                        p.copy_(torch.from_numpy(drawn.astype(np.float32)))
    return net


def _dueling(nn: Any, torso: Any, width: int, branches: int, n_outputs: int) -> Any:
    """The torso with a dueling head of ``branches`` branches (see :func:`build_network`)."""

    class DuelingQ(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.torso = torso
            self.value = nn.Linear(width, 1)
            self.advantage = nn.Linear(width, n_outputs)

        def forward(self, x: Any) -> Any:
            h = self.torso(x)
            a = self.advantage(h).view(h.shape[0], branches, -1)
            q = self.value(h)[:, :, None] + a - a.mean(dim=-1, keepdim=True)
            return q.reshape(h.shape[0], n_outputs)

    return DuelingQ()
