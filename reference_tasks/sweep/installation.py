"""This project's place among installed packages: its distribution name and its ``adapters``.

The import package ``adapters`` shares its name with AdapterHub's ``adapters`` (a Hugging
Face library). In one environment the one found first hides the other, and installing both
mixes their files; :func:`require_own_adapters` says so at the start of ``lmn``, and
:func:`check_workers_have_own_adapters` for every Dask worker before a run starts, instead of
an import error deep in a run (docs/install.md).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from typing import Any

#: The name on the package index (pyproject.toml); the index's ``lmn`` is an unrelated package.
DISTRIBUTION = "linear-mapping-number"
#: The attribute by which ``adapters/__init__.py`` marks the package as this project's.
ADAPTERS_MARK = "__lmn_adapters__"


def adapters_problem() -> str | None:
    """``None`` if the ``adapters`` this process imports is this project's, else what is wrong.

    The answer names the distribution the package found belongs to, where it is, and what
    to do.
    """
    try:
        module = importlib.import_module("adapters")
    except Exception as error:  # another package's adapters may fail for its own reasons
        spec = importlib.util.find_spec("adapters")
        if spec is None:
            return f"no package 'adapters' is installed: install {DISTRIBUTION}"
        found, failure = spec.origin, f" (importing it failed: {type(error).__name__}: {error})"
    else:
        if getattr(module, ADAPTERS_MARK, False):
            return None
        found, failure = getattr(module, "__file__", None) or repr(module), ""
    owners = importlib.metadata.packages_distributions().get("adapters", [])
    owner = " and ".join(sorted(set(owners))) or "no installed distribution"
    return (
        f"the package 'adapters' found at {found} is not this project's{failure}: it belongs to {owner} "
        f"(AdapterHub's 'adapters' has the same import name). Install {DISTRIBUTION} into an environment "
        f"without it (python -m venv lmn-env; lmn-env/bin/pip install {DISTRIBUTION}) and keep AdapterHub "
        "in another; see docs/install.md"
    )


def require_own_adapters() -> None:
    """Check that the ``adapters`` this process imports is this project's.

    Raises
    ------
    ImportError
        If it is not, with :func:`adapters_problem`'s answer.
    """
    problem = adapters_problem()
    if problem is not None:
        raise ImportError(problem)


def check_workers_have_own_adapters(client: Any) -> None:
    """Raise ``ImportError`` naming every Dask worker whose ``adapters`` is not this project's."""
    answers = client.run(adapters_problem)
    wrong = {worker: problem for worker, problem in answers.items() if problem is not None}
    if wrong:
        raise ImportError(
            "; ".join(f"Dask worker {worker}: {problem}" for worker, problem in sorted(wrong.items()))
        )
