"""Adapters that let ``lmn_core`` measure framework models.

Import the one you need: ``adapters.torch`` or ``adapters.keras`` (a backend each, in a
subpackage whose ``__init__`` is its public face), and for training callbacks and other
tools on PyTorch ``adapters.lightning``, ``adapters.transformers`` or
``adapters.transformer_lens``. Each imports its framework when imported itself, and this
package imports none. The framework-free parts sit beside them: ``adapters.layer`` (the
measurement at a layer, written once over a backend; docs/design.md, section 3.6),
``adapters.schedule`` (the monitors' schedule, keys and CSV rows), ``adapters.options``
and ``adapters.refusals``.
"""

#: This project's mark, which ``reference_tasks.sweep.installation`` looks for: the import name
#: ``adapters`` is also AdapterHub's (docs/install.md).
__lmn_adapters__ = True
