"""BIKAnet deblurring demo: a Gradio app for blind and non-blind deblurring.

Three tabs share one results panel:

* **Blind** — estimate the blur kernel from the photo itself, then deblur with it (the default).
* **Known kernel** — deblur a photo whose blur you know: a Gaussian, a straight motion or a defocus disk from
  sliders, or a kernel file (camera-shake kernels up to 31×31 go to the motion model).
* **Try it on a sharp photo** — the app blurs a sharp photo as the benchmark does, deblurs it (blind, or with the
  true kernel) and scores both against the original.

Each tab is one ``*_tab`` function that builds its controls and wires its button to a handler of the same shape.
Large photos are deblurred in overlapping tiles (``bikanet_hf.deblurring.restore``) with a progress bar.

Run ``python app.py`` (http://127.0.0.1:7860; ``PORT`` changes the port). The models load once, at import:
BIKAnet from ``$BIKANET_MODEL`` (a folder, or a bundled checkpoint's name: ``bikanet-large`` is a little sharper and
about 5× slower) or the checkpoint bundled in
``bikanet_hf/checkpoints/bikanet``; the motion-blur model from ``$BIKANET_MOTION_MODEL`` or
``bikanet_hf/checkpoints/bikanet-motion``; the kernel estimators from ``$BIKANET_ESTIMATOR`` /
``$BIKANET_MOTION_ESTIMATOR``, else the ``kernel_estimator`` folder inside each model.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import bikanet_hf
from bikanet_hf import BikanetForImageDeblurring, image_io, kernels, metrics, motion
from bikanet_hf.deblurring import (
    DEFAULT_TILE_OVERLAP,
    DEFAULT_TILE_SIZE,
    JPEG_NOISE_LEVEL,
    VARYING_TILE_SIZE,
    apply_strength,
    defocused_tiles,
    estimate_tile_kernels,
    is_motion_kernel,
    jpeg_evidence,
    jpeg_noise_level,
    reads_as_estimate,
    resolve_blur_type,
    restore,
)
from bikanet_hf.defocus_estimation import MIN_TILE
from bikanet_hf.estimation import (
    DEFAULT_MODEL,
    DEFAULT_MOTION_MODEL,
    FlatImageWarning,
    SlightBlurWarning,
    bundled_model_path,
    estimate_kernel,
    known_blur_estimator,
    load_estimator,
)
from bikanet_hf.modeling_bikanet import motion_flow_from_kernel, tile_windows, user_noise_level
from bikanet_hf.pipeline_bikanet import kernel_for_model

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # else gradio contacts api.gradio.app at start-up

import gradio as gr  # noqa: E402  (after the environment variable above)

# ---------------------------------------------------------------------------------------------------------------
# Settings and the model (loaded once, at import)
# ---------------------------------------------------------------------------------------------------------------
PACKAGE_DIR = Path(bikanet_hf.__file__).resolve().parent


def _model_path(variable: str, default: Path) -> Path:
    """The folder (or Hub id) a setting names: a path, or a bundled checkpoint's name such as ``bikanet-large``."""
    value = os.environ.get(variable)
    return Path(bundled_model_path(value)) if value else default


MODEL_PATH = _model_path("BIKANET_MODEL", DEFAULT_MODEL)
MOTION_MODEL_PATH = _model_path("BIKANET_MOTION_MODEL", DEFAULT_MOTION_MODEL)
EXAMPLES_DIR = PACKAGE_DIR / "examples"
MIN_SIDE = 16  # smaller pictures carry too little to deblur, and SSIM needs an 11-pixel window
SIGMA_RANGE = kernels.RANDOM_SIGMA_RANGE  # the kernel family the model was trained on: σ in [0.6, 4.0] px
KERNEL_FROM_SLIDERS = "Gaussian (sliders)"
KERNEL_FROM_MOTION = "Straight motion (sliders)"
KERNEL_FROM_DEFOCUS = "Defocus disk (slider)"
KERNEL_FROM_FILE = "Kernel file"
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "bikanet-app-outputs"
OUTPUT_MAX_AGE_S = 3600


def _max_pixels_from_env() -> int:
    raw = os.environ.get("BIKANET_MAX_PIXELS", "4000000")
    try:
        value = int(float(raw))
    except ValueError:
        raise ValueError(f"BIKANET_MAX_PIXELS must be a number of pixels, got {raw!r}.") from None
    if value <= 0:
        raise ValueError(f"BIKANET_MAX_PIXELS must be positive, got {raw!r}.")
    return value


MAX_PIXELS = _max_pixels_from_env()


def load_model(path: str | os.PathLike) -> BikanetForImageDeblurring:
    """The model ready for inference (``for_inference``), or a ``FileNotFoundError`` that names the folder."""
    path = Path(path)
    missing = [name for name in ("config.json", "preprocessor_config.json") if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"No BIKAnet checkpoint at {path} (missing {', '.join(missing)}). Set BIKANET_MODEL to a folder holding "
            "config.json, model.safetensors and preprocessor_config.json, such as the --output_dir of "
            "train/train_bikanet.py, or put the shipped checkpoint in bikanet_hf/checkpoints/bikanet."
        )
    return BikanetForImageDeblurring.from_pretrained(path).for_inference()


MODEL = load_model(MODEL_PATH)
KERNEL_SIZE = MODEL.config.kernel_size
MOTION_MODEL = load_model(MOTION_MODEL_PATH)
MOTION_KERNEL_SIZE = MOTION_MODEL.config.kernel_size
MOTION_LENGTH_RANGE = (1.0, 25.0)  # straight motions the motion model was trained on (camera shake up to 25 px)
ESTIMATOR = load_estimator(os.environ.get("BIKANET_ESTIMATOR") or MODEL_PATH / "kernel_estimator")
MOTION_ESTIMATOR = load_estimator(
    os.environ.get("BIKANET_MOTION_ESTIMATOR") or MOTION_MODEL_PATH / "kernel_estimator", blur_type="motion"
)
KNOWN_BLUR_ESTIMATOR = known_blur_estimator(ESTIMATOR)  # "surely blurred": estimates under 0.8 px narrowed less
TILE_SIZE, TILE_OVERLAP = DEFAULT_TILE_SIZE, DEFAULT_TILE_OVERLAP  # large photos: overlapping tiles (bounded memory)


