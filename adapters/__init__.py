"""Adapters that let ``lmn_core`` measure framework models.

Import the one you need, ``adapters.torch`` or ``adapters.keras`` (and for training
callbacks ``adapters.lightning`` or ``adapters.transformers``): each imports its framework
when imported itself, and this package imports none. ``adapters.schedule``, the monitors'
schedule, keys and CSV rows, imports no framework either.
"""

#: This project's mark, which ``reference_tasks.sweep.installation`` looks for: the import name
#: ``adapters`` is also AdapterHub's (docs/install.md).
__lmn_adapters__ = True
