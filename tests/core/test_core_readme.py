"""README.md and the pages under docs/: every code block says where it runs and every fence
closes (tests/readme_blocks.py); the core's blocks run here."""

import readme_setup
from readme_blocks import ENVIRONMENTS, ROOT, block_test, doc_blocks, documents, fence_errors

test_readme_block = block_test("core")


def test_every_code_block_says_where_it_runs():
    blocks = doc_blocks()
    assert len(blocks) >= 15
    assert {block.page for block in blocks} >= {"README.md", "docs/getting-started.md"}
    for block in blocks:
        assert block.env in ENVIRONMENTS, (
            f"{block.name} has no <!-- test: env=... --> line (or an unknown env)"
        )
        assert block.env != "never" or block.options.get("why"), f"{block.name} never runs: say why"
        assert "setup" not in block.options or hasattr(readme_setup, block.options["setup"]), block.name
        block.small_code()  # every replacement is found
    never = [block.name for block in blocks if block.env == "never"]
    # tox itself (README.md), a GPU (guides/gpus.md), several machines and SLURM (guides/clusters.md)
    assert len(never) <= 8, f"blocks that nothing runs: {never}"


def test_every_fence_closes():
    errors = [
        error
        for path in documents()
        for error in fence_errors(path.read_text(), path.relative_to(ROOT).as_posix())
    ]
    assert not errors, "\n".join(errors)


def test_a_fence_with_text_after_it_is_refused():
    # the Speed section's old line: the fence cannot close, so code and prose swap after it
    broken = "Run:\n\n```text\n1.68x\n``` The kernels walk tiles of 16 pairs\n\nMore prose.\n"
    assert fence_errors(broken, "page.md") == [
        "page.md:5: '``` The kernels walk tiles of 16 pairs' cannot close the block opened at "
        "line 3: a closing fence stands alone on its line",
        "page.md:3: the block opened here is never closed",
    ]


def test_a_fence_left_open_is_refused():
    assert fence_errors("```python\nprint(1)\n", "page.md") == [
        "page.md:1: the block opened here is never closed"
    ]
    assert fence_errors("````text\n```\ninside\n", "page.md") == [
        "page.md:1: the block opened here is never closed"
    ]


def test_a_block_the_tests_would_not_run_is_refused():
    assert fence_errors("```sh\nlmn reproduce\n```\n", "page.md") == [
        "page.md:1: a ```sh block is neither run (bash, python) nor output "
        "(text, bibtex, toml, or no language): the docs tests would not see its code"
    ]


def test_closed_fences_pass():
    page = "```python\nx = 1\n```\n\n  ```bash\n  lmn report runs\n  ```\n\n````text\n```\n````\n``a`` b\n"
    assert fence_errors(page, "page.md") == []
