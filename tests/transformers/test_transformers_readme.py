"""README.md's code blocks that need the transformers environment (tests/readme_blocks.py)."""

from readme_blocks import block_test

test_readme_block = block_test("transformers")
