"""``deblur``: one call from a user's blurred photo to a sharp one.

The data flows one way: image → processor → kernel (given, or estimated once per image) → BIKAnet (in overlapping
tiles for large photos) → image. The ``image-deblurring`` pipeline (:mod:`bikanet_hf.pipeline_bikanet`) runs the
same steps through :func:`prepare_inputs` and :func:`restore`, so both give the same pixels with
``method="amortized"``, JPEG photos included: both tell those a raised noise level (:func:`jpeg_evidence`,
:func:`jpeg_noise_level`).
"""

from __future__ import annotations

import functools
import numbers
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .defocus_estimation import MIN_TILE, estimate_defocus
from .estimation import (
    DEFAULT_MODEL,
    DEFAULT_MOTION_MODEL,
    METHODS_FOR,
    FlatImageWarning,
    SlightBlurWarning,
    bundled_model_path,
    estimate_kernel,
)
from .image_io import is_jpeg, read_image, to_tensor
from .image_processing_bikanet import BikanetImageProcessor
from .kernels import (
    KERNEL_SIZE,
    defocus_kernel,
    defocus_radius,
    delta_kernel,
    gaussian_kernel,
    kernel_spread,
    load_kernel,
    validate_kernel,
)
from .metrics import kernel_l1
from .modeling_bikanet import (
    JPEG_NOISE_LEVEL,
    BikanetForImageDeblurring,
    check_precision,
    estimate_noise_level,
    shows_jpeg_blocks,
    tile_windows,
    user_noise_level,
)
from .motion import MOTION_KERNEL_SIZE
from .pipeline_bikanet import kernel_for_model

BLUR_TYPES = ("gaussian", "motion", "defocus", "auto")
# blur_type="auto" treats a given kernel as motion blur when it is this far (Σ|k − g|) from the Gaussian g of the
# same spread, or when its support does not fit the Gaussian model's 17×17 frame. Measured: at most 0.10 on 200
# kernels of the protocol's Gaussian family; 0.17–0.37 for straight motions of 2–16 px; 0.86–1.49 for Levin's.
MOTION_KERNEL_DISTANCE = 0.2
# ... unless it is a defocus disk, which the main model learnt too: within this distance of the disk of the same
# spread. Measured: at most 0.12 for disks of radius 1–7.5 px, 0.06–0.13 for those of radius ≥ 3 softened by a
# 0.5 px Gaussian; 0.29–0.85 for the protocol's Gaussians, 0.48–1.62 for straight motions, 0.84–1.65 for Levin's.
DEFOCUS_KERNEL_DISTANCE = 0.2
DEFAULT_TILE_SIZE = 512
# spatially_varying: how much of each tile's kernel is its own estimate, the rest being the photo's (shrinkage towards
# the photo's kernel, for estimates made from fewer edges). Measured (benchmarks/motion_varying.py, 6 photos per
# synthetic row, with the main model of 2026-12-04): the Gaussian estimator is accurate on a tile alone
# (tilted focus +2.84 dB at 1, +2.39 at 0.5); the shake's traced path is not (turning shake +0.92 at 1, +1.03 at 0.5;
# the two GoPro pairs +0.64 at 1, +1.00 at 0.5).
TILE_KERNEL_WEIGHT = {"gaussian": 1.0, "motion": 0.5}
DEFAULT_TILE_OVERLAP = 64
# Blind "auto" with one kernel: a photo whose spectrum shows no one disk may still be partly out of focus. Up to
# PARTLY_DEFOCUSED_TILES of its PARTLY_DEFOCUSED_TILE-px tiles (overlap a quarter) are tested for a disk, and a note
# suggests a kernel per tile when some show one (:func:`defocused_tiles`). Measured (2026-12-07, all tiles): some
# tile showed a disk in 10 of 10 wikiphotos10 photos with a sharp subject before a disk-blurred rest (9 of 10 saved
# as JPEG q90) and in 7 of 30 bsds500_val photos with their top two thirds disk-blurred (small photos, 6 tiles);
# in none of 1,032 others — bsds500_val sharp, its quick (clean, noisy, JPEG q90), random and motion tracks,
# bsds500_train, set14, mcmaster18, wikiphotos10 with a tilted plane of focus — but for 1 of the 10 sharp
# wikiphotos10 photos: 2 tiles of 001.png's background, a wall that the photo itself has out of focus.
PARTLY_DEFOCUSED_TILE = 256
PARTLY_DEFOCUSED_OVERLAP = PARTLY_DEFOCUSED_TILE // 4
PARTLY_DEFOCUSED_TILES = 32
# spatially_varying with tile_size="auto": the side of the tiles that get a kernel each (overlapping by a quarter of
# it). Camera shake: 384 px — smaller tiles follow finer changes but give the traced path fewer edges
# (benchmarks/results/motion_varying.md). Anything else (a lens's disk, a Gaussian): the PARTLY_DEFOCUSED_TILE-px
# tiles that the partly-out-of-focus note looks at, which follow where the focus changes — soft blur per tile against
# 384-px tiles, ΔPSNR on wikiphotos10 (2026-12-07, with tile_context_for's context): partly in focus +3.61 against
# +1.80 dB (benchmarks/results/partial_focus.md, partial_focus_384.md); a tilted plane of focus +2.78 against +2.95
# (motion_varying_tilted_tiles.md); all of the photo out of focus +8.28 against +8.58; 30 small bsds500_val photos
# with their top two thirds out of focus, which 384-px tiles split along their long side only, +0.57 against +0.03
# (without the context).
VARYING_TILE_SIZE = {"motion": 384, "gaussian": PARTLY_DEFOCUSED_TILE, "defocus": PARTLY_DEFOCUSED_TILE}


