"""``estimate_kernel``: the blur kernel of a photo, in one call.

Methods:

* ``"amortized"`` — one pass of :class:`BikanetKernelEstimator` (tens of milliseconds; the default);
* ``"gan"`` — :class:`KernelGAN`, a GAN trained on the photo's own crops (seconds per photo; see its module);
* ``"refine"`` — KernelGAN started from the amortized estimate, the two answers weighed against each other; on
  images no estimator saw, the GAN added nothing the amortized estimate lacked, so this returns about the amortized
  kernel (``KernelGANConfig.refine_prior_weight``, ``benchmarks/results/kernelgan_refine.md``);
* ``"edges"`` — camera shake only: the shake's path by coarse-to-fine edge prediction (seconds; see
  :mod:`bikanet_hf.shake_estimation`), the default for ``blur_type="motion"``;
* ``"spectral"`` — defocus only: the radius of a lens's blur disk from the zeros it leaves in the photo's spectrum
  (a fraction of a second; see :mod:`bikanet_hf.defocus_estimation`), for ``blur_type="defocus"``.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path

import numpy as np
import torch

from .configuration_kernelgan import KernelGANConfig
from .defocus_estimation import MIN_TILE, estimate_defocus
from .image_io import load_rgb
from .image_processing_bikanet import BikanetImageProcessor
from .modeling_kernel_estimator import BikanetKernelEstimator, gaussian_kernels, straight_motion_kernels
from .modeling_kernelgan import MIN_IMAGE_SIDE, KernelGAN, gaussian_covariance
from .motion import MOTION_KERNEL_SIZE
from .shake_estimation import estimate_shake_kernel

METHODS = ("amortized", "gan", "refine", "edges", "spectral")
# Per blur type: the methods that estimate it, the first being the default (the best measured:
# benchmarks/results/kernel_estimation.md and motion.md).
METHODS_FOR = {"gaussian": ("amortized", "gan", "refine"), "motion": ("edges", "amortized"), "defocus": ("spectral",)}
# The bundled checkpoints: BIKAnet, a larger BIKAnet (trained on a GPU; a little better, about 5× slower on a CPU,
# so opt-in), and the motion-blur extension's model (per-pixel motion flow instead of AdaIN, 31×31 camera-shake
# kernels); each folder holds its kernel estimator, so that the folder (and a Hub repository made from it) is a whole
# blind deblurrer. ``BUNDLED_MODELS`` names them for ``deblur(model=...)``, the CLI's ``--model`` and the app.
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
DEFAULT_MODEL = CHECKPOINTS / "bikanet"
LARGE_MODEL = CHECKPOINTS / "bikanet-large"
DEFAULT_MOTION_MODEL = CHECKPOINTS / "bikanet-motion"
BUNDLED_MODELS = {path.name: path for path in (DEFAULT_MODEL, LARGE_MODEL, DEFAULT_MOTION_MODEL)}
DEFAULT_ESTIMATOR = DEFAULT_MODEL / "kernel_estimator"
DEFAULT_MOTION_ESTIMATOR = DEFAULT_MOTION_MODEL / "kernel_estimator"
MIN_SIDE = 16
# Mean absolute luminance step between neighbouring pixels (0–1 scale) below which an image carries too little
# texture to tell its blur: a flat or nearly flat picture.
MIN_TEXTURE = 2e-3
# Widest blur σ (px, the amortized estimate before narrowing) under which a photo shows so little blur that it may
# be sharp already. With the bundled estimator (benchmarks/results/slight_blur.md: 25 photos of set5, wikiphotos10 and
# bsds500_val) sharp photos read 0.15–0.77 px, the same photos blurred with σ = 0.6 read 0.46–1.10 (88 % under 0.8),
# with σ = 1 0.92–1.52. Since its fine-tuning on nearly sharp photos the estimator answers a sharp photo with a
# near-delta kernel, so such a photo comes back little changed; the warning says so.
SLIGHT_BLUR_SIGMA = 0.8
# ``deblur_offset_floor`` for photos known to be blurred, none sharp (:func:`known_blur_estimator`, the CLI's
# ``--known-blurred``, the app's "surely blurred"): the width offset narrows no estimate below 0.8 px. Blur of
# σ = 0.6–0.8 px gains up to 1.5 dB more; a sharp photo, whose own softness the estimator reads as 0.36–0.53 px,
# comes back 1.7–3.2 dB further from itself (benchmarks/results/kernel_scale.md).
KNOWN_BLUR_OFFSET_FLOOR = 0.8


class FlatImageWarning(UserWarning):
    """:func:`estimate_kernel`: the image has too little texture (below ``MIN_TEXTURE``) to measure its blur."""


class SlightBlurWarning(UserWarning):
    """:func:`estimate_kernel`: the Gaussian estimate is so slight (σ < ``SLIGHT_BLUR_SIGMA``) that the photo may be
    sharp already."""


def bundled_model_path(model: str | os.PathLike | None) -> str | os.PathLike | None:
    """The folder of the bundled checkpoint ``model`` names (a key of ``BUNDLED_MODELS``), else ``model`` unchanged."""
    return BUNDLED_MODELS.get(model, model) if isinstance(model, str) else model


@functools.lru_cache(maxsize=4)
def _load_estimator(path: str) -> BikanetKernelEstimator:
    return BikanetKernelEstimator.from_pretrained(path).eval()


def load_estimator(
    estimator: BikanetKernelEstimator | str | os.PathLike | None = None, blur_type: str = "gaussian"
) -> BikanetKernelEstimator:
    """A loaded estimator, a local folder or Hub id (loaded once and cached), or the bundled default for
    ``blur_type`` (``"gaussian"``, or ``"motion"``: the one trained on camera shake, inside the motion model)."""
    if isinstance(estimator, BikanetKernelEstimator):
        return estimator.eval()
    if estimator is None:
        estimator = DEFAULT_MOTION_ESTIMATOR if blur_type == "motion" else DEFAULT_ESTIMATOR
        if not (estimator / "config.json").is_file():
            raise FileNotFoundError(
                f"No bundled kernel estimator at {estimator}: train one with train/train_kernel_estimator.py "
                "and pass its folder as estimator=..."
            )
    return _load_estimator(os.fspath(estimator))


def known_blur_estimator(estimator: BikanetKernelEstimator) -> BikanetKernelEstimator:
    """A copy of ``estimator`` for photos known to be blurred: its width offset stops at ``KNOWN_BLUR_OFFSET_FLOOR``
    (``deblur_offset_floor``). A copy, so that the loaded (cached, shared) estimator is left as it was."""
    copy = deepcopy(estimator)
    copy.config.deblur_offset_floor = KNOWN_BLUR_OFFSET_FLOOR
    return copy


def narrow_kernel(kernel: np.ndarray, estimator: BikanetKernelEstimator) -> np.ndarray:
    """The Gaussian deblurring uses for the Gaussian ``kernel``: its blur covariance (truncation to the square frame
    undone first, :func:`gaussian_covariance`) narrowed as ``estimator`` narrows its own estimates
    (:meth:`~BikanetKernelEstimator.deblur_covariance`), at the same size: how deblurring uses a KernelGAN estimate."""
    covariance = gaussian_covariance(torch.from_numpy(np.asarray(kernel, dtype=np.float64)))
    return gaussian_kernels(estimator.deblur_covariance(covariance[None]), kernel.shape[-1])[0].numpy()


def _as_tensor(image) -> torch.Tensor:
    if isinstance(image, str | os.PathLike):
        image = load_rgb(image)
    array = BikanetImageProcessor().to_array(image)
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


def estimate_kernel(
    image,
    method: str | None = None,
    *,
    estimator=None,
    gan: KernelGAN | None = None,
    steps: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    for_deblurring: bool = False,
    blur_type: str = "gaussian",
) -> np.ndarray:
    """The blur kernel of ``image`` (PIL image, H×W(×3) array, 3×H×W tensor in [0, 1], or a path) as a float64
    17×17 numpy array (31×31 for ``blur_type="motion"``): non-negative, summing to 1, centred.

    Args:
        method: ``"amortized"``, ``"gan"``, ``"refine"``, ``"edges"`` or ``"spectral"`` (see the module docstring);
            default: the best for the blur type, ``"amortized"`` for Gaussian blur, ``"edges"`` for motion,
            ``"spectral"`` for defocus.
        estimator: the amortized estimator (loaded model, folder or Hub id; default: the bundled one).
        gan: a :class:`KernelGAN` with non-default settings (default: ``KernelGAN(KernelGANConfig())``).
        steps: KernelGAN training steps (default: its config's); seed: makes KernelGAN deterministic.
        progress: ``progress(step, total)`` during KernelGAN training.
        for_deblurring: a Gaussian kernel as deblurring uses it, narrowed by the estimator's
            ``deblur_covariance_scale`` and ``deblur_sigma_offset`` (an over-wide kernel harms deblurring more); for
            every Gaussian method (KernelGAN's answer through :func:`narrow_kernel`).
        blur_type: ``"gaussian"`` (default) or ``"motion"``: a camera-shake kernel for the motion model — with
            ``"edges"``, the shake's path; with ``"amortized"``, the straight motion whose spread matches the motion
            estimator's covariance (one pass, but a straight motion is the wrong shape for most shakes:
            ``benchmarks/results/motion.md``); or ``"defocus"``: the disk of a lens out of focus, its radius from
            the photo's spectrum (:func:`~bikanet_hf.defocus_estimation.estimate_defocus`; a photo that is not out
            of focus still gets the best-fitting disk — ``estimate_defocus(...).is_defocus`` tells).

    Raises ``ValueError`` for an unknown method, one that does not estimate ``blur_type``, or an image too small
    (16×16 for the amortized estimator, 64×64 for KernelGAN and for the spectral method, 62×62 for edge
    prediction). A flat image (too little texture to see blur in) gets the estimator's best guess with a
    :class:`FlatImageWarning` saying so; a Gaussian estimate so slight (σ < ``SLIGHT_BLUR_SIGMA``) that the photo
    may well be sharp already, a :class:`SlightBlurWarning` (both ``UserWarning``).
    """
    if blur_type not in METHODS_FOR:
        raise ValueError(f"Unknown blur_type {blur_type!r}; choose 'gaussian', 'motion' or 'defocus'.")
    method = METHODS_FOR[blur_type][0] if method is None else method
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; available: {', '.join(METHODS)}.")
    if method not in METHODS_FOR[blur_type]:
        raise ValueError(
            f"The {method} method does not estimate {blur_type} blur; use one of: {', '.join(METHODS_FOR[blur_type])}."
        )
    x = _as_tensor(image)
    smallest = {"amortized": MIN_SIDE, "edges": 2 * MOTION_KERNEL_SIZE, "spectral": MIN_TILE}.get(
        method, MIN_IMAGE_SIDE
    )
    if min(x.shape[-2:]) < smallest:
        raise ValueError(
            f"The image is {x.shape[-1]}×{x.shape[-2]} pixels; estimating a blur kernel with the {method} method "
            f"needs at least {smallest}×{smallest}."
        )
    model = load_estimator(estimator, blur_type)
    _, texture = model.select_crops(x)
    flat = float(texture.max()) < MIN_TEXTURE
    if flat:
        warnings.warn(
            "The image is almost flat (no edges or texture), so its blur cannot be measured; the returned kernel "
            "is the estimator's guess and may be wrong.",
            FlatImageWarning,
            stacklevel=2,
        )
    narrowed = for_deblurring and blur_type == "gaussian"
    if method == "edges":
        return estimate_shake_kernel(x.permute(1, 2, 0).double().numpy(), MOTION_KERNEL_SIZE)
    if method == "spectral":
        return estimate_defocus(x.permute(1, 2, 0).mul(255).round().byte().numpy()).kernel()
    moments = model.pooled_moments(x)
    with torch.no_grad():
        estimate = model.from_moments(moments, return_dict=True)
        sigma = float(estimate.sigma_major[0])
        if narrowed and method == "amortized":  # KernelGAN's answer is narrowed at the end instead
            estimate = model.from_moments(moments, for_deblurring=True, return_dict=True)
    if blur_type == "gaussian" and sigma < SLIGHT_BLUR_SIGMA and not flat:  # a flat photo has its own warning
        warnings.warn(
            f"The photo shows very little blur (σ ≈ {sigma:.2f} px, as sharp photos do): it may be sharp already, "
            "and deblurring changes it little.",
            SlightBlurWarning,
            stacklevel=2,
        )
    if blur_type == "motion":  # a motion estimator's own answer; from a Gaussian one, the motion of its spread
        return straight_motion_kernels(estimate.covariance.double(), MOTION_KERNEL_SIZE)[0].numpy()
    if method == "amortized":
        kernel = estimate.kernel[0].double().numpy()
    else:
        gan = gan if gan is not None else KernelGAN(KernelGANConfig())
        init = estimate.kernel[0].double().numpy() if method == "refine" else None
        kernel = gan.estimate(x, steps=steps, seed=seed, init_kernel=init, progress=progress).numpy()
        kernel = narrow_kernel(kernel, model) if narrowed else kernel
    return kernel / kernel.sum()
