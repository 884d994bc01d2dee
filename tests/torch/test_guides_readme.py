"""The guides' code blocks (docs/guides/*.md) that need the torch environment (tests/readme_blocks.py)."""

from readme_blocks import block_test, guide_blocks

test_guide_block = block_test("torch", guide_blocks())
