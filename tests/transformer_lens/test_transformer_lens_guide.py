"""The docs' code blocks that need the transformer-lens environment (tests/readme_blocks.py)."""

from readme_blocks import block_test

test_doc_block = block_test("transformer-lens")
