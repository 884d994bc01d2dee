"""The linear mapping number (LMN): how non-linear a function is on a set of samples.

``lmn_core`` needs only NumPy, Numba and ``array-api-compat``; it never imports a
deep-learning framework. A framework's arrays reach it through the array API, from an
adapter's :class:`DevicePlan`.
"""

#: The version of the distribution ``linear-mapping-number`` (this package, ``adapters`` and
#: ``reference_tasks``): its one home, which the build reads (pyproject.toml) and ``lmn
#: --version`` prints. Each release adds its section to CHANGELOG.md.
__version__ = "0.1.0"

from lmn_core.measure import LMNResult, connectivity_matrix, lmn
from lmn_core.memory import keep_freed_memory
from lmn_core.protocol import DeviceFunction, DevicePlan, ReductionTask, default_const_rtol
from lmn_core.pwl_head import Affine, Hinge, PiecewiseLinearHead
from lmn_core.regions import RegionSummary, linear_regions, segment_pieces
from lmn_core.spectral import Spectrum, lmn_from_connectivity, nonlinear_complexity, spectrum
from lmn_core.validation import FunctionError

__all__ = [
    "Affine",
    "DeviceFunction",
    "DevicePlan",
    "FunctionError",
    "Hinge",
    "LMNResult",
    "PiecewiseLinearHead",
    "ReductionTask",
    "RegionSummary",
    "Spectrum",
    "__version__",
    "connectivity_matrix",
    "default_const_rtol",
    "keep_freed_memory",
    "linear_regions",
    "lmn",
    "lmn_from_connectivity",
    "nonlinear_complexity",
    "segment_pieces",
    "spectrum",
]