def varying_tiles(blur_type: str) -> tuple[int, int]:
    """Side and overlap of the tiles that get a kernel each with ``spatially_varying=True`` and ``tile_size="auto"``
    for a resolved ``blur_type`` (``"gaussian"``, ``"motion"`` or ``"defocus"``): ``VARYING_TILE_SIZE``, overlapping
    as :func:`tile_overlap_for` has it (a quarter)."""
    side = VARYING_TILE_SIZE[blur_type]
    return side, tile_overlap_for(side, spatially_varying=True)


def tile_overlap_for(tile_size: int | None, spatially_varying: bool) -> int:
    """The default overlap of ``tile_size`` tiles: a quarter of their side for tiles that get a kernel each (as the
    per-tile benchmarks measured them), else a quarter up to ``DEFAULT_TILE_OVERLAP`` (tiles that only bound memory;
    ``0`` for one pass)."""
    if tile_size is None:
        return 0
    return tile_size // 4 if spatially_varying else min(DEFAULT_TILE_OVERLAP, tile_size // 4)


def tile_context_for(tile_overlap: int, kernel: np.ndarray) -> int | list[int]:
    """How much of the photo around each tile it is deblurred with (``deblur_tiled``'s ``tile_context``), given the
    ``k×k`` kernel of the whole photo or the ``T×k×k`` kernels of its tiles. Tiles whose kernel is a lens's disk
    (:func:`is_defocus_kernel`) get half the overlap, as a disk is undone from further out than the overlap hides a
    tile's own border (ΔPSNR, 256-px tiles, 2026-12-07: a photo wholly out of focus +8.28 dB against +8.00 without,
    partly in focus +3.61 against +3.57, benchmarks/results/partial_focus.md; per context width: tile_context.md);
    other tiles none, as camera shake and Gaussian blur per tile gained nothing from it (motion_varying.md) and it
    costs time (32 px around a 256-px tile: 1.5× its deblurring). One kernel for the whole photo (tiles that only
    bound memory; 512 px: as good as one pass): none."""
    if kernel.ndim == 2:
        return 0
    return [tile_overlap // 2 if is_defocus_kernel(k) else 0 for k in kernel]


# `progress(fraction, stage)`: fraction of the work done in [0, 1] and a few words on what is being done.
Progress = Callable[[float, str], None]


@dataclass
class DeblurResult:
    """What :func:`deblur` returns.

    Attributes:
        image: the deblurred image, same size as the input; RGB, or RGBA with the input's alpha kept.
        kernel: the blur kernel used, estimated or given (the model's size, 17×17 by default; float64, sum 1).
        kernel_estimated: whether ``kernel`` was estimated (blind mode).
        seconds: wall time per stage (``"estimate"``, ``"deblur"``, ``"total"``).
        num_tiles: tiles the image was deblurred in (1: one pass).
        tile_kernels: with ``spatially_varying=True``, the kernel of each tile (``T×k×k``, row by row; the tiles are
            ``modeling_bikanet.tile_windows(H, W, tile_size, tile_overlap)``); else ``None``.
        notes: what was done to the inputs that the caller may want to know (e.g. a kernel cropped or normalised).
        noise_level: the noise σ (grey levels, 0–255 scale) the model was told, measured (at least
            ``JPEG_NOISE_LEVEL`` for a JPEG file) or given; ``None`` for models that do not read it.
    """

    image: Image.Image
    kernel: np.ndarray
    kernel_estimated: bool
    seconds: dict[str, float] = field(default_factory=dict)
    num_tiles: int = 1
    notes: list[str] = field(default_factory=list)
    tile_kernels: np.ndarray | None = None
    noise_level: float | None = None


@functools.lru_cache(maxsize=4)
def _load_model(path: str) -> BikanetForImageDeblurring:
    return BikanetForImageDeblurring.from_pretrained(path).for_inference()


def load_model(
    model: BikanetForImageDeblurring | str | os.PathLike | None = None, blur_type: str = "gaussian"
) -> BikanetForImageDeblurring:
    """A loaded BIKAnet, a local folder or Hub id (loaded once and cached), a bundled checkpoint's name
    (``"bikanet"``, ``"bikanet-large"``, ``"bikanet-motion"``: :data:`~bikanet_hf.estimation.BUNDLED_MODELS`), or the
    bundled default for ``blur_type`` (``"gaussian"``: the main model; ``"motion"``: the motion-blur extension's)."""
    if isinstance(model, BikanetForImageDeblurring):
        return model.for_inference()
    default = DEFAULT_MOTION_MODEL if blur_type == "motion" else DEFAULT_MODEL
    return _load_model(os.fspath(bundled_model_path(model) if model is not None else default))


def read_kernel(kernel) -> tuple[np.ndarray, list[str]]:
    """A user's kernel (array, or a .npy/.png/.mat path) validated and normalised to sum 1, and notes."""
    notes = []
    if isinstance(kernel, str | os.PathLike):
        return load_kernel(kernel), notes
    raw = np.asarray(kernel, dtype=np.float64)
    k = validate_kernel(raw, warn=False)
    if abs(raw.sum() - 1.0) > 1e-6:
        notes.append(f"The kernel summed to {raw.sum():.6g}; it was normalised to sum 1.")
    return k, notes


def _fits_main_frame(kernel: np.ndarray) -> bool:
    """Whether a kernel's weight (taps above 1% of the largest) spans at most the main model's 17 pixels."""
    rows, cols = np.nonzero(kernel > 0.01 * kernel.max())
    return max(np.ptp(rows), np.ptp(cols)) + 1 <= KERNEL_SIZE


def is_motion_kernel(kernel: np.ndarray) -> bool:
    """Whether a kernel looks like motion blur rather than a Gaussian or a defocus disk: its weight (taps above 1% of
    the largest) spans more than 17 pixels, or it differs from the Gaussian of the same spread by more than
    ``MOTION_KERNEL_DISTANCE`` (Σ|k − g|) and is no disk (:func:`is_defocus_kernel`)."""
    if not _fits_main_frame(kernel):
        return True
    size = max(kernel.shape)
    k = kernel_for_model(kernel, size)
    major, minor, angle = kernel_spread(k)
    fit = gaussian_kernel(max(major, 0.3), max(minor, 0.3), angle, size=size)  # a line has no width across
    return kernel_l1(k, fit) > MOTION_KERNEL_DISTANCE and not is_defocus_kernel(k)


def is_defocus_kernel(kernel: np.ndarray) -> bool:
    """Whether a kernel is a defocus disk: within ``DEFOCUS_KERNEL_DISTANCE`` (Σ|k − d|) of the disk d
    (:func:`~bikanet_hf.kernels.defocus_kernel`) of the same spread, in the main model's 17×17 frame."""
    if not _fits_main_frame(kernel):
        return False
    k = kernel_for_model(kernel, KERNEL_SIZE)
    radius = defocus_radius(k)
    return radius > 0 and kernel_l1(k, defocus_kernel(radius)) <= DEFOCUS_KERNEL_DISTANCE


def resolve_blur_type(blur_type: str, kernel: np.ndarray | None, model, image: np.ndarray | None = None) -> str:
    """``"gaussian"``, ``"motion"`` or ``"defocus"``: ``blur_type`` itself, or for ``"auto"``: ``"motion"`` for a
    given motion model; with a kernel, ``"gaussian"`` for a given main model, else what the kernel looks like
    (:func:`is_motion_kernel`); blind, ``"defocus"`` when the photo ``image`` (``H×W×3`` uint8) shows the spectral
    zeros of a defocus disk (:func:`~bikanet_hf.defocus_estimation.estimate_defocus`), else ``"gaussian"`` — or
    ``"auto"`` still when there is no ``image`` to look at yet (e.g. before a batch of photos is read)."""
    if blur_type not in BLUR_TYPES:
        raise ValueError(f"Unknown blur_type {blur_type!r}; choose one of {', '.join(BLUR_TYPES)}.")
    if blur_type != "auto":
        return blur_type
    if model is not None and getattr(load_model(model).config, "kernel_conditioning", "adain") == "motion_flow":
        return "motion"
    if kernel is not None:
        return "motion" if model is None and is_motion_kernel(kernel) else "gaussian"
    if image is None:
        return "auto"
    return "defocus" if min(image.shape[:2]) >= MIN_TILE and estimate_defocus(image).is_defocus else "gaussian"


def reads_as_estimate(blur_type: str) -> bool:
    """Whether BIKAnet is told a blind kernel of ``blur_type`` is an estimate (``kernel_is_estimate``): a Gaussian or
    camera-shake estimate is; a measured defocus disk is not — told as a known kernel it gave +8.06 dB on 20
    bsds500_val photos, as an estimate +5.55 (the model learnt estimates as Gaussians)."""
    return blur_type != "defocus"


def prepare_kernel(kernel, size: int) -> tuple[np.ndarray, list[str]]:
    """A user's kernel (array, or a .npy/.png/.mat path) as a ``size×size`` float64 kernel summing to 1, and notes.

    Odd sizes up to ``size`` are centred in zeros. A larger kernel is cropped to its central ``size×size`` window
    and renormalised — the model was trained on kernels of its own size (17×17 Gaussians, or 31×31 camera shake
    for the motion model), so mass outside that window is lost; the note says how much, and a ``UserWarning`` is
    raised when it is more than 5%. Bad kernels raise ``ValueError``.
    """
    k, notes = read_kernel(kernel)
    h, w = k.shape
    if h > size or w > size:
        top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
        lost = 1.0 - k[top : top + size, left : left + size].sum()
        message = (
            f"The {h}×{w} kernel was cropped to its central {size}×{size} window, which the model was trained for; "
            f"{100 * lost:.1f}% of its mass lay outside."
        )
        notes.append(message)
        if lost > 0.05:
            advice = " For camera shake, use blur_type='motion'." if size < MOTION_KERNEL_SIZE else ""
            warnings.warn(message + " Expect a softer result." + advice, stacklevel=3)
    return kernel_for_model(k, size), notes


def prepare_inputs(
    image,
    kernel=None,
    *,
    kernel_size: int,
    estimator=None,
    method: str | None = None,
    blur_type: str = "gaussian",
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, bool, list[str], float]:
    """Read the image and settle its ``kernel_size×kernel_size`` kernel (estimated when ``kernel`` is ``None``, as a
    Gaussian or, for ``blur_type="motion"``, a camera shake): ``(rgb, alpha, kernel, estimated, notes,
    estimate_seconds)``."""
    rgb, alpha = read_image(image)
    start = time.perf_counter()
    if kernel is None:
        k = estimate_kernel(rgb, method=method, estimator=estimator, for_deblurring=True, blur_type=blur_type)
        notes, estimated = [], True
        k, _ = prepare_kernel(k, size=kernel_size)
    else:
        (k, notes), estimated = prepare_kernel(kernel, size=kernel_size), False
    return rgb, alpha, k, estimated, notes, time.perf_counter() - start


def estimate_tile_kernels(
    rgb: np.ndarray,
    windows: list[tuple[int, int, int, int]],
    whole_image_kernel: np.ndarray,
    *,
    estimator=None,
    method: str | None = None,
    blur_type: str = "gaussian",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One kernel per tile window ``(top, bottom, left, right)`` of ``rgb``, at the size of ``whole_image_kernel``.

    ``blur_type="gaussian"`` or ``"motion"``: the tile's own estimate and ``whole_image_kernel`` mixed ``w : 1 − w``,
    w = ``TILE_KERNEL_WEIGHT[blur_type]``; a tile too flat to measure (:class:`FlatImageWarning`) or too small for the
    method takes ``whole_image_kernel``. ``"defocus"`` (a photo partly in focus): the defocus disk the tile's spectrum
    shows (:attr:`~bikanet_hf.defocus_estimation.DefocusEstimate.is_defocus`), else a delta, which leaves the tile
    about as it is — a sharp subject, a tile too flat or too small to measure, or blur of another kind. ``"auto"``:
    the disk where a tile shows one, else its Gaussian estimate as for ``"gaussian"``. ``progress(done, total)`` is
    called after each tile. Returns the ``T×k×k`` kernels, whether each is an estimate (``T`` bools: BIKAnet's
    ``kernel_is_estimate``; a measured disk or a delta is told as a known kernel, see :func:`reads_as_estimate`) and
    notes."""
    size = whole_image_kernel.shape[0]
    own_type = "gaussian" if blur_type == "auto" else blur_type
    weight = TILE_KERNEL_WEIGHT.get(own_type, 1.0)
    kernels, estimates, radii, fallbacks, slight = [], [], [], 0, 0
    for index, (top, bottom, left, right) in enumerate(windows):
        tile = rgb[top:bottom, left:right]
        radii.append(tile_defocus_radius(tile) if blur_type in ("defocus", "auto") else None)
        if radii[-1] is not None or blur_type == "defocus":
            kernels.append(delta_kernel(size) if radii[-1] is None else defocus_kernel(radii[-1], size))
            estimates.append(False)
        else:
            own, own_slight = _own_estimate(tile, estimator=estimator, method=method, blur_type=own_type)
            fallbacks, slight = fallbacks + (own is None), slight + own_slight
            own = whole_image_kernel if own is None else prepare_kernel(own, size)[0]
            kernels.append(weight * own + (1 - weight) * whole_image_kernel)
            estimates.append(True)
        if progress is not None:
            progress(index + 1, len(windows))
    notes = [_tile_note(blur_type, len(windows), [r for r in radii if r is not None], weight)]
    if fallbacks:
        notes.append(f"{fallbacks} tile(s) too flat or small to measure took the whole image's kernel.")
    if slight:
        notes.append(
            f"{slight} of {_tiles(len(windows))} {'shows' if slight == 1 else 'show'} very little blur (as sharp "
            f"parts of a photo do): deblurring changes {'it' if slight == 1 else 'them'} little."
        )
    return np.stack(kernels), np.array(estimates), notes


def defocused_tiles(rgb: np.ndarray) -> tuple[int, int]:
    """How many of a photo's ``PARTLY_DEFOCUSED_TILE``-px tiles show a lens's disk (:func:`tile_defocus_radius`),
    and how many were looked at (at most ``PARTLY_DEFOCUSED_TILES``, evenly spread; none for a photo of one tile,
    whose whole-photo test says it all)."""
    windows = tile_windows(*rgb.shape[:2], PARTLY_DEFOCUSED_TILE, PARTLY_DEFOCUSED_OVERLAP)
    if len(windows) < 2:
        return 0, 0
    if len(windows) > PARTLY_DEFOCUSED_TILES:
        picks = np.linspace(0, len(windows) - 1, PARTLY_DEFOCUSED_TILES).round().astype(int)
        windows = [windows[i] for i in picks]
    found = sum(tile_defocus_radius(rgb[top:bottom, left:right]) is not None for top, bottom, left, right in windows)
    return found, len(windows)


def tile_defocus_radius(tile: np.ndarray) -> float | None:
    """The radius of the defocus disk a tile's spectrum shows (:func:`estimate_defocus`), or ``None`` when it shows
    none or is smaller than ``MIN_TILE``."""
    estimate = estimate_defocus(tile) if min(tile.shape[:2]) >= MIN_TILE else None
    return estimate.radius if estimate is not None and estimate.is_defocus else None


def _own_estimate(tile: np.ndarray, **options) -> tuple[np.ndarray | None, bool]:
    """A tile's own kernel estimate, or ``None`` when it is too flat to measure or smaller than the method needs, and
    whether it shows very little blur (:class:`SlightBlurWarning`)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            k = estimate_kernel(tile, for_deblurring=True, **options)
        except ValueError:  # smaller than the method needs
            return None, False
    if any(issubclass(w.category, FlatImageWarning) for w in caught):
        return None, False
    return k, any(issubclass(w.category, SlightBlurWarning) for w in caught)


def _tiles(count: int) -> str:
    return f"{count} tile" if count == 1 else f"{count} tiles"


def _tile_note(blur_type: str, num_tiles: int, radii: list[float], weight: float) -> str:
    """The note on a kernel per tile: the disks found (defocus, auto) and what the other tiles took."""
    if blur_type in ("gaussian", "motion") or (blur_type == "auto" and not radii):
        mixed = f", each {weight:.0%} its own estimate and {1 - weight:.0%} the photo's" if weight < 1 else ""
        none = "; none shows a defocus disk" if blur_type == "auto" else ""
        return f"One kernel estimated per tile ({_tiles(num_tiles)}){mixed}{none}."
    note = f"A defocus disk measured per tile ({_tiles(num_tiles)}): found in {len(radii)}"
    if radii:
        low, high = f"{min(radii):.1f}", f"{max(radii):.1f}"
        note += f" (radius {low} px)" if low == high else f" (radius {low}–{high} px)"
    if len(radii) == num_tiles:
        return note + ", every one."
    if blur_type == "defocus":
        return note + "; the others, which show none, are left about as they are."
    return note + "; the others took a Gaussian estimate each."


def restore(
    model: BikanetForImageDeblurring,
    rgb: np.ndarray,
    kernel: np.ndarray,
    *,
    tile_size: int | None = DEFAULT_TILE_SIZE,
    tile_overlap: int = DEFAULT_TILE_OVERLAP,
    progress: Callable[[int, int], None] | None = None,
    kernel_is_estimate: bool | np.ndarray = False,
    motion_flow: torch.Tensor | None = None,
    self_ensemble: bool = False,
    precision: str = "float32",
    noise_level: torch.Tensor | None = None,
    tile_context: int | list[int] | None = None,
) -> tuple[np.ndarray, int, float | None]:
    """Deblur an ``H×W×3`` uint8 image with a kernel (``k×k``, or ``T×k×k``: one per tile of ``tile_windows``;
    ``kernel_is_estimate``: a blind estimate, for models that read it, or ``T`` bools, one per tile kernel;
    ``motion_flow``: a ``1×2×H×W`` flow for motion-flow models instead of the kernel's own; ``self_ensemble``,
    ``precision``, ``noise_level``, ``tile_context``: see ``deblur_tiled``; by default :func:`tile_context_for` the
    kernels: context for tiles given a lens's disk only); returns the uint8 result, the number of tiles used (per
    pass) and, for models that read it, the noise σ the model was given in grey levels (measured once on the whole
    image unless ``noise_level`` is given), else ``None``."""
    device = next(model.parameters()).device
    processor = BikanetImageProcessor()
    pixel_values = torch.from_numpy(processor.to_array(rgb)).permute(2, 0, 1)[None].to(device)
    kernel_tensor = torch.from_numpy(np.ascontiguousarray(kernel)).float()[None].to(device)
    if isinstance(kernel_is_estimate, np.ndarray):
        kernel_is_estimate = torch.from_numpy(kernel_is_estimate)[None].to(device)
    if noise_level is not None:
        noise_level = noise_level.to(device)
    elif model.config.noise_level_input:
        noise_level = estimate_noise_level(pixel_values)
    tiles = []

    def count(done: int, total: int) -> None:
        tiles[:] = [total]
        if progress is not None:
            progress(done, total)

    output = model.deblur_tiled(
        pixel_values,
        kernel_tensor,
        tile_size,
        tile_overlap,
        count,
        motion_flow=None if motion_flow is None else motion_flow.to(device),
        kernel_is_estimate=kernel_is_estimate,
        self_ensemble=self_ensemble,
        precision=precision,
        noise_level=noise_level,
        tile_context=tile_context_for(tile_overlap, kernel) if tile_context is None else tile_context,
    )
    del pixel_values
    # The processor's postprocess, in place: a 24-megapixel result would otherwise be copied three times.
    restored = output[0].float().clamp_(0, 1).mul_(255).round_().to(torch.uint8)
    level = None if noise_level is None else noise_level.item() * 255
    return restored.permute(1, 2, 0).cpu().numpy(), tiles[0] // (8 if self_ensemble else 1), level


def jpeg_evidence(image, rgb: np.ndarray) -> str | None:
    """Why the photo's compression artefacts are to be told to BIKAnet as noise, as words for a note: ``image`` (what
    :func:`read_image` took) is a JPEG file or a PIL image read from one (:func:`~bikanet_hf.image_io.is_jpeg`), or
    its pixels ``rgb`` (``H×W×3`` uint8) show a JPEG's 8×8 block edges, as those of an array read from a JPEG do
    (:func:`~bikanet_hf.modeling_bikanet.shows_jpeg_blocks`); ``None`` for neither."""
    if is_jpeg(image):
        return "is a JPEG"
    if bool(shows_jpeg_blocks(to_tensor(rgb)[None])[0]):
        return "shows a JPEG's 8×8 blocks"
    return None


def jpeg_noise_level(rgb: np.ndarray, evidence: str = "is a JPEG") -> tuple[torch.Tensor, str | None]:
    """The noise level to tell BIKAnet for a JPEG photo (``H×W×3`` uint8): the measured one, at least
    ``JPEG_NOISE_LEVEL`` grey levels (``forward``'s ``noise_level``, [0, 1] scale), and a note when it was raised
    (``evidence``: :func:`jpeg_evidence`'s words)."""
    measured = float(estimate_noise_level(to_tensor(rgb)[None])[0]) * 255
    if measured >= JPEG_NOISE_LEVEL:
        return torch.tensor([measured / 255]), None
    note = (
        f"The photo {evidence}: the model was told a noise level of {JPEG_NOISE_LEVEL:g} grey levels (measured "
        f"{measured:.1f}), as compression artefacts are noise to it; pass noise_level to choose another."
    )
    return torch.tensor([JPEG_NOISE_LEVEL / 255]), note


def apply_strength(original: np.ndarray, restored: np.ndarray, strength: float) -> np.ndarray:
    """``original + strength·(restored − original)`` for two uint8 images, rounded back to uint8: part of the
    correction (0: the original, 1: the restored image). ``ValueError`` outside [0, 1]."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}.")
    blended = original + np.float32(strength) * (restored.astype(np.float32) - original)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def deblur(
    image,
    kernel=None,
    *,
    model=None,
    estimator=None,
    method: str | None = None,
    blur_type: str = "auto",
    device: str | torch.device | None = None,
    tile_size: int | str | None = "auto",
    tile_overlap: int | None = None,
    progress: Progress | None = None,
    self_ensemble: bool = False,
    spatially_varying: bool = False,
    strength: float = 1.0,
    precision: str = "auto",
    noise_level: float | None = None,
) -> DeblurResult:
    """Deblur a photo; blind (the kernel is estimated) when ``kernel`` is ``None``.

    Args:
        image: a path, a PIL image, or an ``H×W`` / ``H×W×3`` / ``H×W×4`` uint8 (or uint16, or float in [0, 1])
            numpy array. Alpha is kept; EXIF orientation is applied.
        kernel: the blur kernel if known — an array or a ``.npy`` / ``.png`` / ``.mat`` file, any odd size
            (see :func:`prepare_kernel`); ``None`` estimates it once for the whole image.
        model: BIKAnet — a loaded model, a local folder, a Hub id, or a bundled checkpoint's name: ``"bikanet"``
            (the default for Gaussian blur), ``"bikanet-large"`` (a bigger network of the same design: a little
            sharper on Gaussian blur, not trained on defocus disks, about 5× slower on a CPU) or
            ``"bikanet-motion"``; default: the bundled checkpoint for the blur type (cached).
        estimator: the kernel estimator for blind mode (same forms); default: the bundled one for the blur type.
        method: kernel estimation method (see :func:`bikanet_hf.estimate_kernel`); default: the best for the blur
            type (``"amortized"`` for Gaussian blur, ``"edges"`` for camera shake).
        blur_type: ``"auto"`` (default): the kind the given ``model`` was trained on, else motion when the given
            kernel is neither Gaussian-like nor a defocus disk (:func:`is_motion_kernel`); blind, defocus when the
            photo's spectrum shows a disk's zeros in every textured quarter
            (:attr:`~bikanet_hf.defocus_estimation.DefocusEstimate.is_defocus`; on 2,940 sharp, Gaussian-blurred,
            shaken or partly sharp test photos, clean, noisy or JPEG, it never did), else Gaussian — camera shake needs
            ``"motion"``; with a Gaussian ``method`` (amortized, gan, refine), Gaussian; with ``spatially_varying``,
            decided per tile: a disk where the tile's spectrum shows one, else a Gaussian estimate. When the photo
            shows no one disk but some of its tiles do (:func:`defocused_tiles`), a note suggests a kernel per tile.
            Or one kind: ``"gaussian"`` (the main model, 17×17 kernels), ``"motion"`` (the motion-blur extension:
            camera shake up to 31×31; blind, it traces the shake's path by edge prediction) or ``"defocus"`` (the
            main model; blind, the disk of a lens out of focus whose radius the photo's spectrum gives,
            :mod:`~bikanet_hf.defocus_estimation`, told to the model as a known kernel; with ``spatially_varying``
            a disk per tile where the tile shows one: a photo partly in focus).
        device: where to run BIKAnet (``"cpu"``, ``"cuda"``…); default: where the model already is.
        tile_size: side of the overlapping tiles large images are processed in (bounded memory); ``None``: one pass;
            ``"auto"`` (default): ``DEFAULT_TILE_SIZE`` (512 px), or with ``spatially_varying`` the tiles measured best
            for a kernel each (:func:`varying_tiles`: 384 px for camera shake, else 256 px).
        tile_overlap: overlap of neighbouring tiles in pixels (seams are blended inside it); default: a quarter of
            ``tile_size``, up to 64 px unless ``spatially_varying`` (:func:`tile_overlap_for`).
        progress: ``progress(fraction, stage)`` called as the work advances.
        self_ensemble: average BIKAnet's results for the image and kernel flipped and turned together in all 8
            ways: +0.13 dB with a known kernel, +0.10 dB blind on bsds500_val quick
            (``benchmarks/results/self_ensemble.md``), for 8× the deblurring time.
        spatially_varying: blind only: estimate a kernel for each tile (from that tile) as well as the whole
            image's, and deblur each tile with its own (camera shake: the mean of the two, ``TILE_KERNEL_WEIGHT``,
            as a single tile's traced path is noisy) — for blur that changes across the photo (a camera that
            turned, or parts at different depths), in the tiles ``tile_size`` gives (by default those the app uses:
            384 px for camera shake, 256 px for the rest), tiles given a lens's disk deblurred with half the overlap's
            width of the photo around them (:func:`tile_context_for`); seconds per tile for camera shake. Measured in
            ``benchmarks/results/motion_varying.md``. Flat tiles take the whole image's kernel. With
            ``blur_type="defocus"``, a photo partly in focus: each tile gets the disk its spectrum shows, and tiles
            that show none (a sharp subject, a flat sky) a delta, which leaves them about as they are; with
            ``"auto"``, tiles that show a disk get it and the others their Gaussian estimate
            (:func:`estimate_tile_kernels`; ``benchmarks/results/partial_focus.md``).
        strength: how much of the correction to keep, from 0 (the input unchanged) to 1 (BIKAnet's result, the
            default): ``input + strength·(result − input)``, rounded to 8 bits — to tone down a result that looks
            over-sharpened, e.g. when the photo was barely blurred.
        precision: ``"auto"`` (default): BIKAnet runs under bfloat16 autocast where the device computes bf16
            natively (a CPU with AVX-512 BF16 or AMX, a recent GPU) — 512×512 on 2 CPU threads in 0.38 s instead of
            0.89 s, for −0.008 dB on bsds500_val quick (``benchmarks/results/bikanet_speed_avx512_one_pass.json``) —
            and in float32 elsewhere; ``"float32"`` or ``"bfloat16"`` to choose. The kernel estimate is float32
            either way.
        noise_level: for models that read the photo's noise level (the default ``"bikanet"``): its noise σ in grey
            levels (0–255 scale), as FFDNet's noise map — larger values smooth more, 0 keeps fine texture that the
            measurement takes for noise; default: measured on the whole photo
            (:func:`~bikanet_hf.modeling_bikanet.estimate_noise_level`), at least ``JPEG_NOISE_LEVEL`` (2) for a
            JPEG file or pixels that show a JPEG's blocks, whose compression artefacts the model would sharpen
            (:func:`jpeg_evidence`; a note says so). ``ValueError`` for other models.

    Returns:
        A :class:`DeblurResult` (``.image``, ``.kernel``, ``.seconds``, …).
    """
    start = time.perf_counter()
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}.")
    check_precision(precision)
    pixels = isinstance(tile_size, numbers.Integral) and not isinstance(tile_size, bool) and tile_size > 0
    if not (pixels or tile_size is None or tile_size == "auto"):
        raise ValueError(f'tile_size must be a whole number of pixels, None (one pass) or "auto", got {tile_size!r}.')
    if spatially_varying and (kernel is not None or self_ensemble):
        raise ValueError("spatially_varying estimates a kernel per tile: it takes no kernel and no self_ensemble.")
    if progress is not None:
        progress(0.0, "estimating the blur kernel" if kernel is None else "preparing")
    if kernel is not None and blur_type == "auto":
        kernel, read_notes = read_kernel(kernel)
    else:
        read_notes = []
    rgb, alpha = read_image(image)
    asked, detect_start = blur_type, time.perf_counter()
    look_for_disks = method in (None, *METHODS_FOR["defocus"])
    blur_type = resolve_blur_type(blur_type, kernel, model, rgb if look_for_disks and not spatially_varying else None)
    if blur_type == "auto":  # blind, spatially varying or with a Gaussian method: the photo's kernel is Gaussian
        blur_type = "gaussian"
    # Blind "auto" that found no one disk (or did not look: per tile) and no Gaussian method: disks may show in tiles.
    disks_in_tiles = kernel is None and asked == "auto" and blur_type == "gaussian" and look_for_disks
    partly = []  # one kernel: do some tiles show a disk?
    if disks_in_tiles and not spatially_varying:
        found, looked = defocused_tiles(rgb)
        if found:  # a kernel per tile, in the default tiles, looks at these tiles (varying_tiles)
            partly.append(
                f"{found} of {looked} {PARTLY_DEFOCUSED_TILE}-px tiles looked at show a lens out of focus and the "
                "others not: if the photo is partly out of focus, a kernel per tile (spatially_varying=True; "
                "--spatially-varying) deblurs each part with its own."
            )
    detect_seconds = time.perf_counter() - detect_start  # blind "auto": looking for a defocus disk
    bikanet = load_model(model, blur_type)
    noise_input = user_noise_level(noise_level, bikanet.config)
    jpeg = jpeg_evidence(image, rgb) if noise_input is None and bikanet.config.noise_level_input else None
    noise_input, jpeg_note = jpeg_noise_level(rgb, jpeg) if jpeg else (noise_input, None)
    with warnings.catch_warnings():
        if spatially_varying:  # the photo's kernel only stands in for flat tiles; a note says which tiles are slight
            warnings.simplefilter("ignore", SlightBlurWarning)
        rgb, _, k, estimated, notes, estimate_seconds = prepare_inputs(
            rgb,
            kernel,
            kernel_size=bikanet.config.kernel_size,
            estimator=estimator,
            method=method,
            blur_type=blur_type,
        )
    estimate_seconds += detect_seconds
    if blur_type == "defocus" and estimated and not spatially_varying:
        how = "The photo shows a lens out of focus" if asked == "auto" else "Defocus"
        notes.append(f"{how}: a disk of radius ≈ {defocus_radius(k):.1f} px, measured from its spectrum.")
    notes = read_notes + notes + partly + ([jpeg_note] if jpeg_note else [])
    if tile_size == "auto":
        tile_size = varying_tiles(blur_type)[0] if spatially_varying else DEFAULT_TILE_SIZE
    if tile_overlap is None:
        tile_overlap = tile_overlap_for(tile_size, spatially_varying)
    tile_kernels, tile_estimates = None, None
    if spatially_varying:
        tile_start = time.perf_counter()
        windows = tile_windows(*rgb.shape[:2], tile_size, tile_overlap)

        def estimate_progress(done: int, total: int) -> None:
            if progress is not None:
                progress(done / total, f"estimating the blur of each tile ({done} of {total})")

        tile_type = "auto" if disks_in_tiles else blur_type  # a disk where a tile shows one, else a Gaussian
        tile_kernels, tile_estimates, tile_notes = estimate_tile_kernels(
            rgb, windows, k, estimator=estimator, method=method, blur_type=tile_type, progress=estimate_progress
        )
        notes += tile_notes
        estimate_seconds += time.perf_counter() - tile_start
    if device is not None:
        bikanet.to(device)

    def tile_progress(done: int, total: int) -> None:
        if progress is not None:
            progress(done / total, f"deblurring (tile {done} of {total})" if total > 1 else "deblurring")

    deblur_start = time.perf_counter()
    restored, num_tiles, level = restore(
        bikanet,
        rgb,
        k if tile_kernels is None else tile_kernels,
        tile_size=tile_size,
        tile_overlap=tile_overlap,
        progress=tile_progress,
        kernel_is_estimate=estimated and reads_as_estimate(blur_type) if tile_estimates is None else tile_estimates,
        self_ensemble=self_ensemble,
        precision=precision,
        noise_level=noise_input,
    )
    if self_ensemble:
        notes.append("Averaged over the image flipped and turned 8 ways (self-ensemble).")
    if strength < 1.0:
        restored = apply_strength(rgb, restored, strength)
        notes.append(f"Applied at {strength:.0%} strength.")
    deblur_seconds = time.perf_counter() - deblur_start
    result = Image.fromarray(np.dstack([restored, alpha]) if alpha is not None else restored)
    seconds = {"estimate": estimate_seconds, "deblur": deblur_seconds, "total": time.perf_counter() - start}
    return DeblurResult(result, k, estimated, seconds, num_tiles, notes, tile_kernels, level)
