"""The README's and the docs' Python code blocks run as written."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def _blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_python_blocks_run() -> None:
    blocks = _blocks(README)
    assert blocks, "the README should show library usage"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_docs_python_blocks_run(path: Path, request: pytest.FixtureRequest) -> None:
    for block in _blocks(path):
        needs = re.match(r"# needs: (\w+)", block)
        if needs and importlib.util.find_spec(needs[1]) is None:
            continue  # the block uses an extra (torch, ray) that is not installed
        if needs and needs[1] == "ray":
            request.getfixturevalue("ray_instance")  # the session's one local Ray instance
        exec(compile(block, str(path), "exec"), {})


def test_docs_links_resolve() -> None:
    for path in [README, *DOCS]:
        for target in re.findall(r"\]\(([^)#:]+)\)", path.read_text()):
            assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


def test_readme_gives_the_two_setup_commands() -> None:
    text = README.read_text()
    assert "twinrl reproduce --preset quick" in text
    assert 'pip install -e ".[dev]" && pytest -q' in text
