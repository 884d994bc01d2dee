"""Adapters that let ``lmn_core`` measure framework models.

Import the one you need, ``adapters.torch`` or ``adapters.keras``: each imports its
framework when imported itself, and this package imports none.
"""
