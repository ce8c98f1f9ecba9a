"""Blur kernels and the blur operator of the benchmark protocol (``shared/PROTOCOL.md``).

Everything that makes a blurred image goes through this module, so that training data, benchmarks, the app and
the tests all blur the same way:

* kernels: :func:`gaussian_kernel`, :func:`defocus_kernel` (a disk), :func:`bank16` (the paper's 16 kernels),
  :func:`sample_kernels` (the random family, optionally mixed with bank16, nearly sharp and defocus kernels),
  :func:`load_kernels` / :func:`load_kernel` (``.npy``, ``.png``, ``.mat``);
* the operator: :func:`blur` (batched true convolution with mirror padding), :func:`add_noise`, :func:`quantize`,
  and :func:`degrade`, which chains them exactly as the protocol's "Blurring a sharp image" section;
* a picture of a kernel for people: :func:`kernel_to_image`.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

KERNEL_SIZE = 17
RANDOM_SIGMA_RANGE = (0.6, 4.0)  # protocol "random" track: sigma_1, sigma_2 ~ U[0.6, 4.0]
# Below the random family: photos as sharp as they come, up to the family's mildest blur (σ = 0.3 is nearly a delta:
# its centre tap holds 98 % of the weight). Training an estimator on some of these teaches it to answer "no blur".
NEAR_SHARP_SIGMA_RANGE = (0.3, 0.6)
# Defocus: a lens out of focus spreads each point over a disk (its aperture's image); radii up to the 17×17 frame.
DEFOCUS_RADIUS_RANGE = (1.0, 7.5)
BANK16_PARAMS: tuple[tuple[float, float, float], ...] = (
    # (sigma_major, sigma_minor, theta_deg), in the protocol's order
    *((s, s, 0.0) for s in (1.0, 1.6, 2.2, 2.8)),
    *((2.5, 1.0, float(t)) for t in range(0, 180, 30)),
    *((4.0, 1.5, float(t)) for t in range(0, 180, 30)),
)
# From this many kernel taps on, the FFT path (computed in float64) beats the direct grouped convolution of float32
# images on a 2-thread CPU; measured by `benchmarks/blur_speed.py` (results in benchmarks/results/blur_speed.json).
# Float64 images always take the FFT path: torch's direct float64 convolution is 15-100x slower than the FFT
# (80×80: 8.3 ms against 0.55 ms; 144×144: 126 ms against 1.1 ms).
FFT_MIN_TAPS = 41 * 41


# ---------------------------------------------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------------------------------------------
def gaussian_kernel(sigma_major: float, sigma_minor: float, theta_deg: float, size: int = KERNEL_SIZE) -> np.ndarray:
    """Anisotropic Gaussian ``k(x, y) ∝ exp(-½ [x y] Σ⁻¹ [x y]ᵀ)``, ``Σ = R(θ) diag(σ₁², σ₂²) R(θ)ᵀ``.

    ``x`` is the column offset (to the right), ``y`` the row offset (downwards), ``θ`` is measured from the x axis.
    Returns a float64 ``size×size`` array that sums to 1.
    """
    if size % 2 != 1 or size < 1:
        raise ValueError(f"Kernel size must be a positive odd number, got {size}.")
    if not (sigma_major > 0 and sigma_minor > 0):
        raise ValueError(f"Kernel widths must be positive, got sigma_major={sigma_major}, sigma_minor={sigma_minor}.")
    theta = math.radians(theta_deg)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    covariance = rotation @ np.diag([sigma_major**2, sigma_minor**2]) @ rotation.T
    precision = np.linalg.inv(covariance)
    r = size // 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    quad = precision[0, 0] * x * x + 2 * precision[0, 1] * x * y + precision[1, 1] * y * y
    kernel = np.exp(-0.5 * quad)
    return kernel / kernel.sum()


def delta_kernel(size: int = KERNEL_SIZE) -> np.ndarray:
    """The ``size×size`` delta (an impulse at the centre): no blur."""
    kernel = np.zeros((size, size))
    kernel[size // 2, size // 2] = 1.0
    return kernel


def defocus_kernel(radius: float, size: int = KERNEL_SIZE, supersampling: int = 8) -> np.ndarray:
    """A defocus blur: the uniform disk of ``radius`` pixels around the centre, each tap weighted by the share of its
    pixel the disk covers (measured on a ``supersampling``² grid, so that radii between whole pixels differ).

    Returns a float64 ``size×size`` array that sums to 1; the disk must fit the frame (``radius ≤ size // 2``).
    """
    if size % 2 != 1 or size < 1:
        raise ValueError(f"Kernel size must be a positive odd number, got {size}.")
    if not 0 < radius <= size // 2:
        raise ValueError(f"A defocus radius must be in (0, {size // 2}] px for a {size}×{size} kernel, got {radius}.")
    offsets = (np.arange(size * supersampling) + 0.5) / supersampling - size / 2
    y, x = np.meshgrid(offsets, offsets, indexing="ij")
    inside = (x * x + y * y <= radius * radius).astype(np.float64)
    kernel = inside.reshape(size, supersampling, size, supersampling).mean(axis=(1, 3))
    return kernel / kernel.sum()


def defocus_radius(kernel: np.ndarray) -> float:
    """The radius of the defocus disk (:func:`defocus_kernel`) with the spread of ``kernel``, at most the frame's
    half-width: an area-sampled disk of radius r spreads r²/2 + 1/6 px² (r²/4 along each axis, plus the pixel's
    1/12)."""
    major, minor, _ = kernel_spread(kernel)
    return min(math.sqrt(max(2 * (major**2 + minor**2 - 1 / 6), 0.0)), kernel.shape[0] // 2)


def bank16(size: int = KERNEL_SIZE) -> np.ndarray:
    """The paper's 16 kernels (4 isotropic, 12 rotated anisotropic), ``16×size×size`` float64."""
    return np.stack([gaussian_kernel(s1, s2, t, size) for s1, s2, t in BANK16_PARAMS])


@dataclass
class KernelBatch:
    """Kernels drawn by :func:`sample_kernels`, with the parameters that made them."""

    kernels: np.ndarray  # n×size×size float64, each summing to 1
    sigma_major: np.ndarray  # n
    sigma_minor: np.ndarray  # n
    theta: np.ndarray  # n, degrees in [0, 180)
    kernel_id: np.ndarray  # n, index into bank16, or -1 for a kernel of the random family
    defocus_radius: np.ndarray  # n, the disk's radius for defocus kernels, 0 for Gaussians


def random_kernel_params(rng: np.random.Generator) -> tuple[float, float, float]:
    """One draw of the protocol's random family: ``σ₁, σ₂ ~ U[0.6, 4.0]`` (swapped so σ₁ ≥ σ₂), ``θ ~ U[0, 180)``.

    The draw order (two widths, then the angle) is part of the protocol's "random" track, which seeds
    ``numpy.random.default_rng(seed + i)`` for image ``i``.
    """
    s1, s2 = rng.uniform(*RANDOM_SIGMA_RANGE, size=2)
    theta = rng.uniform(0.0, 180.0)
    return float(max(s1, s2)), float(min(s1, s2)), float(theta)


def random_track_kernel(seed: int, index: int, size: int = KERNEL_SIZE) -> tuple[np.ndarray, tuple[float, ...]]:
    """The protocol's "random" track kernel of image ``index``: drawn from ``default_rng(seed + index)``."""
    params = random_kernel_params(np.random.default_rng(seed + index))
    return gaussian_kernel(*params, size=size), params


def sample_kernels(
    n: int,
    generator: np.random.Generator,
    bank16_fraction: float = 0.0,
    size: int = KERNEL_SIZE,
    near_sharp_fraction: float = 0.0,
    defocus_fraction: float = 0.0,
) -> KernelBatch:
    """Draw ``n`` kernels: each is a bank16 kernel with probability ``bank16_fraction``, else from the random family.

    Training should cover the whole random family (users' blur is never exactly one of 16 kernels); mixing some
    bank16 in keeps the benchmark kernels well represented. With probability ``near_sharp_fraction`` a kernel is
    instead nearly sharp, ``σ₁, σ₂ ~ NEAR_SHARP_SIGMA_RANGE`` (0.3–0.6) at a random angle, so that an estimator
    learns what an unblurred photo looks like. With probability ``defocus_fraction`` it is a defocus disk
    (:func:`defocus_kernel`, radius ~ ``DEFOCUS_RADIUS_RANGE``; its widths are then the disk's spread, σ = r / 2,
    and its angle 0). At 0 (the defaults) these options draw no extra number: the sequence of kernels is the one
    drawn before they existed.
    """
    for name, value in (
        ("bank16_fraction", bank16_fraction),
        ("near_sharp_fraction", near_sharp_fraction),
        ("defocus_fraction", defocus_fraction),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}.")
    kernels = np.empty((n, size, size))
    params = np.empty((n, 3))
    ids = np.full(n, -1, dtype=np.int64)
    radii = np.zeros(n)
    for i in range(n):
        if defocus_fraction and generator.random() < defocus_fraction:
            radii[i] = generator.uniform(DEFOCUS_RADIUS_RANGE[0], min(DEFOCUS_RADIUS_RANGE[1], size // 2))
            params[i] = radii[i] / 2, radii[i] / 2, 0.0
            kernels[i] = defocus_kernel(radii[i], size)
            continue
        if near_sharp_fraction and generator.random() < near_sharp_fraction:
            s1, s2 = generator.uniform(*NEAR_SHARP_SIGMA_RANGE, size=2)
            params[i] = max(s1, s2), min(s1, s2), generator.uniform(0.0, 180.0)
        elif generator.random() < bank16_fraction:
            ids[i] = generator.integers(len(BANK16_PARAMS))
            params[i] = BANK16_PARAMS[ids[i]]
        else:
            params[i] = random_kernel_params(generator)
        kernels[i] = gaussian_kernel(*params[i], size=size)
    return KernelBatch(kernels, params[:, 0], params[:, 1], params[:, 2], ids, radii)


def validate_kernel(kernel: np.ndarray, name: str = "kernel", warn: bool = True) -> np.ndarray:
    """Check a user's kernel and return it as float64 normalised to sum 1.

    Raises ``ValueError`` with a sentence that says what is wrong (empty, not 2-D, even-sized, NaN/inf, sum not
    positive). A kernel that did not already sum to 1 is normalised, with a warning when ``warn`` (an array that
    does not sum to 1 may be a mistake; a kernel stored as an 8-bit picture never sums to 1, so its loader passes
    ``warn=False``).
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim > 2:  # 1×k×k or k×k×1, as some loaders give it; a 1×1 kernel (a delta) or 1×k line stays 2-D
        k = k.reshape([n for n in k.shape if n != 1] or [1, 1])
    if k.size == 0:
        raise ValueError(f"The {name} is empty.")
    if k.ndim != 2:
        raise ValueError(f"The {name} must be a 2-D array, got shape {tuple(np.shape(kernel))}.")
    if k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise ValueError(
            f"The {name} has an even size {k.shape[0]}×{k.shape[1]}; blur kernels need odd sizes so that they "
            "have a centre pixel."
        )
    if not np.all(np.isfinite(k)):
        raise ValueError(f"The {name} contains NaN or infinite values.")
    total = k.sum()
    if total <= 0:
        raise ValueError(f"The {name} sums to {total:.3g}; a blur kernel must have a positive sum.")
    if warn and abs(total - 1.0) > 1e-6:
        warnings.warn(f"The {name} summed to {total:.6g}; it was normalised to sum 1.", stacklevel=2)
    return k / total


def load_kernels(path: str | os.PathLike) -> list[np.ndarray]:
    """Read every kernel in a file: ``.npy`` (2-D, or a stack n×h×w), ``.png``/other images (one kernel, grey
    levels as weights), ``.mat`` (MATLAB v5 through scipy, v7.3 through h5py; every 2-D numeric array found,
    cell arrays included). Each kernel is validated and normalised by :func:`validate_kernel`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Kernel file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    is_picture = False
    if ext == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"{path} is not a readable .npy array: {err}") from None
        raw = list(arr) if arr.ndim == 3 else [arr]
    elif ext == ".mat":
        raw = _read_mat_arrays(path)
    else:
        is_picture = True
        try:
            with Image.open(path) as im:
                raw = [np.asarray(im.convert("F"), dtype=np.float64)]
        except (OSError, Image.DecompressionBombError) as err:
            raise ValueError(f"{path} is not a readable kernel image: {err}") from None
    if not raw:
        raise ValueError(f"{path} contains no 2-D kernel.")
    name = os.path.basename(path)
    return [validate_kernel(k, name=f"kernel in {name}", warn=not is_picture) for k in raw]


def load_kernel(path: str | os.PathLike, index: int = 0) -> np.ndarray:
    """The ``index``-th kernel of :func:`load_kernels` (the only one for ``.png`` and 2-D ``.npy`` files)."""
    kernels = load_kernels(path)
    if not -len(kernels) <= index < len(kernels):
        raise IndexError(f"{os.fspath(path)} holds {len(kernels)} kernel(s); index {index} does not exist.")
    return kernels[index]


def _read_mat_arrays(path: str) -> list[np.ndarray]:
    import scipy.io

    def collect(value, out):
        if isinstance(value, np.ndarray) and value.dtype == object:
            for item in value.flat:
                collect(item, out)
        elif isinstance(value, np.ndarray) and value.dtype.kind in "fiu" and value.squeeze().ndim == 2:
            out.append(value.squeeze().astype(np.float64))

    out: list[np.ndarray] = []
    try:
        contents = scipy.io.loadmat(path)
    except NotImplementedError:  # MATLAB v7.3 files are HDF5
        contents = None
    except Exception as err:  # scipy raises ValueError, MatReadError, IndexError … on damaged files
        raise ValueError(f"{path} is not a readable .mat file ({type(err).__name__}: {err}).") from None
    if contents is not None:
        for key, value in contents.items():
            if not key.startswith("__"):
                collect(value, out)
        return out
    import h5py

    def visit(f, name, obj):
        if name.startswith("#refs#") or not isinstance(obj, h5py.Dataset):
            return
        if obj.dtype == h5py.ref_dtype:
            for ref in obj[()].flat:
                collect(np.asarray(f[ref][()]).T, out)  # MATLAB stores column-major
        elif obj.dtype.kind in "fiu":
            collect(np.asarray(obj[()]).T, out)

    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: visit(f, name, obj))
    except Exception as err:  # h5py raises OSError, KeyError … on damaged files
        raise ValueError(f"{path} is not a readable .mat file ({type(err).__name__}: {err}).") from None
    return out


def pad_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """Centre ``kernel`` in a ``size×size`` frame of zeros (``size`` odd and at least the kernel's size)."""
    h, w = kernel.shape
    if size < max(h, w) or size % 2 == 0:
        raise ValueError(f"Cannot centre a {h}×{w} kernel in a {size}×{size} frame.")
    out = np.zeros((size, size), dtype=kernel.dtype)
    top, left = (size - h) // 2, (size - w) // 2
    out[top : top + h, left : left + w] = kernel
    return out


# ---------------------------------------------------------------------------------------------------------------
# The blur operator
# ---------------------------------------------------------------------------------------------------------------
def mirror_pad(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Pad the last two dims by mirroring about the edge pixel without repeating it (numpy ``reflect``).

    Unlike ``F.pad(mode="reflect")`` this works for pads larger than the image (tiny images, large kernels):
    it reflects repeatedly, as ``scipy.ndimage``'s ``mirror`` mode does.
    """
    while pad_h > 0 or pad_w > 0:
        step_h = min(pad_h, x.shape[-2] - 1)
        step_w = min(pad_w, x.shape[-1] - 1)
        if step_h == 0 and step_w == 0:  # a 1-pixel-wide image: mirroring repeats the only pixel
            return F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="replicate")
        x = F.pad(x, (step_w, step_w, step_h, step_h), mode="reflect")
        pad_h, pad_w = pad_h - step_h, pad_w - step_w
    return x


def _as_kernel_tensor(kernels, batch: int, device, dtype) -> torch.Tensor:
    k = torch.as_tensor(np.asarray(kernels) if not isinstance(kernels, torch.Tensor) else kernels)
    k = k.to(device=device, dtype=dtype)
    if k.ndim == 2:
        k = k.expand(batch, *k.shape)
    elif k.ndim == 4 and k.shape[1] == 1:
        k = k[:, 0]
    if k.ndim != 3 or k.shape[0] != batch:
        raise ValueError(f"Expected one kernel or {batch} kernels (B×h×w), got shape {tuple(k.shape)}.")
    if k.shape[-1] % 2 == 0 or k.shape[-2] % 2 == 0:
        raise ValueError(f"Kernel sizes must be odd, got {tuple(k.shape[-2:])}.")
    return k


def blur(images: torch.Tensor, kernels) -> torch.Tensor:
    """True convolution ``b = k ⊛ x`` of each image with its own kernel, mirror padding, same output size.

    Args:
        images: ``B×C×H×W`` float tensor (any value scale; the protocol uses 0–255).
        kernels: one ``h×w`` kernel for all images, or ``B×h×w`` (tensor or array), ``h`` and ``w`` odd.

    Equals ``scipy.ndimage.convolve(x, k, mode="mirror")`` per channel: within 1e-5 on 0–255 data for float64
    images (always computed through the FFT, in float64), within float32 precision (~1e-4) for float32 images, which
    run as one grouped convolution over the whole batch unless the kernel has ``FFT_MIN_TAPS`` taps or more.
    """
    if images.ndim != 4:
        raise ValueError(f"Expected images as B×C×H×W, got shape {tuple(images.shape)}.")
    if not images.is_floating_point():
        images = images.float()
    b, c, h, w = images.shape
    k = _as_kernel_tensor(kernels, b, images.device, images.dtype)
    kh, kw = k.shape[-2:]
    padded = mirror_pad(images, kh // 2, kw // 2)
    if images.dtype == torch.float64 or kh * kw >= FFT_MIN_TAPS:
        return _fft_convolve_valid(padded, k)
    # conv2d is a correlation: flipping the kernel makes it a true convolution.
    weight = k.flip(-1, -2).repeat_interleave(c, dim=0).unsqueeze(1)  # (B*C)×1×kh×kw
    out = F.conv2d(padded.reshape(1, b * c, *padded.shape[-2:]), weight, groups=b * c)
    return out.reshape(b, c, h, w)


def _fft_convolve_valid(padded: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """'Valid' part of the linear convolution of each padded image with its kernel, through the FFT."""
    kh, kw = k.shape[-2:]
    ph, pw = padded.shape[-2:]
    work = padded.double()  # float32 FFTs drift by ~1e-4 on 0–255 data; the protocol asks for 1e-5
    spec = torch.fft.rfft2(work, s=(ph, pw)) * torch.fft.rfft2(k.to(work.dtype)[:, None], s=(ph, pw))
    full = torch.fft.irfft2(spec, s=(ph, pw))  # circular; the wrapped part lies in the first kh-1 / kw-1 lines
    return full[..., kh - 1 :, kw - 1 :].to(padded.dtype)


def add_noise(images: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add white Gaussian noise ``N(0, sigma²)`` (same scale as the images; the protocol uses σₙ = 2.55 on 0–255)."""
    if sigma <= 0:
        return images
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype, device=images.device)
    return images + sigma * noise


def quantize(images: torch.Tensor) -> torch.Tensor:
    """8-bit quantisation of 0–255 data: ``clip(round(b), 0, 255)`` (round half to even, as numpy)."""
    return images.round().clamp(0, 255)


def degrade(
    sharp: torch.Tensor | np.ndarray,
    kernels,
    noise_sigma: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The protocol's blurring of sharp 8-bit images: blur, optional noise, quantise; returns uint8.

    ``sharp`` is ``B×3×H×W`` (or ``H×W×3`` for one image, returned ``H×W×3``) with values 0–255.
    """
    single = isinstance(sharp, np.ndarray) and sharp.ndim == 3
    x = torch.as_tensor(np.array(sharp) if isinstance(sharp, np.ndarray) else sharp)  # never a read-only view
    if single:
        x = x.permute(2, 0, 1)[None]
    out = quantize(add_noise(blur(x.double(), kernels), noise_sigma, generator)).to(torch.uint8)
    return out[0].permute(1, 2, 0).numpy() if single else out


# ---------------------------------------------------------------------------------------------------------------
# A picture of a kernel
# ---------------------------------------------------------------------------------------------------------------
# Anchor colours of a perceptually ordered dark-to-bright map (in the spirit of matplotlib's "inferno"), so that
# weight reads as brightness on any screen without matplotlib as a dependency.
_COLORMAP_ANCHORS = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    dtype=np.float64,
)


def colorize(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB uint8 with the dark-to-bright colour map."""
    v = np.clip(values, 0.0, 1.0) * (len(_COLORMAP_ANCHORS) - 1)
    lo = np.floor(v).astype(int)
    hi = np.minimum(lo + 1, len(_COLORMAP_ANCHORS) - 1)
    frac = (v - lo)[..., None]
    return np.round(_COLORMAP_ANCHORS[lo] * (1 - frac) + _COLORMAP_ANCHORS[hi] * frac).astype(np.uint8)


def kernel_to_image(kernel: np.ndarray, size: int = 256, grid: bool = True, centre_mark: bool = True) -> Image.Image:
    """A picture of a kernel a person can read: weights scaled to the peak and colour-mapped, each tap drawn as
    a square cell (nearest-neighbour upscaling to about ``size`` pixels), faint grid lines between cells, and a
    cyan outline around the centre tap so that an off-centre kernel is visible at a glance."""
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.size == 0:
        raise ValueError(f"A kernel picture needs a non-empty 2-D kernel, got shape {k.shape}.")
    peak = k.max()
    rgb = colorize(k / peak if peak > 0 else np.zeros_like(k))
    cell = max(1, size // max(k.shape))
    img = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
    if grid and cell >= 6:
        img[::cell, :] = img[::cell, :] // 2 + 30
        img[:, ::cell] = img[:, ::cell] // 2 + 30
    picture = Image.fromarray(img, mode="RGB")
    if centre_mark:
        cy, cx = k.shape[0] // 2, k.shape[1] // 2
        draw = ImageDraw.Draw(picture)
        width = max(1, cell // 8)
        draw.rectangle(
            [cx * cell, cy * cell, (cx + 1) * cell - 1, (cy + 1) * cell - 1], outline=(0, 220, 255), width=width
        )
    return picture


def kernel_spread(kernel: np.ndarray) -> tuple[float, float, float]:
    """``(σ_major, σ_minor, angle°)`` of a kernel's second moments about its centre of mass: the widths and direction
    a Gaussian of the same spread has (for a Gaussian kernel, its own parameters up to truncation)."""
    k = np.asarray(kernel, dtype=np.float64)
    k = k / k.sum()
    y, x = np.meshgrid(np.arange(k.shape[0]) - k.shape[0] // 2, np.arange(k.shape[1]) - k.shape[1] // 2, indexing="ij")
    mean_x, mean_y = (k * x).sum(), (k * y).sum()
    cxx, cyy = (k * (x - mean_x) ** 2).sum(), (k * (y - mean_y) ** 2).sum()
    cxy = (k * (x - mean_x) * (y - mean_y)).sum()
    eigenvalues, eigenvectors = np.linalg.eigh(np.array([[cxx, cxy], [cxy, cyy]]))
    angle = float(np.degrees(np.arctan2(eigenvectors[1, 1], eigenvectors[0, 1])) % 180.0)
    major, minor = np.sqrt(np.maximum(eigenvalues[::-1], 0.0))
    return float(major), float(minor), angle


def describe_kernel(kernel: np.ndarray) -> str:
    """A few words on a kernel's spread, e.g. ``σ_major 2.50 px, σ_minor 1.00 px, angle 30°``."""
    major, minor, angle = kernel_spread(kernel)
    return f"σ_major {major:.2f} px, σ_minor {minor:.2f} px, angle {angle:.0f}°"


def kernel_pair_image(estimated: np.ndarray, truth: np.ndarray, size: int = 256) -> Image.Image:
    """Two kernel pictures side by side, each on its own colour scale and labelled: "estimated" and "true"."""
    pictures = [kernel_to_image(k, size=size) for k in (estimated, truth)]
    gap, label_height = size // 16, 20
    canvas = Image.new("RGB", (2 * pictures[0].width + gap, pictures[0].height + label_height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (picture, label) in enumerate(zip(pictures, ("estimated", "true"), strict=True)):
        left = i * (picture.width + gap)
        canvas.paste(picture, (left, label_height))
        draw.text((left + 4, 4), label, fill=(0, 0, 0))
    return canvas


def kernel_grid_image(kernels: np.ndarray, rows: int, cols: int, size: int = 256) -> Image.Image:
    """The kernels of a photo's tiles (``rows·cols`` kernels, row by row) as a ``rows×cols`` grid of kernel pictures
    laid out like the tiles, about ``size`` pixels across the longer side; each on its own colour scale."""
    if len(kernels) != rows * cols:
        raise ValueError(f"A {rows}×{cols} grid needs {rows * cols} kernels, got {len(kernels)}.")
    gap = 2
    cell = max(8, (size - gap * (max(rows, cols) - 1)) // max(rows, cols))
    canvas = Image.new("RGB", (cols * cell + gap * (cols - 1), rows * cell + gap * (rows - 1)), (255, 255, 255))
    for index, kernel in enumerate(kernels):
        row, col = divmod(index, cols)
        picture = kernel_to_image(kernel, size=cell, grid=False).resize((cell, cell), Image.NEAREST)
        canvas.paste(picture, (col * (cell + gap), row * (cell + gap)))
    return canvas
