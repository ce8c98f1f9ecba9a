"""Blind camera-shake kernels by edge prediction: the path of a shake, not just its length and direction.

After Cho & Lee ("Fast motion deblurring", SIGGRAPH Asia 2009) and Xu & Jia ("Two-phase kernel estimation for robust
motion deblurring", ECCV 2010), reimplemented from the papers' descriptions. Coarse to fine over an image pyramid
(the kernel frame grows by √2 per level), each level alternates:

1. *prediction* — the current latent image is smoothed and sharpened with a shock filter, so that its strong edges
   become steps; only gradients of wide, strong edges are kept (Xu & Jia's usefulness measure ``r`` removes thin
   structures, narrower than the blur, which mislead the kernel; then the strongest gradients, as many as
   ``2·√(N_image·N_kernel)`` as in Cho & Lee, growing by 10% per round);
2. *kernel* — least squares between the predicted and the blurred gradients with a Tikhonov term, in closed form
   with FFTs; negative and small taps are cut, and the kernel is normalised;
3. *latent image* — deconvolution of the blurred image with that kernel under a quadratic gradient prior (closed
   form with FFTs), the starting point of the next prediction.

The final kernel is centred on its centre of mass (the protocol's convention) in a ``kernel_size`` frame.
Works on the luminance; numpy and scipy only.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .kernels import delta_kernel

LUMA = np.array([0.299, 0.587, 0.114])
COARSEST_KERNEL = 5  # kernel frame (pixels) at the pyramid's coarsest level


def _otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Transfer function of a (true convolution) kernel for circular convolution on ``shape``."""
    padded = np.zeros(shape)
    kh, kw = kernel.shape
    padded[:kh, :kw] = kernel
    return np.fft.fft2(np.roll(padded, (-(kh // 2), -(kw // 2)), axis=(0, 1)))


def _gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences (circular), the same operator for the predicted and the blurred image."""
    return np.roll(image, -1, axis=1) - image, np.roll(image, -1, axis=0) - image


def _shock_filter(image: np.ndarray, iterations: int = 2, step: float = 0.5) -> np.ndarray:
    """Osher–Rudin shock filter ``I ← I − step·sign(ΔI)·|∇I|``: blurred edges become steps."""
    for _ in range(iterations):
        gy, gx = np.gradient(image)
        image = image - step * np.sign(ndimage.laplace(image)) * np.hypot(gx, gy)
    return image


def _usefulness(blurred: np.ndarray, window: int) -> np.ndarray:
    """Xu & Jia's ``r = |Σ∇B| / (Σ|∇B| + 0.5)`` over ``window``² neighbourhoods: near 1 at a wide step edge, small on
    thin lines and fine texture, whose gradients cancel."""
    gx, gy = np.gradient(blurred)[::-1]
    sx = ndimage.uniform_filter(gx, window) * window * window
    sy = ndimage.uniform_filter(gy, window) * window * window
    total = ndimage.uniform_filter(np.hypot(gx, gy), window) * window * window
    return np.hypot(sx, sy) / (total + 0.5)


def _edge_mask(predicted: np.ndarray, usefulness: np.ndarray, kernel_size: int, border: int, grow: float):
    """Pixels whose predicted gradient is used for the kernel: useful (``r`` in its top half), away from the
    border, and the strongest ``grow·k·√N`` of those (N pixels, k the kernel frame)."""
    gx, gy = _gradients(predicted)
    magnitude = np.hypot(gx, gy)
    allowed = usefulness >= np.median(usefulness)
    allowed[:border] = allowed[-border:] = False
    allowed[:, :border] = allowed[:, -border:] = False
    count = int(min(grow * kernel_size * math.sqrt(magnitude.size), 0.5 * allowed.sum()))
    if count < 1:
        return np.zeros_like(allowed)
    threshold = np.partition(magnitude[allowed], -count)[-count]
    return allowed & (magnitude >= threshold)


def _kernel_from_edges(
    predicted: np.ndarray, blurred: np.ndarray, mask: np.ndarray, size: int, regularisation: float
) -> np.ndarray:
    """argmin_k Σ_d |k ⊛ ∂_d P − ∂_d B|² (on the masked edges) + β|k|², cropped to ``size``, cut and normalised."""
    px, py = (g * mask for g in _gradients(predicted))
    bx, by = _gradients(blurred)  # only lags within the kernel frame are kept: B away from the edges plays no part
    fpx, fpy, fbx, fby = (np.fft.fft2(g) for g in (px, py, bx, by))
    power = np.abs(fpx) ** 2 + np.abs(fpy) ** 2
    if power.mean() == 0:  # the predicted image is flat on the chosen pixels: no evidence of any blur
        return delta_kernel(size)
    spectrum = (np.conj(fpx) * fbx + np.conj(fpy) * fby) / (power + regularisation * power.mean())
    kernel = np.fft.fftshift(np.real(np.fft.ifft2(spectrum)))
    ch, cw = kernel.shape[0] // 2, kernel.shape[1] // 2
    r = size // 2
    kernel = kernel[ch - r : ch + r + 1, cw - r : cw + r + 1].clip(0, None)
    return _clean(kernel)


def _clean(kernel: np.ndarray, cut: float = 0.05) -> np.ndarray:
    """Taps under ``cut`` of the largest set to zero, and only the connected part holding the largest tap kept
    (a shake is one path); normalised to sum 1 (a centred impulse if nothing is left)."""
    kernel = np.where(kernel >= cut * kernel.max(), kernel, 0.0) if kernel.max() > 0 else kernel
    labels, _ = ndimage.label(kernel > 0, structure=np.ones((3, 3)))
    if labels.max() > 1:
        kernel = np.where(labels == labels.flat[np.argmax(kernel)], kernel, 0.0)
    total = kernel.sum()
    return kernel / total if total > 0 else delta_kernel(kernel.shape[0])


def _deconvolve(blurred: np.ndarray, kernel: np.ndarray, weight: float) -> np.ndarray:
    """argmin_L |k ⊛ L − B|² + w|∇L|², with B mirror-extended so the FFT sees no seam."""
    h, w = blurred.shape
    extended = np.pad(blurred, ((0, h), (0, w)), mode="symmetric")
    shape = extended.shape
    dx, dy = _otf(np.array([[0.0, -1.0, 1.0]]), shape), _otf(np.array([[0.0], [-1.0], [1.0]]), shape)
    k = _otf(kernel, shape)
    denominator = np.abs(k) ** 2 + weight * (np.abs(dx) ** 2 + np.abs(dy) ** 2)
    latent = np.real(np.fft.ifft2(np.conj(k) * np.fft.fft2(extended) / denominator))
    return latent[:h, :w]


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Area-like resize: Gaussian pre-blur when shrinking, then linear interpolation."""
    factors = (shape[0] / image.shape[0], shape[1] / image.shape[1])
    if min(factors) < 1:
        image = ndimage.gaussian_filter(image, [0.5 * max(1 / f - 1, 0) ** 0.5 for f in factors])
    return ndimage.zoom(image, factors, order=1, grid_mode=True, mode="reflect")


def _most_textured_window(gray: np.ndarray, side: int) -> np.ndarray:
    """The ``side``×``side`` square (or the whole image, if smaller) with the largest mean gradient magnitude, among
    squares every ``side/8`` pixels."""
    if max(gray.shape) <= side:
        return gray
    rows, cols = min(side, gray.shape[0]), min(side, gray.shape[1])
    gy, gx = np.gradient(gray)
    integral = np.pad(np.hypot(gx, gy).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    step = max(side // 8, 1)
    tops = np.arange(0, gray.shape[0] - rows + 1, step)
    lefts = np.arange(0, gray.shape[1] - cols + 1, step)
    t, l = tops[:, None], lefts[None, :]
    energy = integral[t + rows, l + cols] - integral[t, l + cols] - integral[t + rows, l] + integral[t, l]
    top, left = np.unravel_index(np.argmax(energy), energy.shape)
    return gray[tops[top] : tops[top] + rows, lefts[left] : lefts[left] + cols]


def _centre(kernel: np.ndarray, size: int) -> np.ndarray:
    """The kernel moved so that its centre of mass is the centre of a ``size``×``size`` frame (sub-pixel, linear
    interpolation), negative interpolation residue cut, normalised."""
    big = np.zeros((2 * size + kernel.shape[0],) * 2)
    offset = (big.shape[0] - kernel.shape[0]) // 2
    big[offset : offset + kernel.shape[0], offset : offset + kernel.shape[1]] = kernel
    rows, cols = np.indices(big.shape)
    centre = (big.shape[0] - 1) / 2
    shift = (centre - (big * rows).sum() / big.sum(), centre - (big * cols).sum() / big.sum())
    big = ndimage.shift(big, shift, order=1, mode="constant").clip(0, None)
    start = (big.shape[0] - size) // 2
    kernel = big[start : start + size, start : start + size]
    return kernel / kernel.sum()


def estimate_shake_kernel(
    image: np.ndarray,
    kernel_size: int = 31,
    iterations: int = 6,
    regularisation: float = 0.01,
    latent_weight: float = 0.003,
    window: int = 512,
) -> np.ndarray:
    """The camera-shake kernel of a blurred image, by coarse-to-fine edge prediction (module docstring).

    Args:
        image: H×W×3 (or H×W) array, integer (0–255) or float in [0, 1]; at least ``2·kernel_size`` pixels on each
            side.
        kernel_size: the returned kernel's frame (odd); the shake must fit in it.
        iterations: prediction / kernel / latent rounds per pyramid level.
        regularisation: the kernel's Tikhonov weight, relative to the mean power of the predicted gradients.
        latent_weight: the gradient prior's weight in the latent-image deconvolution.
        window: larger images are measured on their most textured ``window``×``window`` square (one kernel for
            the whole image, as uniform blur has).

    Returns:
        ``kernel_size``×``kernel_size`` float64, non-negative, summing to 1, centred on its centre of mass.
    """
    if kernel_size % 2 == 0 or kernel_size < COARSEST_KERNEL:
        raise ValueError(f"kernel_size must be odd and at least {COARSEST_KERNEL}, got {kernel_size}.")
    image = np.asarray(image)
    scale_to_unit = 255.0 if np.issubdtype(image.dtype, np.integer) else 1.0
    gray = (image @ LUMA if image.ndim == 3 else image).astype(np.float64) / scale_to_unit
    if min(gray.shape) < 2 * kernel_size:
        raise ValueError(
            f"The image ({gray.shape[1]}×{gray.shape[0]}) is too small to estimate a {kernel_size}×{kernel_size} "
            f"shake from; it needs at least {2 * kernel_size} pixels on each side."
        )
    gray = _most_textured_window(gray, window)
    sizes = [kernel_size]
    while sizes[-1] > COARSEST_KERNEL:
        sizes.append(max(COARSEST_KERNEL, 2 * round(sizes[-1] / math.sqrt(2) / 2 - 0.5) + 1))
    sizes.reverse()
    kernel, latent = np.ones((1, 1)), None  # an impulse: no blur, until edges say otherwise
    for size in sizes:
        scale = size / kernel_size
        shape = (max(round(gray.shape[0] * scale), 2 * size), max(round(gray.shape[1] * scale), 2 * size))
        blurred = _resize(gray, shape) if scale < 1 else gray
        latent = blurred if latent is None else _resize(latent, shape)
        kernel = _clean(_resize(kernel, (size, size)).clip(0, None)) if kernel.shape[0] > 1 else delta_kernel(size)
        usefulness = _usefulness(blurred, 5)
        for iteration in range(iterations):
            predicted = _shock_filter(ndimage.gaussian_filter(latent, 1.0))
            mask = _edge_mask(predicted, usefulness, size, size, grow=2 * 1.1**iteration)
            if mask.any():  # an image without usable edges at this scale keeps the kernel it has
                kernel = _kernel_from_edges(predicted, blurred, mask, size, regularisation)
            latent = _deconvolve(blurred, kernel, latent_weight)
    return _centre(kernel, kernel_size)


def align_kernel(estimate: np.ndarray, reference: np.ndarray, max_shift: int = 6) -> np.ndarray:
    """``estimate`` moved by the whole-pixel shift (up to ``max_shift`` each way) that lines it up best with
    ``reference`` (largest correlation), renormalised; both the same odd size.

    A blurred image does not say where its kernel sits: a blind estimate of the right shape may sit a pixel or two
    away from the true kernel, which moves the deblurred image by as much. Training on aligned estimates teaches a
    model the estimator's shape errors only, not to hedge against a shift it cannot see (the aligned PSNR of
    :func:`bikanet_hf.metrics.aligned_psnr` scores the result the same way). An estimate that overlaps the
    reference at no shift is returned unmoved.
    """
    estimate, reference = np.asarray(estimate, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if estimate.shape != reference.shape:
        raise ValueError(f"Kernels of different shapes cannot be aligned: {estimate.shape} and {reference.shape}.")
    size, m = estimate.shape[0], max_shift
    padded = np.pad(estimate, m)
    offsets = range(2 * m, -1, -1)  # shifts −m … m; on a tie the first (most negative) shift wins
    windows = (padded[top : top + size, left : left + size] for top in offsets for left in offsets)
    best = max(windows, key=lambda window: float((window * reference).sum()))
    if float((best * reference).sum()) <= 0:
        best = estimate
    return best / best.sum()
