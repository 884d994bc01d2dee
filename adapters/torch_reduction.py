"""Reduce blocks of pairs to their ``L`` values with torch ops, where a module's outputs are.

:class:`TorchPairReduction` is the :class:`lmn_core.PairReduction` of
:class:`adapters.torch.TorchFunction`: the samples and ``f(X)`` go to the module's device
once per measurement; each block of pairs then stays there, from the interpolated
points through the module to the r² sums, and only one ``L`` value per pair comes back.
It applies the policies of :class:`lmn_core.ReductionTask` (the core's): the sums run
over the outputs shifted by ``f(x_i)``, in float64, and the constant test compares the
same float64 quantities as :func:`lmn_core.kernels.reduce_to_connectivity`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

import lmn_core
from lmn_core.validation import pairs_named


def _float64(values: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(device)


class TorchPairReduction:
    """The pairs of one measurement, reduced on ``samples``' device.

    Parameters
    ----------
    run : callable
        The module on a batch tensor ``(M, *s)`` on the device, returning ``(M, ...)``
        (in eval mode, without gradients).
    samples : torch.Tensor
        ``X`` ``(N, *s)`` on the device, in the dtype the module takes.
    task : lmn_core.ReductionTask
        The measurement's λ grid, ``f(X)`` and tolerance.
    """

    def __init__(
        self, run: Callable[[torch.Tensor], torch.Tensor], samples: torch.Tensor, task: lmn_core.ReductionTask
    ) -> None:
        device = samples.device
        self.run = run
        self.samples = samples
        self.endpoints = _float64(task.endpoint_outputs, device)
        self.output_scales = _float64(task.output_scales, device)
        self.weights = _float64(task.interior_lambdas, device).to(samples.dtype)[:, None]
        centered = task.centered_lambdas
        # Σ_t d_t and Σ_t c_t d_t over the interior points, as one batched matrix product
        self.moments = _float64(np.stack([np.ones(task.n_points - 2), centered[1:-1]], axis=1), device)
        self.centered_end = float(centered[-1])
        self.lambda_spread = task.lambda_spread
        self.n_points = task.n_points
        self.const_rtol, self.const_atol = task.const_rtol, task.const_atol

    def __call__(self, pair_i: np.ndarray, pair_j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``L_ij`` and the non-finite flags of the pairs ``(pair_i[p], pair_j[p])``."""
        pairs = torch.from_numpy(np.stack([pair_i, pair_j])).to(self.samples.device)
        start, end = self.samples[pairs[0]], self.samples[pairs[1]]
        n_pairs, n_interior = pairs.shape[1], self.weights.shape[0]
        shape = (n_pairs, 1, *start.shape[1:])
        weights = self.weights.reshape(1, n_interior, *([1] * (start.dim() - 1)))
        points = torch.lerp(start.reshape(shape), end.reshape(shape), weights)
        outputs = self.run(points.reshape(n_pairs * n_interior, *start.shape[1:]))
        n_outputs = self.endpoints.shape[1]
        if outputs.shape[0] != n_pairs * n_interior or outputs[0].numel() != n_outputs:
            raise ValueError(
                f"the module returned shape {tuple(outputs.shape)} for the {n_pairs * n_interior} interior "
                f"points of {pairs_named(pair_i, pair_j)}, but {n_outputs} output dimensions for f(X)"
            )
        values, non_finite = self._reduce(outputs.reshape(n_pairs, n_interior, n_outputs), pairs)
        return values.cpu().numpy(), non_finite.cpu().numpy()

    def _reduce(self, interior: torch.Tensor, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``L`` and the non-finite flags from the interior outputs ``(P, T - 2, d2)``."""
        origin = self.endpoints[pairs[0]]
        to_end = self.endpoints[pairs[1]] - origin
        shifted = interior - origin[:, None]  # float64
        moments = shifted.transpose(1, 2) @ self.moments
        sum_d = moments[..., 0] + to_end
        sum_cd = moments[..., 1] + self.centered_end * to_end
        sum_dd = (shifted * shifted).sum(dim=1) + to_end * to_end
        # rounding is monotone, so min(y) - y_0 is exactly min(y - y_0), as the core computes it
        zero = torch.zeros_like(to_end)
        low = torch.minimum(interior.amin(dim=1).to(torch.float64) - origin, torch.minimum(to_end, zero))
        high = torch.maximum(interior.amax(dim=1).to(torch.float64) - origin, torch.maximum(to_end, zero))
        syy = sum_dd - sum_d * sum_d / self.n_points
        scale = torch.maximum(self.output_scales, origin.abs() + torch.maximum(-low, high))
        constant = high - low <= self.const_rtol * scale + self.const_atol
        r_squared = torch.clamp(sum_cd * sum_cd / (self.lambda_spread * syy), max=1.0)
        values = torch.where(constant, torch.ones_like(r_squared), r_squared).mean(dim=1)
        non_finite = ~(torch.isfinite(syy) & torch.isfinite(sum_cd)).all(dim=1)
        return values, non_finite
