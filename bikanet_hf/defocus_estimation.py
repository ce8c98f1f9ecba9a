"""Blind defocus: the radius of a lens's blur disk, read from the rings of zeros it cuts into the photo's spectrum.

A uniform disk of radius r has the transfer function ``2·J₁(2πrf) / (2πrf)``, which falls to zero on rings at
f ≈ 0.61/r, 1.12/r, 1.62/r… cycles per pixel; a natural image's own power spectrum falls smoothly with frequency
(about as a power law: Field, JOSA A 1987). So the blurred photo's power spectrum shows dips where the disk's zeros
lie, and their places give the radius — the idea of reading blur from spectral zeros goes back to Cannon ("Blind
deconvolution of spatially invariant image blurs with phase", IEEE TASSP 1976), who used the power cepstrum. Here:

1. the grey image is cut into Hann-windowed square tiles (half-overlapping, at most ``MAX_TILES`` spread evenly) and
   their power spectra are averaged, then averaged over rings of equal frequency (a disk is isotropic);
2. the floor F the blur cannot push the spectrum below: the larger of the noise's (the measured noise σ,
   :func:`~bikanet_hf.modeling_bikanet.estimate_noise_level`, plus 8-bit rounding) and the lowest level of the
   spectrum's upper half (averaged over 5 rings), which is where a JPEG's artefacts fill the disk's zeros (the
   measured noise misses them: JPEG keeps flat blocks flat);
3. for each candidate radius (``RADIUS_STEP`` apart over ``DEFOCUS_RADIUS_RANGE``), the sharp photo's smooth spectrum
   S (a quadratic in log-frequency) is fitted to ``log(P − F) − log K`` (K the disk's own ring profile) over the
   frequencies whose power P stands ``NOISE_MARGIN`` times above F; then the model ``K·S + F`` is compared with P
   over the whole band, dips included (mean squared log difference): the radius with the smallest misfit wins;
4. the same with isotropic Gaussians (σ ``GAUSSIAN_SIGMAS``) says whether the blur is a disk at all: a disk's dips
   leave a misfit no Gaussian can remove, so the photo counts as out of focus when the disk's misfit is below
   ``DEFOCUS_EVIDENCE`` times the best Gaussian's and the disk's first ring of zeros lies inside the frequencies
   measured (a disk under about 1.3 px has none below Nyquist, and is then too like a small Gaussian to tell);
5. each textured quarter of the photo (``FLAT_QUARTER``) is fitted too, and none may contradict the disk
   (``REGION_MISFIT_LIMIT``): a photo whose subject is in focus and background is not has no one disk, and deblurring
   the sharp part with the background's disk would ruin it.

Measured on bsds500_val, set14, mcmaster18, set5 and wikiphotos10, clean, noisy and saved as JPEGs
(``benchmarks/results/defocus_detection*.md``). numpy FFTs: 0.04 s for 512×512, 0.26 s for 2 megapixels on 2 CPU
threads.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from .image_io import read_image, to_tensor
from .kernels import DEFOCUS_RADIUS_RANGE, KERNEL_SIZE, defocus_kernel, gaussian_kernel
from .modeling_bikanet import estimate_noise_level

TILE = 256  # side of the spectrum's tiles (smaller photos: the largest power of two that fits, down to MIN_TILE)
MIN_TILE = 64
MAX_TILES = 144
RADIUS_STEP = 0.05
GAUSSIAN_SIGMAS = np.arange(0.3, 5.0 + 1e-9, 0.05)
NOISE_MARGIN = 3.0
FIRST_ZERO = 0.6098  # the first zero of a disk's transfer function, times its radius (cycles per pixel × px)
# A photo is out of focus when the best disk's misfit is below this fraction of the best Gaussian's ...
DEFOCUS_EVIDENCE = 0.5
# ... and no quarter of it fits that disk (within 5% of the radius) worse than this many times the best Gaussian:
# a photo with a part in focus is not one disk. Measured on the first 80 bsds500_val photos (disk radii 1.5–7 px),
# among those the whole-photo test calls out of focus: the worst textured quarter reads 0.05–3.0 (median 0.29, 99% at
# most 1.5) when the whole photo is disk-blurred, 0.06–58 (median 0.29, 90% at most 1.5) with σ = 2.55 noise, and
# 2.05–71 (17 photos) when the right quarter of its width is left sharp, which fits no disk. Deblurring such a photo
# with the disk left its sharp part 10–17 dB from the original (31–40 dB with the Gaussian estimate; 6 photos). Flat
# quarters (sky, a wall) fit anything badly: counted, they put 4 of those 76 disk-blurred photos above 1.5 (to 10.9).
REGION_MISFIT_LIMIT = 1.5
REGION_RADIUS_TOLERANCE = 0.05
# Quarters with less texture than this share of the most textured quarter's are left out of that test.
FLAT_QUARTER = 0.5


@dataclass(frozen=True)
class DefocusEstimate:
    """What :func:`estimate_defocus` measured.

    Attributes:
        radius: the disk's radius in pixels (within ``DEFOCUS_RADIUS_RANGE``).
        misfit: the mean squared log-spectrum misfit left by that disk.
        gaussian_misfit: the same for the best isotropic Gaussian.
        zero_measured: whether the disk's first ring of zeros (0.61 / radius cycles per pixel) lies within the
            band measured (up to the highest frequency whose power stands ``NOISE_MARGIN`` times above the floor).
        worst_quarter: the largest, over the photo's four quarters (those of at least ``MIN_TILE`` pixels a side with
            at least ``FLAT_QUARTER`` times the texture of the most textured one), of the misfit of that disk (within
            ``REGION_RADIUS_TOLERANCE`` of the radius) over the best Gaussian's there; 0 when no quarter could be
            measured.
    """

    radius: float
    misfit: float
    gaussian_misfit: float
    zero_measured: bool
    worst_quarter: float

    @property
    def is_defocus(self) -> bool:
        """Whether the spectrum shows a disk's zeros: the first ring measured, the disk's misfit below
        ``DEFOCUS_EVIDENCE`` times the best Gaussian's, and no quarter of the photo contradicting it (its
        :attr:`worst_quarter` at most ``REGION_MISFIT_LIMIT``)."""
        evidence = self.zero_measured and self.misfit < DEFOCUS_EVIDENCE * self.gaussian_misfit
        return evidence and self.worst_quarter <= REGION_MISFIT_LIMIT

    def kernel(self, size: int = KERNEL_SIZE) -> np.ndarray:
        """The disk (:func:`~bikanet_hf.kernels.defocus_kernel`) as a ``size×size`` kernel."""
        return defocus_kernel(self.radius, size)


def _tile_size(height: int, width: int) -> int:
    side = min(height, width, TILE)
    if side < MIN_TILE:
        raise ValueError(
            f"The image is {width}×{height} pixels; measuring defocus needs at least {MIN_TILE}×{MIN_TILE}."
        )
    return 1 << (side.bit_length() - 1)


@functools.lru_cache(maxsize=4)
def _rings(tile: int) -> tuple[np.ndarray, np.ndarray]:
    """The ring (integer frequency radius, in bins of 1/``tile`` cycles per pixel) of every FFT coefficient, and the
    number of coefficients per ring, up to the Nyquist frequency."""
    y, x = np.indices((tile, tile))
    y, x = np.minimum(y, tile - y), np.minimum(x, tile - x)
    ring = np.sqrt(x * x + y * y).astype(int)
    ring[ring >= tile // 2] = tile // 2  # corners beyond Nyquist: one discarded ring
    return ring, np.bincount(ring.ravel(), minlength=tile // 2 + 1)


def _ring_profile(power: np.ndarray) -> np.ndarray:
    ring, count = _rings(power.shape[0])
    return (np.bincount(ring.ravel(), power.ravel(), minlength=len(count)) / count)[:-1]


@functools.lru_cache(maxsize=4)
def _log_profiles(tile: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate radii, and the log ring profiles of their disks' and of the Gaussians' power transfer functions."""
    low, high = DEFOCUS_RADIUS_RANGE
    radii = np.round(np.arange(low, high + 1e-9, RADIUS_STEP), 2)

    def log_profile(kernel: np.ndarray) -> np.ndarray:
        return np.log(_ring_profile(np.abs(np.fft.fft2(kernel, s=(tile, tile))) ** 2) + 1e-6)

    disks = np.stack([log_profile(defocus_kernel(r)) for r in radii])
    gaussians = np.stack([log_profile(gaussian_kernel(s, s, 0.0)) for s in GAUSSIAN_SIGMAS])
    return radii, disks, gaussians


