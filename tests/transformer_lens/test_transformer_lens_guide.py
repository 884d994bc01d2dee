"""The code blocks of docs/guides/transformer-lens.md, run as the README's are (tests/readme_blocks.py)."""

from pathlib import Path

import pytest
from readme_blocks import _BLOCK, Block, _options, run_block

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "transformer-lens.md"


def guide_blocks() -> list[Block]:
    text = GUIDE.read_text()
    blocks = [
        Block(
            text[: match.start("lang")].count("\n") + 1,
            match["lang"],
            match["code"],
            _options(match["directive"]),
        )
        for match in _BLOCK.finditer(text)
    ]
    return [block for block in blocks if block.env == "transformer-lens"]


NAMESPACES: dict = {}


@pytest.mark.parametrize("block", guide_blocks(), ids=lambda block: f"transformer-lens.md:{block.line}")
def test_guide_block(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_block(block, tmp_path, NAMESPACES)