# ---------------------------------------------------------------------------------------------------------------
# Pure helpers: files, kernels, deblurring (no gradio components; unit-tested directly)
# ---------------------------------------------------------------------------------------------------------------
def _path_and_name(value: Any) -> tuple[str, str] | None:
    """``(server path, name the user gave the file)`` of an upload, whatever form gradio hands it in.

    The deblurring events run with ``preprocess=False`` (see ``_known_kernel_tab``), so uploads arrive as
    ``FileData`` dicts; previews and direct calls pass plain paths.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        path, name = value.get("path"), value.get("orig_name")
    elif isinstance(value, str | os.PathLike):
        path, name = os.fspath(value), None
    else:  # a FileData object
        path, name = getattr(value, "path", None), getattr(value, "orig_name", None)
    if not path:
        return None
    return path, name or os.path.basename(path)


def _quoted(name: str) -> str:
    """A file name ready for an error message (gradio renders those as HTML)."""
    return f"“{html.escape(name)}”"


def _safe_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._")[:64]
    return stem or "photo"


def read_photo(upload: Any, what: str = "photo") -> tuple[np.ndarray, str]:
    """The uploaded picture as ``H×W×3`` uint8 RGB and a file-name stem, or a ``gr.Error`` a person understands."""
    found = _path_and_name(upload)
    if found is None:
        raise gr.Error(f"Please upload a {what} first.", print_exception=False)
    path, name = found
    # Check the size from the header before decoding, so a huge upload is refused without filling the memory.
    try:
        with Image.open(path) as im:
            width, height = im.size
    except Exception:  # not an image, empty, ...: load_rgb below says which
        width = height = 0
    if width * height > MAX_PIXELS:
        raise gr.Error(
            f"The {what} {_quoted(name)} is {width}×{height} pixels ({width * height / 1e6:.1f} megapixels); this "
            f"demo handles up to {MAX_PIXELS / 1e6:.1f} megapixels. Please downscale or crop it, or use the "
            "bikanet command line or Python API, which have no such limit.",
            print_exception=False,
        )
    try:
        rgb = image_io.load_rgb(path)
    except ValueError as err:
        reason = str(err).replace(f"{path}: ", "").replace(path, name)
        raise gr.Error(
            f"Could not read {_quoted(name)} as a picture: {html.escape(reason)} Please upload a PNG, JPEG, WebP, "
            "BMP or TIFF image.",
            print_exception=False,
        ) from None
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise gr.Error(
            f"The {what} {_quoted(name)} is only {width}×{height} pixels; please upload one at least "
            f"{MIN_SIDE}×{MIN_SIDE}.",
            print_exception=False,
        )
    return rgb, _safe_stem(name)


def kernel_from_sliders(sigma_major: float, sigma_minor: float, angle: float) -> tuple[np.ndarray, str]:
    """The ``KERNEL_SIZE²`` anisotropic Gaussian of the sliders and a one-line description of it.

    σ minor larger than σ major is the same blur with the roles swapped: the two are swapped (the slider says so).
    """
    try:
        major, minor, theta = float(sigma_major), float(sigma_minor), float(angle)
    except (TypeError, ValueError):
        raise gr.Error("The kernel widths and angle must be numbers.", print_exception=False) from None
    low, high = SIGMA_RANGE
    for label, value in (("σ major", major), ("σ minor", minor)):
        if not low <= value <= high:
            raise gr.Error(
                f"{label} must be between {low} and {high} pixels (the blur the model was trained on), got {value:g}.",
                print_exception=False,
            )
    if not 0.0 <= theta <= 180.0:
        raise gr.Error(f"The angle must be between 0 and 180 degrees, got {theta:g}.", print_exception=False)
    if minor > major:
        major, minor = minor, major
    kernel = kernels.gaussian_kernel(major, minor, theta, size=KERNEL_SIZE)
    if major == minor:
        return kernel, f"Gaussian, σ {major:g} px (round)"
    return kernel, f"Gaussian, σ {major:g} × {minor:g} px at {theta:g}°"


def kernel_from_motion(length: float, angle: float) -> tuple[np.ndarray, str]:
    """A straight motion of ``length`` pixels at ``angle`` degrees (``MOTION_KERNEL_SIZE²``) and a description."""
    try:
        length, theta = float(length), float(angle)
    except (TypeError, ValueError):
        raise gr.Error("The motion length and angle must be numbers.", print_exception=False) from None
    low, high = MOTION_LENGTH_RANGE
    if not low <= length <= high:
        raise gr.Error(
            f"The motion length must be between {low:g} and {high:g} pixels (the blur the motion model was trained "
            f"on), got {length:g}.",
            print_exception=False,
        )
    if not 0.0 <= theta <= 180.0:
        raise gr.Error(f"The angle must be between 0 and 180 degrees, got {theta:g}.", print_exception=False)
    kernel = motion.linear_motion_kernel(length, theta, MOTION_KERNEL_SIZE)
    return kernel, f"straight motion, {length:g} px at {theta:g}°"


def kernel_from_defocus(radius: float) -> tuple[np.ndarray, str]:
    """A defocus disk of ``radius`` pixels (``KERNEL_SIZE²``) and a description."""
    try:
        radius = float(radius)
    except (TypeError, ValueError):
        raise gr.Error("The defocus radius must be a number.", print_exception=False) from None
    low, high = kernels.DEFOCUS_RADIUS_RANGE
    if not low <= radius <= high:
        raise gr.Error(
            f"The defocus radius must be between {low:g} and {high:g} pixels (the blur the model was trained on), "
            f"got {radius:g}.",
            print_exception=False,
        )
    return kernels.defocus_kernel(radius, KERNEL_SIZE), f"defocus disk, radius {radius:g} px"


def kernel_from_file(upload: Any) -> tuple[np.ndarray, str]:
    """The kernel of a ``.npy`` / ``.png`` / ``.mat`` file (any odd size up to ``MOTION_KERNEL_SIZE``) and a
    description."""
    found = _path_and_name(upload)
    if found is None:
        raise gr.Error(
            "Please upload a kernel file (.npy, .png or .mat), or choose the sliders.", print_exception=False
        )
    path, name = found
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            found_kernels = kernels.load_kernels(path)
        except (ValueError, OSError) as err:  # OSError: h5py on a file that is neither MATLAB v5 nor v7.3
            reason = str(err).replace(path, name)
            raise gr.Error(
                f"Could not use {_quoted(name)} as a blur kernel: {html.escape(reason)}", print_exception=False
            ) from None
        except Exception:  # scipy / h5py can fail in many ways on a damaged file
            raise gr.Error(
                f"Could not read {_quoted(name)} as a blur kernel: the file is damaged or not a .npy, .png or .mat "
                "kernel.",
                print_exception=False,
            ) from None
    kernel = found_kernels[0]
    height, width = kernel.shape
    if max(height, width) > MOTION_KERNEL_SIZE:
        raise gr.Error(
            f"The kernel in {_quoted(name)} is {height}×{width}; the models handle kernels up to "
            f"{MOTION_KERNEL_SIZE}×{MOTION_KERNEL_SIZE} (camera shake up to about 25 px). Crop it around its "
            "centre, or use the sliders.",
            print_exception=False,
        )
    notes = [f"{height}×{width} kernel from {name}"]
    if len(found_kernels) > 1:
        notes.append(f"the first of its {len(found_kernels)} kernels")
    if any("normalised" in str(w.message) for w in caught):
        notes.append("normalised to sum 1")
    return kernel, ", ".join(notes)


def choose_kernel(
    source: str,
    sigma_major: float,
    sigma_minor: float,
    angle: float,
    kernel_file: Any,
    motion_length: float = 10.0,
    defocus_radius: float = 3.0,
) -> tuple[np.ndarray, str]:
    """The kernel the user chose in a tab's kernel controls, and its description."""
    if source == KERNEL_FROM_SLIDERS:
        return kernel_from_sliders(sigma_major, sigma_minor, angle)
    if source == KERNEL_FROM_MOTION:
        return kernel_from_motion(motion_length, angle)
    if source == KERNEL_FROM_DEFOCUS:
        return kernel_from_defocus(defocus_radius)
    if source == KERNEL_FROM_FILE:
        return kernel_from_file(kernel_file)
    choices = (KERNEL_FROM_SLIDERS, KERNEL_FROM_MOTION, KERNEL_FROM_DEFOCUS, KERNEL_FROM_FILE)
    raise gr.Error(
        f"Choose the kernel source: {', '.join(map(repr, choices[:-1]))} or {choices[-1]!r}.", print_exception=False
    )


