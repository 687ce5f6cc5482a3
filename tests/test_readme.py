"""The README's Python code blocks run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README should show library usage"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_gives_the_two_setup_commands() -> None:
    text = README.read_text()
    assert "twinrl reproduce table1 table2 --preset quick" in text
    assert 'pip install -e ".[dev]" && pytest -q' in text
