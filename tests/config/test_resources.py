"""twinrl.resources: estimates and the memory check refuse oversize requests before allocating."""

from __future__ import annotations

import pytest

from twinrl import resources
from twinrl.errors import ResourceError


def test_available_memory_is_positive() -> None:
    assert resources.available_memory() > 0


def test_check_memory_names_sizes_and_the_knob() -> None:
    need = resources.history_bytes(10**12, 3)
    with pytest.raises(ResourceError) as info:
        resources.check_memory(need, "the training history", "budget", available=20 * 2**30)
    text = str(info.value)
    assert "21.8 TiB" in text and "20.0 GiB" in text and "reduce budget" in text
    resources.check_memory(2**30, "one GiB", "nothing", available=20 * 2**30)


def test_estimates_use_python_integers_and_never_overflow() -> None:
    assert resources.qtable_bytes(2**62, 2**62) == 2**124 * 8
    assert resources.twin_agents_bytes(500, 8 * 3_628_800) == (2 * 500 + 6) * 8 * 3_628_800
    assert resources.replay_bytes(10, 4, n_domains=2) == 2 * 10 * (32 + 8 + 48)
    with pytest.raises(ResourceError):
        resources.check_memory(resources.qtable_bytes(2**62, 2**62), "a table", "its size")


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (116 * 2**30, "116.0 GiB")],
)
def test_format_bytes(nbytes: int, text: str) -> None:
    assert resources.format_bytes(nbytes) == text
