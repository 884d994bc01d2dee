"""The linear mapping number (LMN): how non-linear a function is on a set of samples.

``lmn_core`` needs only NumPy and Numba; it never imports a deep-learning framework.
"""

from lmn_core.measure import LMNResult, connectivity_matrix, lmn
from lmn_core.protocol import PairReduction, ReducingFunction, ReductionTask
from lmn_core.pwl_head import Affine, Hinge, PiecewiseLinearHead
from lmn_core.regions import RegionSummary, linear_regions, segment_pieces
from lmn_core.spectral import Spectrum, lmn_from_connectivity, nonlinear_complexity, spectrum

__all__ = [
    "Affine",
    "Hinge",
    "LMNResult",
    "PairReduction",
    "PiecewiseLinearHead",
    "ReducingFunction",
    "ReductionTask",
    "RegionSummary",
    "Spectrum",
    "connectivity_matrix",
    "linear_regions",
    "lmn",
    "lmn_from_connectivity",
    "nonlinear_complexity",
    "segment_pieces",
    "spectrum",
]
