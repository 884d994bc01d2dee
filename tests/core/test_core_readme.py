"""README.md: every code block says where it runs (tests/readme_blocks.py); the core's blocks run here."""

import readme_setup
from readme_blocks import ENVIRONMENTS, block_test, readme_blocks

test_readme_block = block_test("core")


def test_every_code_block_says_where_it_runs():
    blocks = readme_blocks()
    assert len(blocks) >= 15
    for block in blocks:
        assert block.env in ENVIRONMENTS, (
            f"{block.name} has no <!-- test: env=... --> line (or an unknown env)"
        )
        assert block.env != "never" or block.options.get("why"), f"{block.name} never runs: say why"
        assert "setup" not in block.options or hasattr(readme_setup, block.options["setup"]), block.name
        block.small_code()  # every replacement is found
    never = [block.name for block in blocks if block.env == "never"]
    assert len(never) == 3, f"blocks that nothing runs: {never}"  # tox itself, SLURM, a GPU