def model_for(kernel: np.ndarray) -> tuple[BikanetForImageDeblurring, np.ndarray]:
    """The model that fits a kernel — the Gaussian BIKAnet, or the motion model for camera shake (a kernel wider
    than 17×17 or far from a Gaussian) — and the kernel in that model's frame."""
    chosen = MOTION_MODEL if is_motion_kernel(kernel) else MODEL
    return chosen, kernel_for_model(kernel, chosen.config.kernel_size)


def deblur(
    image: np.ndarray,
    kernel: np.ndarray,
    progress: Any = None,
    estimated: bool | np.ndarray = False,
    tile_kernels: np.ndarray | None = None,
    noise_level: float | None = None,
    shows_jpeg: Callable[[], bool] | None = None,
    tiles: tuple[int, int] | None = None,
) -> tuple[np.ndarray, float | None, bool]:
    """``H×W×3`` uint8 blurred photo and its kernel (``estimated``: a blind estimate; with ``tile_kernels``, one bool
    per tile) → restored uint8 by the model that fits the kernel (:func:`model_for`), in tiles for large photos,
    and the noise σ (grey levels) that model was given: ``noise_level`` if set (see :func:`noise_level_setting`),
    else what it measured in the photo (``None`` for the motion model, which does not read one and ignores
    ``noise_level``) — at least ``JPEG_NOISE_LEVEL`` when measured for an upload that ``shows_jpeg`` (a JPEG file,
    or pixels that show a JPEG's blocks; asked only then, as the check takes time on large photos), as
    :func:`bikanet_hf.deblur` does — and whether it was raised for a JPEG that way; ``progress`` is a
    ``gr.Progress`` (or ``None``). ``tile_kernels``: one kernel per tile of ``tile_windows(H, W, *tiles)`` (``tiles``
    from :func:`varying_tiles`), for blur that varies across the photo."""

    def tile_done(done: int, total: int) -> None:
        if progress is not None:
            progress(done / total, desc=f"Deblurring, tile {done} of {total}" if total > 1 else "Deblurring")

    model, kernel = model_for(kernel)
    given = user_noise_level(noise_level, model.config) if model.config.noise_level_input else None
    jpeg = given is None and model.config.noise_level_input and shows_jpeg is not None and shows_jpeg()
    if jpeg:
        given = jpeg_noise_level(image)[0]
    tile_size, tile_overlap = TILE_SIZE, TILE_OVERLAP
    if tile_kernels is not None:
        kernel = np.stack([kernel_for_model(k, model.config.kernel_size) for k in tile_kernels])
        tile_size, tile_overlap = tiles
    with torch.inference_mode():
        restored, _, noise_level = restore(
            model,
            image,
            kernel,
            tile_size=tile_size,
            tile_overlap=tile_overlap,
            progress=tile_done,
            kernel_is_estimate=estimated,
            precision="auto",
            noise_level=given,
        )
    return restored, noise_level, jpeg


NOISE_LEVEL_MAX = 20.0  # the model learnt σ up to 5 (and reads textured photos higher); a bound that leaves room


def noise_level_setting(value: Any) -> float | None:
    """The noise level a person typed, σ in grey levels (0–255 scale), or ``None`` for an empty box (measure it);
    ``gr.Error`` unless it is a number from 0 to :data:`NOISE_LEVEL_MAX`."""
    if value is None or str(value).strip() == "":
        return None
    try:
        level = float(str(value).strip().replace(",", "."))
    except (TypeError, ValueError):
        level = float("nan")
    if not 0 <= level <= NOISE_LEVEL_MAX:
        raise gr.Error(
            f"The noise level is the photo's grain as σ in grey levels, from 0 to {NOISE_LEVEL_MAX:g}; got {value!r}. "
            "Leave it empty to have it measured.",
            print_exception=False,
        )
    return level


def noise_text(level: float | None, asked: float | None = None, jpeg: bool = False) -> str:
    """For the report: the noise level the model was given (``level``; it smooths more when it is higher), measured
    in the photo (raised to ``JPEG_NOISE_LEVEL`` for a ``jpeg``) or as the person set it (``asked``), or, for a model
    that does not read one (the motion model), nothing, or that the setting was not used."""
    if level is None:
        return "" if asked is None else " · noise level not used: the camera-shake model does not read one"
    how = "≈ {:.1f} grey levels, measured" if asked is None else "= {:.1f} grey levels, as you set it"
    if asked is None and jpeg and level <= JPEG_NOISE_LEVEL + 1e-3:
        how = "= {:.1f} grey levels, raised for a JPEG (its compression artefacts read as noise)"
    return f" · noise: σ {how.format(level)} (the higher, the more the result is smoothed)"


ESTIMATE_FAST = "Fast (one network pass)"
ESTIMATE_REFINE = "KernelGAN refine (slower: trains a GAN on your photo)"
BLUR_SOFT = "Soft blur (Gaussian-like; a lens out of focus is detected)"
BLUR_DEFOCUS = "Out of focus (a lens's disk; radius measured from the photo)"
BLUR_SHAKE = "Camera shake (path traced from the photo's edges; experimental)"
BLUR_TYPE_OF = {BLUR_SOFT: "gaussian", BLUR_DEFOCUS: "defocus", BLUR_SHAKE: "motion"}


