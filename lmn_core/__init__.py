"""The linear mapping number (LMN): how non-linear a function is on a set of samples.

``lmn_core`` needs only NumPy, Numba and ``array-api-compat``; it never imports a
deep-learning framework. A framework's arrays reach it through the array API, from an
adapter's :class:`DevicePlan`.
"""

#: The version of the distribution ``linear-mapping-number`` (this package, ``adapters`` and
#: ``reference_tasks``): its one home, which the build reads (pyproject.toml) and ``lmn
#: --version`` prints. Each release adds its section to CHANGELOG.md.
__version__ = "0.1.0"

from lmn_core.fourier import excluded_loss, fourier_norm_share, restricted_loss, top_frequencies
from lmn_core.local_boundaries import local_complexity
from lmn_core.measure import LMNResult, connectivity_matrix, lmn
from lmn_core.measure_registry import available_measures, resolve_measure, select_measures
from lmn_core.memory import keep_freed_memory
from lmn_core.parameters import l2, weight_movement
from lmn_core.parity import FourierGap, fourier_gap
from lmn_core.progress import Measure, MeasureError, MeasureInputs, compute_measure, progress_measure
from lmn_core.progress_builtin import BUILTIN_MEASURES
from lmn_core.protocol import DeviceFunction, DevicePlan, ReductionTask, default_const_rtol
from lmn_core.pwl_head import Affine, Hinge, PiecewiseLinearHead
from lmn_core.rankme import effective_rank
from lmn_core.regions import RegionSummary, linear_regions, segment_pieces
from lmn_core.spectral import Spectrum, lmn_from_connectivity, nonlinear_complexity, spectrum
from lmn_core.validation import FunctionError

__all__ = [
    "BUILTIN_MEASURES",
    "Affine",
    "DeviceFunction",
    "DevicePlan",
    "FourierGap",
    "FunctionError",
    "Hinge",
    "LMNResult",
    "Measure",
    "MeasureError",
    "MeasureInputs",
    "PiecewiseLinearHead",
    "ReductionTask",
    "RegionSummary",
    "Spectrum",
    "__version__",
    "available_measures",
    "compute_measure",
    "connectivity_matrix",
    "default_const_rtol",
    "effective_rank",
    "excluded_loss",
    "fourier_gap",
    "fourier_norm_share",
    "keep_freed_memory",
    "l2",
    "linear_regions",
    "lmn",
    "lmn_from_connectivity",
    "local_complexity",
    "nonlinear_complexity",
    "progress_measure",
    "resolve_measure",
    "restricted_loss",
    "segment_pieces",
    "select_measures",
    "spectrum",
    "top_frequencies",
    "weight_movement",
]
