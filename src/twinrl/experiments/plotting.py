"""Matplotlib, imported lazily (it is the ``plot`` extra), and the shared curve-with-band plot."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray


def pyplot() -> Any | None:
    """``matplotlib.pyplot`` on the Agg backend, or None (with a warning naming the extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("figures need matplotlib: pip install 'twinrl[plot]'", stacklevel=3)
        return None
    return plt


def band(ax: Any, x: NDArray[Any], mean: NDArray[Any], half: NDArray[Any], label: str) -> None:
    """A mean curve with its 95% confidence band."""
    half = np.nan_to_num(np.asarray(half, dtype=np.float64))
    (line,) = ax.plot(x, mean, label=label)
    ax.fill_between(x, mean - half, mean + half, alpha=0.2, color=line.get_color())


def finish(plt: Any, fig: Any, ax: Any, path: Any, *, legend: str = "lower right") -> None:
    """Grid, legend, tight layout; save as PNG and free the figure."""
    ax.grid(alpha=0.3)
    ax.legend(loc=legend, fontsize=8)
    save(plt, fig, path)


def save(plt: Any, fig: Any, path: Any) -> None:
    """Tight layout, save as PNG and free the figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