def estimator_for(blur_type: str, known_blurred: bool = False):
    """The amortized estimator for ``blur_type``: the motion one for camera shake, else the Gaussian one
    (``KNOWN_BLUR_ESTIMATOR`` for a photo the user marked as surely blurred)."""
    if blur_type == "motion":
        return MOTION_ESTIMATOR
    return KNOWN_BLUR_ESTIMATOR if known_blurred else ESTIMATOR


def estimate(
    image: np.ndarray,
    how: str = ESTIMATE_FAST,
    steps: int = 600,
    progress: Any = None,
    blur: str = BLUR_SOFT,
    per_tile: bool = False,
    known_blurred: bool = False,
):
    """The blur kernel of a blurred photo, a description of it (with a caveat when the photo is nearly flat) and the
    kind of blur it is (``"gaussian"``, ``"defocus"`` or ``"motion"``); ``known_blurred``: the photo is surely
    blurred, so a Gaussian estimate is narrowed less (``KNOWN_BLUR_ESTIMATOR``); ``per_tile``: the photo's kernel
    only stands in for tiles too flat to measure (:func:`estimate_per_tile` looks for disks and slight blur per tile).

    ``how``: the fast amortized estimator, or KernelGAN refining its answer for ``steps`` steps (``progress`` is a
    ``gr.Progress`` that shows them). ``blur``: a Gaussian-like kernel — or, with the fast estimator and not
    ``per_tile``, the disk of a lens out of focus when the photo's spectrum shows one
    (:func:`~bikanet_hf.deblurring.resolve_blur_type`) —, a defocus disk in any case (its radius from the photo's
    spectrum), or camera shake (its path, by edge prediction, for the motion model; a few seconds)."""
    if how not in (ESTIMATE_FAST, ESTIMATE_REFINE):
        raise gr.Error(
            f"Choose the kernel estimator: {ESTIMATE_FAST!r} or {ESTIMATE_REFINE!r}.", print_exception=False
        )
    if blur not in BLUR_TYPE_OF:
        choices = ", ".join(map(repr, BLUR_TYPE_OF))
        raise gr.Error(f"Choose the kind of blur: one of {choices}.", print_exception=False)
    if blur != BLUR_SOFT and how == ESTIMATE_REFINE:
        what = "camera shake" if blur == BLUR_SHAKE else "a photo out of focus"
        raise gr.Error(
            f"KernelGAN estimates Gaussian-like blur only; use the fast estimator for {what}.", print_exception=False
        )
    blur_type = BLUR_TYPE_OF[blur]
    partly = 0  # soft blur, no one disk: tiles that show one (a photo partly out of focus?)
    if blur_type == "gaussian" and how == ESTIMATE_FAST and not per_tile:
        blur_type = resolve_blur_type("auto", None, None, image)
        partly = defocused_tiles(image)[0] if blur_type == "gaussian" else 0
    if blur_type == "defocus" and min(image.shape[:2]) < MIN_TILE:
        raise gr.Error(
            f"Measuring a lens's defocus needs a photo of at least {MIN_TILE}×{MIN_TILE} pixels.",
            print_exception=False,
        )
    method, options = (None, {}) if blur_type != "gaussian" else ("amortized", {})
    if blur_type == "motion" and min(image.shape[:2]) < 2 * MOTION_KERNEL_SIZE:
        raise gr.Error(
            f"Tracing a camera shake needs a photo of at least {2 * MOTION_KERNEL_SIZE}×{2 * MOTION_KERNEL_SIZE} "
            "pixels.",
            print_exception=False,
        )
    if blur_type == "motion" and progress is not None:
        progress(0.0, desc="Tracing the camera shake from the photo's edges")
    if how == ESTIMATE_REFINE:
        if min(image.shape[:2]) < 64:
            raise gr.Error(
                "KernelGAN needs a photo of at least 64×64 pixels; use the fast estimator.", print_exception=False
            )
        steps = int(steps)

        def step_done(step: int, total: int) -> None:
            if progress is not None and (step % 10 == 0 or step == total):
                progress(step / total, desc=f"KernelGAN, step {step} of {total}")

        method, options = "refine", {"steps": steps, "progress": step_done}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator = estimator_for(blur_type, known_blurred)
        kernel = estimate_kernel(
            image, method, estimator=estimator, for_deblurring=True, blur_type=blur_type, **options
        )
    if blur_type == "motion":
        u, v = motion_flow_from_kernel(torch.from_numpy(kernel)[None])[0].tolist()
        text = (
            f"estimated camera shake, spread like a {2 * np.hypot(u, v):.1f} px motion at "
            f"{np.degrees(np.arctan2(v, u)):.0f}° (its path is in the kernel picture)"
        )
    elif blur_type == "defocus":
        text = f"a lens out of focus: a disk of radius ≈ {kernels.defocus_radius(kernel):.1f} px, measured from the "
        text += "photo's spectrum" + (" (detected: it shows the disk's rings)" if blur == BLUR_SOFT else "")
    else:
        text = "estimated by KernelGAN refine, " if method == "refine" else "estimated, "
        text += kernels.describe_kernel(kernel)
        text += " (the photo is surely blurred: a slight estimate is narrowed less)" if known_blurred else ""
    if any(issubclass(w.category, FlatImageWarning) for w in caught):
        text += " (the photo has almost no edges, so this estimate is a guess)"
    elif any(issubclass(w.category, SlightBlurWarning) for w in caught) and not per_tile:
        text += " (very little blur: the photo may be sharp already, and the result changes it little)"
    if partly:
        text += (
            f" — {partly} of its tiles show a lens out of focus and others not: if the photo is partly out of focus, "
            "tick “blur changes across the photo”"
        )
    return kernel, text, blur_type


def save_restored(restored: np.ndarray, stem: str) -> str:
    """Write the full-size restored PNG for download, in a fresh folder (outputs older than an hour are removed)."""
    OUTPUT_ROOT.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in OUTPUT_ROOT.iterdir():
        try:
            if now - old.stat().st_mtime > OUTPUT_MAX_AGE_S:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:  # removed by a concurrent request
            pass
    path = Path(tempfile.mkdtemp(dir=OUTPUT_ROOT)) / f"{stem}_deblurred.png"
    Image.fromarray(restored).save(path)
    return str(path)


def _format_db(value: float) -> str:
    return "∞" if np.isinf(value) else f"{value:.2f}"


