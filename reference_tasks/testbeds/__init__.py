"""Grokking testbeds from the paper's references, each in PyTorch and Keras (docs/design.md, section 2.7).

- ``data``: the datasets as NumPy arrays (framework-free);
- ``torch_models`` and ``keras_models``: the models, whose probes are cut points of the adapters;
- ``experiments``: the tasks registered in the entry-point group ``lmn.experiments``
  (``transformer``, ``transformer_nanda``, ``parity``, ``digits``).

docs/guides/testbeds.md gives the recipes, their deviations from the sources and the runs
that chose them.
"""
