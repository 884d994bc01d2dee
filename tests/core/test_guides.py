"""The guides in docs/guides/: every code block says where it runs (tests/readme_blocks.py)."""

import readme_setup
from readme_blocks import ENVIRONMENTS, GUIDES, guide_blocks


def test_every_guide_block_says_where_it_runs():
    blocks = guide_blocks()
    assert (GUIDES / "your-own-experiment.md").exists() and blocks
    for block in blocks:
        assert block.env in ENVIRONMENTS, (
            f"{block.name} has no <!-- test: env=... --> line (or an unknown env)"
        )
        assert block.env != "never" or block.options.get("why"), f"{block.name} never runs: say why"
        assert "setup" not in block.options or hasattr(readme_setup, block.options["setup"]), block.name
        block.small_code()  # every replacement is found