def metrics_table(sharp: np.ndarray, blurred: np.ndarray, restored: np.ndarray) -> str:
    """Markdown table of PSNR / SSIM of the blurred and restored images against the original, and the gain."""
    rows = {
        name: (metrics.psnr(sharp, x), metrics.ssim(sharp, x))
        for name, x in (("Blurred", blurred), ("Restored", restored))
    }
    lines = ["| Against the original | PSNR (dB) | SSIM |", "|---|---:|---:|"]
    lines += [f"| {name} | {_format_db(p)} | {s:.4f} |" for name, (p, s) in rows.items()]
    gain = rows["Restored"][0] - rows["Blurred"][0]
    gain_text = "—" if not np.isfinite(gain) else f"{gain:+.2f} dB"
    return "\n".join(lines) + f"\n\n**Gain: {gain_text}** PSNR (SSIM {rows['Restored'][1] - rows['Blurred'][1]:+.4f})."


# ---------------------------------------------------------------------------------------------------------------
# Event handlers: one per mode, each returning (slider pair, kernel picture, report, download path)
# ---------------------------------------------------------------------------------------------------------------
def _results(blurred, restored, picture, stem: str, what: str, start: float, details: str):
    """The outputs every handler returns: the slider pair, the kernel picture, the report (what was done, the time,
    the device and size, then ``details``) and the saved full-size PNG."""
    seconds = time.perf_counter() - start
    report = (
        f"**{what} in {seconds:.2f} s** on {MODEL.device.type.upper()} · "
        f"{blurred.shape[1]}×{blurred.shape[0]} px · {details}"
    )
    return (blurred, restored), picture, report, save_restored(restored, stem)


def varying_tiles(blur: str) -> tuple[int, int]:
    """Side and overlap of the tiles that get a kernel each, as :func:`bikanet_hf.deblur` takes them by default
    (:func:`bikanet_hf.deblurring.varying_tiles`): 384 px for camera shake, 256 px for a lens's disk (soft blur, out
    of focus)."""
    return bikanet_hf.deblurring.varying_tiles(BLUR_TYPE_OF[blur])


