"""Spatial regularisation of a proposal: a small Gaussian smoothing of the class probabilities.

Each pixel's probabilities are averaged with its neighbours' (normalised convolution, so
pixels without data neither contribute nor receive a class), then the most probable
class is taken again. This removes isolated misclassified pixels along edges; the
benchmark (``benchmarks/bench_assist.py``, docs/performance.md) measures its effect.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from napari_domainseg.ops.assist.classifier import AssistError, Proposal


def smooth_probabilities(
    proposal: Proposal, sigma: float, spacing: Sequence[float], spatial_dims: int | None = None
) -> Proposal:
    """A new proposal from probabilities smoothed with a Gaussian of ``sigma`` (physical units).

    Parameters
    ----------
    proposal
        A proposal predicted with ``probabilities=True``.
    sigma
        Standard deviation of the smoothing, in the unit of ``spacing``.
    spacing
        Physical step along each spatial axis of the proposal.
    spatial_dims
        Smooth only the last ``spatial_dims`` axes (2: within each slice); default all.
    """
    if proposal.probabilities is None:
        raise AssistError("smoothing needs the probabilities: predict with probabilities=True")
    ndim = proposal.labels.ndim
    spatial_dims = spatial_dims or ndim
    sigmas = [sigma / s if a >= ndim - spatial_dims else 0.0 for a, s in enumerate(spacing)]
    valid = proposal.valid.astype(np.float32)
    weight = ndimage.gaussian_filter(valid, sigmas, mode="nearest")
    weight = np.where(weight > 0, weight, 1.0)
    smoothed = np.stack(
        [ndimage.gaussian_filter(p * valid, sigmas, mode="nearest") / weight for p in proposal.probabilities]
    ).astype(np.float32)
    smoothed[:, ~proposal.valid] = 0.0
    labels = np.zeros_like(proposal.labels)
    best = np.argmax(smoothed, axis=0)
    labels[proposal.valid] = np.asarray(proposal.classes, dtype=labels.dtype)[best[proposal.valid]]
    uncertainty = np.zeros_like(proposal.uncertainty)
    if len(proposal.classes) > 1:
        top2 = np.sort(smoothed, axis=0)[-2:]
        uncertainty = np.where(proposal.valid, 1.0 - (top2[1] - top2[0]), 0.0).astype(np.float32)
    return Proposal(
        proposal.region, proposal.classes, labels, uncertainty, proposal.valid, smoothed
    )
