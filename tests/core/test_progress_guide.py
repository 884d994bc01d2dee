"""docs/guides/progress-measures.md: its code blocks run, with the README harness's annotations."""

from pathlib import Path

import pytest
from readme_blocks import _BLOCK, Block, _options, run_block

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "progress-measures.md"


class GuideBlock(Block):
    @property
    def name(self) -> str:
        return f"{GUIDE.name}:{self.line}"


def guide_blocks() -> list[GuideBlock]:
    text = GUIDE.read_text()
    return [
        GuideBlock(
            text[: match.start("lang")].count("\n") + 1,
            match["lang"],
            match["code"],
            _options(match["directive"]),
        )
        for match in _BLOCK.finditer(text)
    ]


def test_every_block_of_the_guide_runs_in_core():
    blocks = guide_blocks()
    assert len(blocks) == 3 and all(block.env == "core" for block in blocks)


_namespaces: dict = {}


@pytest.fixture(scope="module")
def guide_folder(tmp_path_factory):
    """One folder for the guide's blocks, which run in order and share their namespaces."""
    return tmp_path_factory.mktemp("guide")


@pytest.mark.parametrize("block", guide_blocks(), ids=lambda block: block.name)
def test_guide_block(block, guide_folder, monkeypatch):
    monkeypatch.chdir(guide_folder)
    run_block(block, guide_folder, _namespaces)