def estimate_per_tile(
    image: np.ndarray, kernel: np.ndarray, blur: str, progress: Any = None, known_blurred: bool = False
):
    """One kernel per tile (:func:`varying_tiles`), the whole photo's ``kernel`` for tiles too flat to measure (out
    of focus: the disk a tile shows, else a delta; soft blur: the disk a tile shows, else its Gaussian estimate): the
    kernels, whether each is an estimate, a picture of them laid out like the tiles, and a sentence on what was
    done."""
    side, overlap = varying_tiles(blur)
    windows = tile_windows(*image.shape[:2], side, overlap)
    rows = len({top for top, _, _, _ in windows})
    estimator = estimator_for(BLUR_TYPE_OF[blur], known_blurred)
    blur_type = "auto" if blur == BLUR_SOFT else BLUR_TYPE_OF[blur]  # soft blur: a lens out of focus is detected

    def tile_done(done: int, total: int) -> None:
        if progress is not None:
            progress(done / total, desc=f"Estimating the blur of each tile ({done} of {total})")

    tile_kernels, tile_estimates, notes = estimate_tile_kernels(
        image, windows, kernel, estimator=estimator, blur_type=blur_type, progress=tile_done
    )
    picture = kernels.kernel_grid_image(tile_kernels, rows, len(windows) // rows)
    text = f"one kernel per tile ({rows}×{len(windows) // rows} tiles of {side} px, in the picture)"
    if len(windows) == 1:
        text = f"the photo fits in one {side}-px tile, so one kernel was used"
        return tile_kernels, tile_estimates, picture, text
    # the disks found (out of focus, or soft blur where some tile shows one), the tiles too flat to measure
    shown = notes if blur_type == "defocus" or not tile_estimates.all() else notes[1:]
    text += "".join("; " + note[0].lower() + note[1:].rstrip(".") for note in shown)
    return tile_kernels, tile_estimates, picture, text


def _jpeg_check(photo: Any, rgb: np.ndarray) -> Callable[[], bool]:
    """For :func:`deblur`: whether an upload is a JPEG file or its pixels ``rgb`` show a JPEG's blocks."""
    return lambda: jpeg_evidence(_path_and_name(photo)[0], rgb) is not None


def run_blind(
    photo,
    how=ESTIMATE_FAST,
    steps=600,
    blur=BLUR_SOFT,
    varying=False,
    strength=100,
    noise_level=None,
    known_blurred=False,
    progress=gr.Progress(),  # noqa: B008 (gradio's progress idiom)
):
    """Estimate the blur kernel of an uploaded blurred photo (``varying``: also one per tile), then deblur it and
    keep ``strength`` % of the correction (``noise_level``: σ in grey levels, or ``None`` to measure it;
    ``known_blurred``: the photo is surely blurred, so a slight estimate is narrowed less)."""
    start = time.perf_counter()
    asked = noise_level_setting(noise_level)
    if varying and how == ESTIMATE_REFINE:
        raise gr.Error(
            "A kernel per tile uses the fast estimator; turn off “blur changes across the photo” to use KernelGAN.",
            print_exception=False,
        )
    if known_blurred and blur != BLUR_SOFT:
        raise gr.Error(
            "“Surely blurred” changes how a soft blur's estimate is used; turn it off for camera shake or a photo "
            "out of focus.",
            print_exception=False,
        )
    blurred, stem = read_photo(photo, "blurred photo")
    progress(0.0, desc="Estimating the blur kernel")
    kernel, kernel_text, blur_type = estimate(
        blurred, how, steps, progress, blur, per_tile=varying, known_blurred=known_blurred
    )
    picture, tile_kernels = kernels.kernel_to_image(kernel), None
    if not 0 <= strength <= 100:
        raise gr.Error(f"Strength is a percentage from 0 to 100, got {strength}.", print_exception=False)
    estimated = reads_as_estimate(blur_type)
    if varying:
        tile_kernels, estimated, picture, tile_text = estimate_per_tile(blurred, kernel, blur, progress, known_blurred)
        kernel_text = f"{tile_text}; whole photo: {kernel_text}"
    restored, used, jpeg = deblur(
        blurred,
        kernel,
        progress,
        estimated,
        tile_kernels=tile_kernels,
        noise_level=asked,
        tiles=varying_tiles(blur),
        shows_jpeg=_jpeg_check(photo, blurred),
    )
    restored = apply_strength(blurred, restored, strength / 100)
    what = "Estimated the blur and deblurred" + (f" at {strength:g}% strength" if strength < 100 else "")
    details = f"kernel: {html.escape(kernel_text)}{noise_text(used, asked, jpeg)}"
    return _results(blurred, restored, picture, stem, what, start, details)


def run_known_kernel(
    photo,
    source,
    sigma_major,
    sigma_minor,
    angle,
    kernel_file,
    motion_length=10.0,
    defocus_radius=3.0,
    noise_level=None,
    progress=gr.Progress(),  # noqa: B008
):
    """Deblur an uploaded blurred photo with the kernel the user gives (``noise_level``: σ in grey levels, or
    ``None`` to measure it)."""
    start = time.perf_counter()
    asked = noise_level_setting(noise_level)
    blurred, stem = read_photo(photo, "blurred photo")
    kernel, kernel_text = choose_kernel(
        source, sigma_major, sigma_minor, angle, kernel_file, motion_length, defocus_radius
    )
    restored, used, jpeg = deblur(blurred, kernel, progress, noise_level=asked, shows_jpeg=_jpeg_check(photo, blurred))
    return _results(
        blurred,
        restored,
        kernels.kernel_to_image(kernel),
        stem,
        "Deblurred",
        start,
        f"kernel: {html.escape(kernel_text)}{noise_text(used, asked, jpeg)}",
    )


DEBLUR_BLIND = "Estimated kernel (blind)"
DEBLUR_TRUE = "True kernel"


def run_sharp_photo(
    photo,
    source,
    sigma_major,
    sigma_minor,
    angle,
    kernel_file,
    deblur_with,
    motion_length=10.0,
    defocus_radius=3.0,
    progress=gr.Progress(),  # noqa: B008
):
    """Blur a sharp photo with the chosen kernel (the benchmark's blur), deblur it — blind, or with the true
    kernel — and score both against the original. Blind, the estimator is told only the kind of blur: camera shake
    when the kernel is a motion (or a file that looks like one), else soft blur (a disk is detected as such)."""
    start = time.perf_counter()
    sharp, stem = read_photo(photo, "sharp photo")
    kernel, kernel_text = choose_kernel(
        source, sigma_major, sigma_minor, angle, kernel_file, motion_length, defocus_radius
    )
    blurred = kernels.degrade(sharp, kernel)
    if deblur_with == DEBLUR_TRUE:
        used, picture, how = kernel, kernels.kernel_to_image(kernel), "with the true kernel"
        estimated = False
    else:
        progress(0.0, desc="Estimating the blur kernel")
        used, estimated_text, blur_type = estimate(blurred, blur=BLUR_SHAKE if is_motion_kernel(kernel) else BLUR_SOFT)
        estimated = reads_as_estimate(blur_type)
        size = max(used.shape[0], kernel.shape[0], kernel.shape[1])
        used_framed, truth_framed = kernel_for_model(used, size), kernel_for_model(kernel, size)
        picture = kernels.kernel_pair_image(used_framed, truth_framed)
        how = (
            f"blind (kernel {html.escape(estimated_text)}; error Σ|k̂ − k| = "
            f"{metrics.kernel_l1(used_framed, truth_framed):.3f}, 0 is exact)"
        )
    restored, _, _ = deblur(blurred, used, progress, estimated=estimated)
    details = f"true kernel: {html.escape(kernel_text)}\n\n{metrics_table(sharp, blurred, restored)}"
    return _results(blurred, restored, picture, stem, f"Blurred, deblurred {how} and scored", start, details)


def kernel_preview(source, sigma_major, sigma_minor, angle, kernel_file, motion_length=10.0, defocus_radius=3.0):
    """Live picture of the chosen kernel (nothing while the kernel-file choice has no file yet)."""
    if source == KERNEL_FROM_FILE and _path_and_name(kernel_file) is None:
        return None
    kernel, _ = choose_kernel(source, sigma_major, sigma_minor, angle, kernel_file, motion_length, defocus_radius)
    return kernels.kernel_to_image(kernel)


# ---------------------------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------------------------
INTRO = """
# BIKAnet deblurring

Removes blur from a photo with BIKAnet, a network whose blocks adapt to the blur kernel. **Blind** mode first
estimates the kernel from the photo itself; if you know the blur, give it in **Known kernel**.

- **Works on:** Gaussian-like blur — soft optics, the blur of a downscaled or filtered picture — up to about
  σ = 4 px (17×17 kernels); defocus (a lens out of focus) up to a disk of radius 7.5 px, blind too: the disk's
  radius is measured from the photo (found on its own under "Soft blur" when the photo shows it clearly; choose
  "Out of focus" to insist, e.g. on a noisy photo); and, with the motion model, camera shake up to about 25 px when
  you know its kernel (a straight motion from the sliders, or a kernel file up to 31×31).
- **Does not fix well:** camera shake in blind mode (experimental: the shake's path is traced from the photo's
  edges, which helps on average but can go wrong on textured photos), a photo only partly out of focus (a sharp
  subject before a blurred background: "Soft blur" then uses one Gaussian, which changes it little; with "blur
  changes across the photo" each tile that shows a lens's disk is deblurred with it, and the rest with a Gaussian
  estimate under "Soft blur" or left as they are under "Out of focus"), compressed
  JPEGs (the compression removes the detail the blur left: at quality 90 our benchmarks gain 2–3 dB instead of
  4–9), very large defocus, or blur that changes across the picture (the "blur changes across the photo" option
  estimates a kernel per tile, which helps some). A wrong kernel gives a wrong result: try a few and compare.
- **Blind estimates** assume one blur for the whole photo unless that option is on; a photo with few edges gives
  a poor estimate. **Try it on a sharp photo** shows how close the estimate comes to the truth.
"""

EXAMPLE_KERNELS = {  # file → (σ major, σ minor, angle) it was blurred with; see bikanet_hf/examples/README.md
    "astronaut_blurred.png": (2.2, 2.2, 0.0),
    "coffee_blurred.png": (2.5, 1.0, 30.0),
    "chelsea_blurred.png": (4.0, 1.5, 60.0),
}
SHARP_EXAMPLES = {"chelsea_sharp.png": (2.5, 1.0, 120.0)}


@dataclass
class KernelControls:
    source: gr.Radio
    sigma_major: gr.Slider
    sigma_minor: gr.Slider
    angle: gr.Slider
    file: gr.File
    motion_length: gr.Slider
    defocus_radius: gr.Slider
    preview: gr.Image

    @property
    def inputs(self) -> list[gr.components.Component]:
        return [
            self.source,
            self.sigma_major,
            self.sigma_minor,
            self.angle,
            self.file,
            self.motion_length,
            self.defocus_radius,
        ]


@dataclass
class Results:
    slider: gr.ImageSlider
    kernel_picture: gr.Image
    report: gr.Markdown
    download: gr.File

    @property
    def outputs(self) -> list[gr.components.Component]:
        return [self.slider, self.kernel_picture, self.report, self.download]


def _kernel_controls(prefix: str) -> KernelControls:
    """Kernel source (Gaussian, motion or defocus sliders, or a file), its controls, and a live preview of the
    kernel."""
    source = gr.Radio(
        [KERNEL_FROM_SLIDERS, KERNEL_FROM_MOTION, KERNEL_FROM_DEFOCUS, KERNEL_FROM_FILE],
        value=KERNEL_FROM_SLIDERS,
        label="Blur kernel",
        info="A Gaussian you shape with the sliders, a straight camera motion, the disk of a lens out of focus, or "
        "a kernel file of your own (camera-shake kernels go to the motion model).",
        elem_id=f"{prefix}-kernel-source",
    )
    low, high = SIGMA_RANGE
    with gr.Group(visible=True) as slider_group:
        sigma_major = gr.Slider(
            low,
            high,
            value=2.0,
            step=0.1,
            label="σ major (px)",
            info="Blur width along the blur direction.",
            elem_id=f"{prefix}-sigma-major",
        )
        sigma_minor = gr.Slider(
            low,
            high,
            value=2.0,
            step=0.1,
            label="σ minor (px)",
            info="Blur width across it. If larger than σ major, the two are swapped.",
            elem_id=f"{prefix}-sigma-minor",
        )
    motion_length = gr.Slider(
        *MOTION_LENGTH_RANGE,
        value=10.0,
        step=0.5,
        label="Motion length (px)",
        info="How far the camera moved during the exposure.",
        visible=False,
        elem_id=f"{prefix}-motion-length",
    )
    defocus_radius = gr.Slider(
        *kernels.DEFOCUS_RADIUS_RANGE,
        value=3.0,
        step=0.1,
        label="Defocus radius (px)",
        info="The radius of the disk each point spreads into. Deblurring a disk needs its radius within about 5%: "
        "try a few values and keep the one without rings or leftover blur.",
        visible=False,
        elem_id=f"{prefix}-defocus-radius",
    )
    angle = gr.Slider(
        0,
        180,
        value=0,
        step=1,
        label="Angle (degrees)",
        info="Direction of σ major or of the motion: 0° horizontal, 90° vertical, turning clockwise on screen.",
        elem_id=f"{prefix}-angle",
    )
    kernel_file = gr.File(
        label=f"Kernel file (.npy, .png or .mat; odd size up to {MOTION_KERNEL_SIZE}×{MOTION_KERNEL_SIZE})",
        file_types=[".npy", ".png", ".mat"],
        visible=False,
        elem_id=f"{prefix}-kernel-file",
    )
    preview = gr.Image(
        value=kernels.kernel_to_image(kernel_from_sliders(2.0, 2.0, 0)[0]),
        label="Kernel preview",
        type="pil",
        format="png",
        interactive=False,
        height=180,
        buttons=[],
        elem_id=f"{prefix}-kernel-preview",
    )
    controls = KernelControls(
        source, sigma_major, sigma_minor, angle, kernel_file, motion_length, defocus_radius, preview
    )
    source.change(
        lambda choice: (
            gr.update(visible=choice == KERNEL_FROM_SLIDERS),
            gr.update(visible=choice == KERNEL_FROM_MOTION),
            gr.update(visible=choice == KERNEL_FROM_DEFOCUS),
            gr.update(visible=choice in (KERNEL_FROM_SLIDERS, KERNEL_FROM_MOTION)),
            gr.update(visible=choice == KERNEL_FROM_FILE),
        ),
        source,
        [slider_group, motion_length, defocus_radius, angle, kernel_file],
        api_visibility="private",
        queue=False,
    )
    gr.on(
        [
            source.change,
            sigma_major.change,
            sigma_minor.change,
            angle.change,
            kernel_file.change,
            motion_length.change,
            defocus_radius.change,
        ],
        kernel_preview,
        controls.inputs,
        preview,
        api_name=f"{prefix.replace('-', '_')}_kernel_preview",
        show_progress="hidden",
        trigger_mode="always_last",
    )
    return controls


def _photo_input(label: str, elem_id: str) -> gr.Image:
    return gr.Image(type="filepath", image_mode=None, label=label, sources=["upload", "clipboard"], elem_id=elem_id)


def _noise_level_input(prefix: str) -> gr.Textbox:
    """A text box, not ``gr.Number``: a number box shows 0 when empty, and empty here means "measure it"."""
    return gr.Textbox(
        value="",
        label="Noise level (σ, grey levels)",
        info=f"Empty: measured in the photo (the report says what it read). The model smooths more the higher it is: "
        f"set 0–1 if fine texture (hatching, foliage, fur) comes out smoothed, 3–5 if grain comes out amplified "
        f"(0 to {NOISE_LEVEL_MAX:g}). The camera-shake model does not use it.",
        placeholder="measured",
        max_lines=1,
        elem_id=f"{prefix}-noise-level",
    )


def _run_button(label: str, prefix: str, handler, inputs: list, results: Results, api_name: str) -> None:
    """The tab's button, wired to its handler. preprocess=False: gr.Image's own preprocessing opens the upload with
    PIL and fails on a corrupt file before our code runs, with an error a person cannot read; raw uploads reach
    read_photo, which explains the problem."""
    button = gr.Button(label, variant="primary", elem_id=f"{prefix}-run")
    button.click(handler, inputs, results.outputs, api_name=api_name, preprocess=False, concurrency_id="model")


def _blind_tab(results: Results) -> None:
    gr.Markdown("Upload a blurred photo: the app estimates its blur kernel, then removes that blur.")
    photo = _photo_input("Blurred photo", "blind-photo")
    how = gr.Radio(
        [ESTIMATE_FAST, ESTIMATE_REFINE],
        value=ESTIMATE_FAST,
        label="Kernel estimator",
        info="The fast one answers in a fraction of a second. KernelGAN learns the blur from your photo's own "
        "patches (a few seconds per 100 steps on a CPU), starting from the fast estimate; it is experimental: on our "
        "benchmarks it has not improved on the fast estimate, so the kernel it returns is about the fast one.",
        elem_id="blind-estimator",
    )
    steps = gr.Slider(50, 1200, value=600, step=50, label="KernelGAN steps", visible=False, elem_id="blind-gan-steps")
    how.change(
        lambda choice: gr.update(visible=choice == ESTIMATE_REFINE), how, steps, api_visibility="private", queue=False
    )
    blur = gr.Radio(
        list(BLUR_TYPE_OF),
        value=BLUR_SOFT,
        label="Kind of blur",
        info="Soft blur: soft optics, a filtered picture — and a lens out of focus when the photo's spectrum shows "
        "the rings a defocus disk leaves (then its radius is measured; when only parts of the photo show them, the "
        "report says so). Out of focus: measure the disk's radius "
        "even when those rings are faint (noisy photos, small disks). Camera shake: the shake's path is traced from "
        "the photo's strongest edges (a few seconds), then the motion model deblurs with it. Experimental: it helps "
        "on average, but a wrong trace can make a photo worse.",
        elem_id="blind-blur-kind",
    )
    varying = gr.Checkbox(
        value=False,
        label="Blur changes across the photo (one kernel per tile)",
        info=f"Estimates a kernel for each {VARYING_TILE_SIZE['gaussian']}-px tile "
        f"({VARYING_TILE_SIZE['motion']} px for camera shake) "
        "and deblurs each tile with its own: for a camera that turned, or parts of the scene at different "
        "depths. Experimental: it helps on our synthetic tests (+0.5 dB for a turning camera, +1.1 dB for a "
        "tilted plane of focus) and a little on two real GoPro photos; for camera shake it takes a few seconds "
        "per tile. For a photo partly out of focus, each tile whose spectrum shows a lens's disk is deblurred "
        "with it (+3.6 to 3.9 dB on our test); the others get a Gaussian estimate with “Soft blur”, and are "
        "left as they are with “Out of focus” (best when the rest is sharp).",
        elem_id="blind-varying",
    )
    strength = gr.Slider(
        0,
        100,
        value=100,
        step=5,
        label="Strength (%)",
        info="How much of the correction to keep: lower it if the result looks over-sharpened (halos, grain), e.g. "
        "when the photo was barely blurred.",
        elem_id="blind-strength",
    )
    known_blurred = gr.Checkbox(
        value=False,
        label="Surely blurred (not a sharp photo)",
        info="For soft blur: the estimate is narrowed less when it is slight (under 0.8 px). On our benchmarks, "
        "photos blurred by 0.6–0.8 px gain up to 1.5 dB more, but a photo that was sharp already comes back 2–3 dB "
        "further from itself (over-sharpened).",
        elem_id="blind-known-blurred",
    )
    noise_level = _noise_level_input("blind")
    inputs = [photo, how, steps, blur, varying, strength, noise_level, known_blurred]
    _run_button("Estimate the blur and deblur", "blind", run_blind, inputs, results, "deblur_blind")
    gr.Examples(
        [[str(EXAMPLES_DIR / name)] for name in EXAMPLE_KERNELS],
        [photo],
        label="Examples (blurred with a known kernel; see how close the estimate comes)",
        example_labels=[
            f"{name.split('_')[0]} (blurred with σ {p[0]} × {p[1]} at {p[2]:g}°)"
            for name, p in EXAMPLE_KERNELS.items()
        ],
    )


def _known_kernel_tab(results: Results) -> None:
    photo = _photo_input("Blurred photo", "known-photo")
    kernel = _kernel_controls("known")
    noise_level = _noise_level_input("known")
    inputs = [photo, *kernel.inputs, noise_level]
    _run_button("Deblur", "known", run_known_kernel, inputs, results, "deblur_known_kernel")
    gr.Examples(
        [[str(EXAMPLES_DIR / name), KERNEL_FROM_SLIDERS, *params] for name, params in EXAMPLE_KERNELS.items()],
        [photo, kernel.source, kernel.sigma_major, kernel.sigma_minor, kernel.angle],
        label="Examples (blurred with the kernel their sliders show)",
        example_labels=[
            f"{name.split('_')[0]}: σ {p[0]} × {p[1]} at {p[2]:g}°" for name, p in EXAMPLE_KERNELS.items()
        ],
    )


def _sharp_photo_tab(results: Results) -> None:
    gr.Markdown(
        "Upload a **sharp** photo: the app blurs it with the kernel you choose (the benchmark's blur), deblurs it "
        "— estimating the kernel, or with the true one — and scores both against your original."
    )
    photo = _photo_input("Sharp photo", "sharp-photo")
    kernel = _kernel_controls("sharp")
    deblur_with = gr.Radio(
        [DEBLUR_BLIND, DEBLUR_TRUE],
        value=DEBLUR_BLIND,
        label="Deblur with",
        info="Blind shows what you would get on a real photo; the true kernel shows the deblurring alone.",
        elem_id="sharp-deblur-with",
    )
    source, sigma_major, sigma_minor, angle, kernel_file, motion_length, defocus_radius = kernel.inputs
    inputs = [photo, source, sigma_major, sigma_minor, angle, kernel_file, deblur_with, motion_length, defocus_radius]
    _run_button("Blur, then deblur", "sharp", run_sharp_photo, inputs, results, "try_on_sharp_photo")
    gr.Examples(
        [[str(EXAMPLES_DIR / name), KERNEL_FROM_SLIDERS, *params] for name, params in SHARP_EXAMPLES.items()],
        [photo, kernel.source, kernel.sigma_major, kernel.sigma_minor, kernel.angle],
        label="Example",
        example_labels=[
            f"{name.split('_')[0]} (sharp): σ {p[0]} × {p[1]} at {p[2]:g}°" for name, p in SHARP_EXAMPLES.items()
        ],
    )


def build_demo() -> gr.Blocks:
    """The whole page: the mode tabs (inputs and button) on the left, the shared results on the right."""
    with gr.Blocks(title="BIKAnet deblurring", delete_cache=(1800, OUTPUT_MAX_AGE_S)) as demo:
        gr.Markdown(INTRO)
        results = Results(
            slider=gr.ImageSlider(
                label="Blurry ↔ deblurred (drag the handle)",
                format="png",
                type="numpy",
                max_height=640,
                render=False,
                elem_id="result-slider",
            ),
            kernel_picture=gr.Image(
                label="Kernel used (estimated, or yours)",
                type="pil",
                format="png",
                height=180,
                buttons=["download", "fullscreen"],
                render=False,
                elem_id="kernel-picture",
            ),
            report=gr.Markdown("Results appear here.", render=False, elem_id="report"),
            download=gr.File(label="Restored photo (full-size PNG)", render=False, elem_id="download"),
        )
        with gr.Row(equal_height=False):
            with gr.Column(min_width=320):
                with gr.Tabs():
                    with gr.Tab("Blind", id="blind"):
                        _blind_tab(results)
                    with gr.Tab("Known kernel", id="known"):
                        _known_kernel_tab(results)
                    with gr.Tab("Try it on a sharp photo", id="sharp"):
                        _sharp_photo_tab(results)
            with gr.Column(min_width=320):
                for component in results.outputs:
                    component.render()
    return demo


# launch() options, shared by `python app.py` and the tests (gradio 6 takes the theme in launch()).
LAUNCH_OPTIONS = {"theme": gr.themes.Soft(), "max_file_size": "50mb"}

demo = build_demo()
demo.queue(default_concurrency_limit=2, max_size=16)

if __name__ == "__main__":
    demo.launch(
        # Loopback by default; Hugging Face Spaces set GRADIO_SERVER_NAME=0.0.0.0 to serve outside the container.
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("PORT", 7860)),
        **LAUNCH_OPTIONS,
    )
