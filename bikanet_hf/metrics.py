"""Quality metrics exactly as ``shared/PROTOCOL.md`` defines them.

All image metrics take the restored 8-bit RGB image (``H×W×3`` uint8, full frame, no border crop); report the
mean over images, always next to the blurred input's own score.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity


def _check_pair(gt: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gt, out = np.asarray(gt), np.asarray(out)
    if gt.shape != out.shape:
        raise ValueError(f"Images must have the same shape, got {gt.shape} and {out.shape}.")
    if gt.dtype != np.uint8 or out.dtype != np.uint8:
        raise ValueError("Metrics are defined on 8-bit images: quantise with clip(round(x), 0, 255) first.")
    return gt, out


def psnr(gt: np.ndarray, out: np.ndarray) -> float:
    """``10·log10(255² / MSE)`` with the MSE over all pixels and channels of one image (inf when identical)."""
    gt, out = _check_pair(gt, out)
    mse = np.mean((gt.astype(np.float64) - out.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def aligned_psnr(gt: np.ndarray, out: np.ndarray, max_shift: int = 6) -> float:
    """PSNR after the best integer shift of ``out`` (up to ``max_shift`` px each way), on the frame less a
    ``max_shift`` border — not the protocol's PSNR, but the usual score for *blind* camera-shake deblurring (as in
    Levin et al., CVPR 2009): a blurred image does not say where its kernel sits, so a blind result may be shifted
    by a few pixels, which full-frame PSNR punishes as if it were blur."""
    gt, out = _check_pair(gt, out)
    m = max_shift
    height, width = gt.shape[:2]
    if min(height, width) <= 4 * m:
        raise ValueError(f"Images of {width}×{height} are too small to align with shifts of up to {m} px.")
    reference = gt[m : height - m, m : width - m].astype(np.float64)
    best = min(
        np.mean((out[m + dy : height - m + dy, m + dx : width - m + dx].astype(np.float64) - reference) ** 2)
        for dy in range(-m, m + 1)
        for dx in range(-m, m + 1)
    )
    return float("inf") if best == 0 else float(10.0 * np.log10(255.0**2 / best))


def ssim(gt: np.ndarray, out: np.ndarray) -> float:
    """SSIM with the protocol's settings (Gaussian weights σ = 1.5, population covariance, data range 255)."""
    gt, out = _check_pair(gt, out)
    return float(
        structural_similarity(
            gt,
            out,
            channel_axis=-1 if gt.ndim == 3 else None,
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def kernel_l1(estimate: np.ndarray, truth: np.ndarray) -> float:
    """``Σ |k̂ − k|`` with both kernels normalised to sum 1 (0 = exact, 2 = disjoint).

    Kernels of different odd sizes are compared after centring both in the larger frame.
    """
    from .kernels import pad_kernel

    a, b = np.asarray(estimate, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    size = max(*a.shape, *b.shape)
    a, b = pad_kernel(a, size), pad_kernel(b, size)
    return float(np.abs(a / a.sum() - b / b.sum()).sum())