def power_profile(grey: np.ndarray, tile: int) -> np.ndarray:
    """Ring-averaged power spectrum of a grey image (0–255 scale): the mean over Hann-windowed, half-overlapping
    ``tile``² tiles (at most ``MAX_TILES``, spread evenly), each with its mean removed."""
    height, width = grey.shape

    def starts(length: int) -> np.ndarray:
        count = min((length - tile) // (tile // 2) + 1, int(MAX_TILES**0.5))
        return np.linspace(0, length - tile, count).round().astype(int)

    window = np.outer(np.hanning(tile), np.hanning(tile))
    total = np.zeros((tile, tile))
    tops, lefts = starts(height), starts(width)
    for top in tops:
        for left in lefts:
            patch = grey[top : top + tile, left : left + tile]
            total += np.abs(np.fft.fft2((patch - patch.mean()) * window)) ** 2
    return _ring_profile(total / (len(tops) * len(lefts)))


@dataclass
class _SpectrumFit:
    radii: np.ndarray  # the candidate radii
    disk_misfits: np.ndarray  # the misfit each candidate disk leaves
    gaussian_misfit: float  # the best Gaussian's
    highest: int  # the highest frequency measured, in bins of 1/tile cycles per pixel
    tile: int

    def shows_first_zero(self, radius: float) -> bool:
        """Whether the first ring of zeros of the disk of ``radius`` lies below the highest frequency measured."""
        return round(FIRST_ZERO * self.tile / radius) < self.highest


def _fit_spectrum(grey: np.ndarray, sigma: float) -> _SpectrumFit | None:
    """Steps 1–4 of the module docstring on a grey photo (0–255 scale) with noise σ ``sigma`` (grey levels); ``None``
    when too few frequencies stand above the noise floor to show anything (a flat picture)."""
    tile = _tile_size(*grey.shape)
    profile = power_profile(grey, tile)
    # the grey mean of three channels with independent noise and rounding (1/12 grey level² each), Hann-windowed
    floor = (sigma**2 + 1 / 12) / 3 * float((np.hanning(tile) ** 2).sum() ** 2)
    frequency = np.arange(len(profile))
    band = (frequency > 2) & (frequency < tile // 2 - tile // 50)
    upper = np.convolve(profile, np.ones(5) / 5, mode="same")[band & (frequency >= tile // 4)]
    floor = max(floor, float(upper.min()))
    keep = band & (profile > NOISE_MARGIN * floor)
    if keep.sum() < 8:
        return None

    def powers(frequencies: np.ndarray) -> np.ndarray:  # 1, log f, log² f: the smooth spectrum's terms
        log_frequency = np.log(frequencies)
        return np.stack([np.ones_like(log_frequency), log_frequency, log_frequency**2])

    fit = np.linalg.pinv(powers(frequency[keep]))  # least squares on the kept frequencies
    log_power = np.log(profile[band])

    def misfits(log_profiles: np.ndarray) -> np.ndarray:
        smooth = (np.log(profile[keep] - floor) - log_profiles[:, keep]) @ fit @ powers(frequency[band])
        model = np.log(np.exp(log_profiles[:, band] + smooth) + floor)
        return ((log_power - model) ** 2).mean(axis=1)

    radii, disks, gaussians = _log_profiles(tile)
    return _SpectrumFit(radii, misfits(disks), float(misfits(gaussians).min()), int(frequency[keep].max()), tile)


def _texture(grey: np.ndarray) -> float:
    """Mean absolute difference between neighbouring pixels of a grey image (0–255 scale)."""
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())


# The last photo's estimate, keyed by a digest of its pixels: deblur(blur_type="auto") asks once whether a photo is
# out of focus and again for its kernel (1.9 s at 12 MP; the digest takes 0.05 s).
_last_estimate: tuple[bytes, DefocusEstimate] | None = None


def estimate_defocus(image) -> DefocusEstimate:
    """The defocus disk of a photo — a path, a PIL image or an array, as :func:`bikanet_hf.deblur` takes (``H×W×3``
    uint8 is used as it is) — of at least ``MIN_TILE`` pixels a side (see the module docstring).

    Raises ``ValueError`` for a smaller or unreadable image. A photo that is not out of focus still gets the
    best-fitting radius; :attr:`DefocusEstimate.is_defocus` says whether the spectrum shows a disk at all. The same
    pixels asked again in a row get the same answer without measuring again."""
    global _last_estimate
    image, _ = read_image(image)
    _tile_size(*image.shape[:2])
    digest = hashlib.blake2b(str(image.shape).encode(), digest_size=16)
    digest.update(np.ascontiguousarray(image).data)
    if _last_estimate is not None and _last_estimate[0] == digest.digest():
        return _last_estimate[1]
    estimate = _measure(image)
    _last_estimate = (digest.digest(), estimate)
    return estimate


def _measure(image: np.ndarray) -> DefocusEstimate:
    """:func:`estimate_defocus` of an ``H×W×3`` uint8 photo."""
    sigma = float(estimate_noise_level(to_tensor(image)[None])[0]) * 255
    grey = image.astype(np.float64).mean(axis=2)  # the grey photo, computed once for the whole and its quarters
    fit = _fit_spectrum(grey, sigma)
    if fit is None:  # too flat to show any structure: no evidence either way
        return DefocusEstimate(float(DEFOCUS_RADIUS_RANGE[0]), float("inf"), float("inf"), False, 0.0)
    best = int(fit.disk_misfits.argmin())
    radius = float(fit.radii[best])
    height, width = grey.shape
    quarters = [
        grey[top : top + height // 2, left : left + width // 2]
        for top in (0, height // 2)
        for left in (0, width // 2)
        if min(height, width) // 2 >= MIN_TILE
    ]
    textures = [_texture(quarter) for quarter in quarters]
    worst = 0.0
    for quarter, texture in zip(quarters, textures, strict=True):
        if texture < FLAT_QUARTER * max(textures) or (region := _fit_spectrum(quarter, sigma)) is None:
            continue  # a flat part shows neither the disk nor its absence (and deblurring harms it little)
        near = np.abs(region.radii / radius - 1) <= REGION_RADIUS_TOLERANCE
        worst = max(worst, float(region.disk_misfits[near].min()) / region.gaussian_misfit)
    return DefocusEstimate(
        radius, float(fit.disk_misfits[best]), fit.gaussian_misfit, fit.shows_first_zero(radius), worst
    )
