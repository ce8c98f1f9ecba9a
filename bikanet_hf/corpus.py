"""Training and validation data for deblurring, as 🤗 Datasets.

Two ways to feed a model:

* a **materialised corpus** (:func:`build_corpus`, :func:`build_corpus_dict`): random crops of sharp images, each
  blurred with a freshly drawn kernel, stored with the kernel and its parameters. It can be saved with
  ``save_to_disk``, shared with :func:`push_corpus_to_hub` (with a dataset card from :func:`dataset_card`) and
  reloaded exactly;
* **on-the-fly** sampling (:func:`sharp_images` + :func:`on_the_fly`): a dataset of sample ids whose transform cuts
  a crop, augments it, draws a kernel and blurs it when the sample is read, so that training sees a new kernel for
  every sample id instead of a fixed set.

Both blur exactly as the benchmark protocol (``shared/PROTOCOL.md``) does, through :func:`bikanet_hf.kernels.degrade`,
and both are deterministic: everything random about an example comes from ``numpy.random.default_rng([seed, i])``
for its image (corpus) or sample id (on the fly), so results do not depend on ``num_proc``, workers or order.

A crop is blurred together with an ``8``-pixel margin of real image around it (half the 17×17 kernel), and only the
centre is kept, so the borders of a blurred crop are real blur rather than mirror-padding artefacts. Images too small
for that are mirror-padded (or skipped, for the corpus, with ``small_images="skip"``).

The validation split (:func:`validation_split`) is the protocol's own benchmark pairs on full images.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from .image_io import (
    IMAGE_EXTENSIONS,
    JPEG_QUALITY_RANGE,
    jpeg_roundtrip,
    list_images,
    load_rgb,
    to_rgb_uint8,
    to_tensor,
)
from .kernels import KERNEL_SIZE, degrade, kernel_spread, sample_kernels
from .motion import MOTION_KERNEL_SIZE, camera_shake_kernel
from .protocol import protocol_pairs
from .shake_estimation import align_kernel, estimate_shake_kernel

DATA_DIR_ENV = "BIKANET_DATA_DIR"
DEFAULT_TRAIN_FOLDER = "bsds500_train"
DEFAULT_VALIDATION_FOLDER = "bsds500_val"
# Real image context blurred around every crop: the kernel's half-width, so that no output pixel of the kept crop
# depends on padding.
MARGIN = KERNEL_SIZE // 2
KERNEL_FAMILIES = ("gaussian", "motion")
SMALL_IMAGE_POLICIES = ("pad", "skip")
# How many file names a warning or error lists before it says "and N more".
_NAMES_SHOWN = 5
# "name", "user/name", optionally followed by ":split" (which may itself hold slicing such as "train[:10%]").
_HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?(:.+)?$")

FEATURES = datasets.Features(
    {
        "sharp": datasets.Image(),
        "blurred": datasets.Image(),
        "kernel": datasets.Array2D((KERNEL_SIZE, KERNEL_SIZE), "float32"),
        "sigma_major": datasets.Value("float32"),
        "sigma_minor": datasets.Value("float32"),
        "theta": datasets.Value("float32"),
        "kernel_id": datasets.Value("int32"),
        "source": datasets.Value("string"),
    }
)

# Columns of the internal table of candidate images, before they are decoded.
_CANDIDATE_FEATURES = datasets.Features(
    {
        "image": datasets.Image(decode=False),
        "source": datasets.Value("string"),
        "source_index": datasets.Value("int32"),
    }
)

# Licence notes for the dataset card, keyed by the start of a folder name (the folders of ``shared/data``).
_FOLDER_LICENCES = {
    "bsds500": "BSDS500 (Berkeley Segmentation Data Set): for non-commercial research use only.",
    "set5": "Set5 benchmark images: research benchmark images; see the original attribution.",
    "set14": "Set14 benchmark images: research benchmark images; see the original attribution.",
    "mcmaster": "McMaster benchmark images: research benchmark images; see the original attribution.",
    "wikiphotos": "Photos from Wikimedia Commons: see each photo's attribution and licence.",
}


# ---------------------------------------------------------------------------------------------------------------
# Where the data lives
# ---------------------------------------------------------------------------------------------------------------
def default_data_dir(must_exist: bool = True) -> Path:
    """The folder that holds the project's image sets (``bsds500_train``, ``bsds500_val``, ``set14`` …).

    ``$BIKANET_DATA_DIR`` when set, else ``shared/data`` next to the repository (``<repo>/../shared/data``).
    With ``must_exist`` a missing folder raises ``FileNotFoundError`` that says how to point at the data.
    """
    override = os.environ.get(DATA_DIR_ENV)
    folder = Path(override) if override else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if must_exist and not folder.is_dir():
        origin = f"${DATA_DIR_ENV}" if override else "the default location"
        raise FileNotFoundError(
            f"The data folder {folder} ({origin}) does not exist. Set {DATA_DIR_ENV} to the folder that holds "
            f"{DEFAULT_TRAIN_FOLDER}/ and {DEFAULT_VALIDATION_FOLDER}/, or pass folders explicitly."
        )
    return folder


# ---------------------------------------------------------------------------------------------------------------
# Reading sources: folders and Hub datasets
# ---------------------------------------------------------------------------------------------------------------
def _as_source_list(sources: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str | os.PathLike]:
    if isinstance(sources, str | os.PathLike):
        return [sources]
    sources = list(sources)
    if not sources:
        raise ValueError("No image sources were given.")
    return sources


def _is_hub_id(source: str | os.PathLike) -> bool:
    """Whether ``source`` should be read as a Hub dataset id: a string that is not an existing path and reads as
    ``name``, ``user/name`` or either with ``:split`` (several slashes, ``./``, ``~`` or a backslash mean a path)."""
    if not isinstance(source, str) or os.path.exists(source):
        return False
    if source.startswith((".", "~", "/")) or "\\" in source:
        return False
    return _HUB_ID_PATTERN.match(source) is not None


def _folder_candidates(folder: Path, source_index: int) -> dict[str, list]:
    paths = list_images(folder)
    if not paths:
        extensions = ", ".join(IMAGE_EXTENSIONS)
        raise ValueError(f"no readable images in {folder}: it holds no files with an image extension ({extensions}).")
    # Files are referenced by path, not read here: decoding happens once, in parallel, in `_inspect_batch`.
    name = folder.resolve().name
    return {
        "image": [{"path": str(p), "bytes": None} for p in paths],
        "source": [f"{name}/{p.name}" for p in paths],
        "source_index": [source_index] * len(paths),
    }


def _hub_candidates(source: str, source_index: int) -> datasets.Dataset:
    hub_id, _, split = source.partition(":")
    split = split or "train"
    try:
        dataset = datasets.load_dataset(hub_id, split=split)
    except Exception as err:  # network, missing repo, missing split: all mean "this source cannot be read"
        raise ValueError(
            f"{source!r} is not an existing folder, so it was loaded as the Hub dataset {hub_id!r} (split "
            f"{split!r}), which failed: {err}"
        ) from err
    image_columns = [name for name, feature in dataset.features.items() if isinstance(feature, datasets.Image)]
    if not image_columns:
        columns = ", ".join(dataset.features)
        raise ValueError(f"no readable images in {source!r}: the dataset has no Image column (columns: {columns}).")
    column = image_columns[0]
    # decode=False hands over the stored bytes/path, so that a corrupt image is skipped instead of failing the build.
    images = dataset.select_columns([column]).cast_column(column, datasets.Image(decode=False))
    images = images.rename_column(column, "image") if column != "image" else images
    images = images.add_column("source", [f"{source}:{i}" for i in range(len(images))])
    images = images.add_column("source_index", [source_index] * len(images))
    return images.cast(_CANDIDATE_FEATURES)


def _candidates(sources: Sequence[str | os.PathLike]) -> datasets.Dataset:
    """One row per candidate image of every source (not decoded yet): ``image`` (path or bytes), ``source`` and the
    position of its source in ``sources``."""
    parts = []
    for index, source in enumerate(sources):
        if Path(source).is_dir():
            rows = _folder_candidates(Path(source), index)
            parts.append(datasets.Dataset.from_dict(rows, features=_CANDIDATE_FEATURES))
        elif _is_hub_id(source):
            parts.append(_hub_candidates(source, index))
        elif Path(source).exists():
            raise ValueError(f"{source} is a file; pass the folder that holds the images.")
        else:
            raise FileNotFoundError(
                f"{source} is not an existing folder, and it does not look like a Hub dataset id "
                "('name', 'user/name' or 'user/name:split')."
            )
    return datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def _decode_rgb(value: dict[str, Any]) -> np.ndarray:
    """Decode an undecoded ``Image`` value (``{"bytes", "path"}``) as the protocol does: ``H×W×3`` uint8 RGB, EXIF
    orientation applied. Raises ``ValueError`` for anything that is not a readable image."""
    if value.get("bytes") is None:
        return load_rgb(value["path"])
    try:
        with PILImage.open(io.BytesIO(value["bytes"])) as im:
            im.load()
            return to_rgb_uint8(im)
    except UnidentifiedImageError:
        raise ValueError("not an image file PIL can read.") from None
    except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as err:
        raise ValueError(f"the image data is corrupt or truncated ({err}).") from None


def _inspect_batch(batch: dict[str, list]) -> dict[str, list]:
    """Decode each candidate once to find the unreadable ones and the sizes of the others."""
    errors, heights, widths = [], [], []
    for value in batch["image"]:
        try:
            h, w = _decode_rgb(value).shape[:2]
            error = None
        except ValueError as err:
            h, w, error = 0, 0, str(err)
        errors.append(error)
        heights.append(h)
        widths.append(w)
    return {"error": errors, "height": heights, "width": widths}


def _list_names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown + (f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else "")


def _readable_images(
    sources: str | os.PathLike | Iterable[str | os.PathLike], num_proc: int | None = None
) -> datasets.Dataset:
    """Every readable image of ``sources``: columns ``image`` (undecoded), ``source``, ``height``, ``width`` and
    ``image_index`` (its position among the readable images, which seeds its random draws).

    Unreadable files are skipped with one warning; a source without any readable image raises ``ValueError``.
    """
    sources = _as_source_list(sources)
    candidates = _candidates(sources).map(_inspect_batch, batched=True, num_proc=num_proc, desc="Reading images")
    errors = candidates["error"][:]
    names = candidates["source"][:]
    source_of = candidates["source_index"][:]
    bad = [i for i, error in enumerate(errors) if error is not None]
    for index, source in enumerate(sources):
        if not any(s == index and errors[i] is None for i, s in enumerate(source_of)):
            unreadable = [names[i] for i in bad if source_of[i] == index]
            raise ValueError(
                f"no readable images in {source}: {len(unreadable)} file(s), none readable "
                f"({_list_names(unreadable)})."
            )
    if bad:
        warnings.warn(
            f"Skipped {len(bad)} unreadable image file(s) out of {len(errors)}: "
            f"{_list_names([names[i] for i in bad])}. First error: {errors[bad[0]]}",
            stacklevel=3,
        )
        good = [i for i, error in enumerate(errors) if error is None]
        candidates = candidates.select(good).flatten_indices()
    readable = candidates.remove_columns(["error", "source_index"])
    return readable.add_column("image_index", list(range(len(readable))))


def sharp_images(
    sources: str | os.PathLike | Iterable[str | os.PathLike], *, num_proc: int | None = None
) -> datasets.Dataset:
    """The readable images of ``sources`` (folders and/or Hub dataset ids, as in :func:`build_corpus`), as a dataset
    with a ``sharp`` Image column and a ``source`` column; the input of :func:`on_the_fly`.

    Folder images are referenced by path, not copied. Unreadable files are skipped with one warning.
    """
    images = _readable_images(sources, num_proc=num_proc).select_columns(["image", "source"])
    return images.rename_column("image", "sharp").cast_column("sharp", datasets.Image())


# ---------------------------------------------------------------------------------------------------------------
# Cutting and blurring crops
# ---------------------------------------------------------------------------------------------------------------
def _mirror_pad_to(image: np.ndarray, size: int) -> np.ndarray:
    """Mirror-pad (numpy ``reflect``, repeated as needed) an ``H×W×3`` image so both sides are at least ``size``."""
    pad_h, pad_w = max(0, size - image.shape[0]), max(0, size - image.shape[1])
    if pad_h == 0 and pad_w == 0:
        return image
    # numpy's reflect mode does not repeat the edge pixel, as the protocol's padding; it reflects again when the pad
    # is wider than the image.
    return np.pad(image, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)), mode="reflect")


def _random_region(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``size×size`` window of an image at least that large."""
    top = int(rng.integers(image.shape[0] - size + 1))
    left = int(rng.integers(image.shape[1] - size + 1))
    return image[top : top + size, left : left + size]


@dataclass
class _BlurredCrop:
    sharp: np.ndarray  # S×S×3 uint8
    blurred: np.ndarray  # S×S×3 uint8
    blurred_region: np.ndarray  # the whole blurred region, margins included (uint8)
    kernel: np.ndarray  # 17×17 float64 (31×31 for camera-shake kernels)
    kernel_id: int
    sigma_major: float
    sigma_minor: float
    theta: float
    noise_sigma: float


def _draw_kernel(
    rng: np.random.Generator,
    kernel_family: str,
    bank16_fraction: float,
    defocus_fraction: float = 0.0,
    near_sharp_fraction: float = 0.0,
) -> tuple:
    """One training kernel: ``(kernel, kernel_id, σ_major, σ_minor, θ)``; for camera-shake kernels (``"motion"``,
    :data:`~bikanet_hf.motion.MOTION_KERNEL_SIZE` square) the widths and angle are those of its spread and the id
    is −1; ``defocus_fraction`` and ``near_sharp_fraction``: the shares of defocus disks and of nearly sharp kernels
    among the Gaussians (``sample_kernels``)."""
    if kernel_family == "motion":
        kernel = camera_shake_kernel(rng)
        return (kernel, -1, *kernel_spread(kernel))
    drawn = sample_kernels(
        1, rng, bank16_fraction, near_sharp_fraction=near_sharp_fraction, defocus_fraction=defocus_fraction
    )
    return drawn.kernels[0], int(drawn.kernel_id[0]), drawn.sigma_major[0], drawn.sigma_minor[0], drawn.theta[0]


def _blur_region(
    region: np.ndarray,
    rng: np.random.Generator,
    bank16_fraction: float,
    noise_sigma: float,
    noise_seed: int,
    kernel_family: str = "gaussian",
    drawn: tuple | None = None,
    defocus_fraction: float = 0.0,
    near_sharp_fraction: float = 0.0,
) -> _BlurredCrop:
    """Blur a crop-plus-margin region (margin: half the kernel family's size) with a kernel drawn from ``rng`` and
    keep the centre.

    The noise has its own seed (drawn by the caller whether or not there is noise), so that switching noise on or off
    changes nothing else about the data. ``drawn`` (a camera-shake kernel with its id and spread, as
    :func:`_draw_kernel` returns them) blurs with that kernel instead of drawing one.
    """
    if drawn is None:
        drawn = _draw_kernel(rng, kernel_family, bank16_fraction, defocus_fraction, near_sharp_fraction)
    kernel, kernel_id, sigma_major, sigma_minor, theta = drawn
    generator = torch.Generator().manual_seed(noise_seed) if noise_sigma > 0 else None
    blurred = degrade(np.ascontiguousarray(region), kernel, noise_sigma=noise_sigma, generator=generator)
    margin = _margin(kernel_family)
    centre = (slice(margin, region.shape[0] - margin), slice(margin, region.shape[1] - margin))
    return _BlurredCrop(
        sharp=np.ascontiguousarray(region[centre]),
        blurred=blurred[centre],
        blurred_region=blurred,
        kernel=kernel,
        kernel_id=kernel_id,
        sigma_major=float(sigma_major),
        sigma_minor=float(sigma_minor),
        theta=float(theta),
        noise_sigma=noise_sigma,
    )


def _margin(kernel_family: str) -> int:
    """Real-context margin around a crop: half the family's kernel size."""
    return MOTION_KERNEL_SIZE // 2 if kernel_family == "motion" else MARGIN


def _draw_noise_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**63 - 1))


def _check_common(crop_size: int, bank16_fraction: float, noise_sigma: float) -> None:
    if crop_size < 1:
        raise ValueError(f"crop_size must be positive, got {crop_size}.")
    if not 0.0 <= bank16_fraction <= 1.0:
        raise ValueError(f"bank16_fraction must be in [0, 1], got {bank16_fraction}.")
    if noise_sigma < 0:
        raise ValueError(f"noise_sigma must be non-negative, got {noise_sigma}.")


@dataclass(frozen=True)
class _CorpusBlurrer:
    """The batched ``map`` function of :func:`build_corpus`: ``crops_per_image`` blurred crops per image."""

    crop_size: int
    crops_per_image: int
    seed: int
    bank16_fraction: float
    noise_sigma: float
    main_pid: int = field(default_factory=os.getpid)

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        if os.getpid() != self.main_pid:
            # A `num_proc` worker: torch's OpenMP pool does not survive fork, and a worker whose parent already ran a
            # parallel torch op hangs in its first one unless it runs single-threaded (the workers share the cores
            # anyway).
            torch.set_num_threads(1)
        out: dict[str, list] = {name: [] for name in FEATURES}
        window = self.crop_size + 2 * MARGIN
        for value, source, image_index in zip(batch["image"], batch["source"], batch["image_index"], strict=True):
            # Seeding per image (not per process or batch) makes the corpus independent of num_proc and order.
            rng = np.random.default_rng([self.seed, image_index])
            image = _mirror_pad_to(_decode_rgb(value), window)
            for _ in range(self.crops_per_image):
                region = _random_region(image, window, rng)
                crop = _blur_region(region, rng, self.bank16_fraction, self.noise_sigma, _draw_noise_seed(rng))
                out["sharp"].append(PILImage.fromarray(crop.sharp))
                out["blurred"].append(PILImage.fromarray(crop.blurred))
                out["kernel"].append(crop.kernel.astype(np.float32))
                out["sigma_major"].append(crop.sigma_major)
                out["sigma_minor"].append(crop.sigma_minor)
                out["theta"].append(crop.theta)
                out["kernel_id"].append(crop.kernel_id)
                out["source"].append(source)
        return out


def build_corpus(
    sources: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    crop_size: int = 128,
    crops_per_image: int = 4,
    seed: int = 0,
    bank16_fraction: float = 0.5,
    noise_sigma: float = 0.0,
    num_proc: int | None = None,
    small_images: str = "pad",
) -> datasets.Dataset:
    """Materialise blurred training crops from image folders and/or Hub image datasets.

    Args:
        sources: folder paths and/or Hub dataset ids (``"user/name"`` or ``"user/name:split"``; a string that is not
            an existing folder is loaded with ``datasets.load_dataset`` and its first Image column is used).
        crop_size: side of the square crops.
        crops_per_image: random crops cut from every image, each blurred with its own kernel.
        seed: seeds everything; image ``i`` draws from ``numpy.random.default_rng([seed, i])``.
        bank16_fraction: probability that a crop's kernel is one of the protocol's bank16 kernels rather than one of
            the random family (see :func:`bikanet_hf.kernels.sample_kernels`).
        noise_sigma: white Gaussian noise added after blurring, on the 0–255 scale (0 = none).
        num_proc: worker processes for decoding and blurring (``None`` = this process).
        small_images: images smaller than ``crop_size + 16`` on a side are mirror-padded (``"pad"``) or left out
            with a warning (``"skip"``).

    Returns:
        A dataset with :data:`FEATURES`: ``sharp`` and ``blurred`` crops (PNG, lossless), the 17×17 ``kernel``, its
        parameters ``sigma_major``, ``sigma_minor``, ``theta`` (degrees), ``kernel_id`` (bank16 index or -1) and
        ``source`` (``"<folder>/<file>"`` or ``"<hub id>:<index>"``).

    Unreadable files are skipped with one warning; a source without readable images raises ``ValueError``.
    """
    _check_common(crop_size, bank16_fraction, noise_sigma)
    if crops_per_image < 1:
        raise ValueError(f"crops_per_image must be positive, got {crops_per_image}.")
    if small_images not in SMALL_IMAGE_POLICIES:
        raise ValueError(f"small_images must be one of {SMALL_IMAGE_POLICIES}, got {small_images!r}.")
    images = _readable_images(sources, num_proc=num_proc)
    window = crop_size + 2 * MARGIN
    if small_images == "skip":
        heights, widths = images["height"][:], images["width"][:]
        small = [i for i, (h, w) in enumerate(zip(heights, widths, strict=True)) if h < window or w < window]
        if small:
            if len(small) == len(images):
                raise ValueError(
                    f"no images of at least {window}×{window} pixels (crop size {crop_size} plus the "
                    f"{MARGIN}-pixel blur margin) in {sources}; use small_images='pad' to pad them."
                )
            names = images["source"][:]
            warnings.warn(
                f"Skipped {len(small)} image(s) smaller than {window}×{window} pixels (crop size plus the blur "
                f"margin): {_list_names([names[i] for i in small])}.",
                stacklevel=2,
            )
            images = images.select(sorted(set(range(len(images))) - set(small))).flatten_indices()
    blurrer = _CorpusBlurrer(crop_size, crops_per_image, seed, bank16_fraction, noise_sigma)
    return images.map(
        blurrer,
        batched=True,
        # Small batches keep memory flat and let the progress bar move on long builds.
        batch_size=16,
        num_proc=num_proc,
        remove_columns=images.column_names,
        features=FEATURES,
        desc="Blurring crops",
    )


# ---------------------------------------------------------------------------------------------------------------
# Validation: the protocol's benchmark pairs
# ---------------------------------------------------------------------------------------------------------------
def _png(array: np.ndarray) -> dict[str, Any]:
    """An ``Image`` feature value holding the array as PNG (lossless), so that pixels round-trip exactly."""
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def validation_split(
    folder: str | os.PathLike | None = None,
    track: str = "quick",
    seed: int = 0,
    *,
    noise: bool = False,
    limit: int | None = None,
) -> datasets.Dataset:
    """The protocol's benchmark pairs (full images) on ``folder`` (default: ``bsds500_val`` of the data folder), as a
    dataset with :data:`FEATURES`, ``source`` being ``"<folder name>/<file name>"``.

    ``track``, ``seed`` and ``noise`` are those of :func:`bikanet_hf.protocol.protocol_pairs`; ``limit`` keeps the
    first images only (sorted by name).
    """
    folder = Path(folder) if folder is not None else default_data_dir() / DEFAULT_VALIDATION_FOLDER
    if not folder.is_dir():
        raise FileNotFoundError(f"Validation folder {folder} does not exist.")
    name = folder.resolve().name
    rows: dict[str, list] = {column: [] for column in FEATURES}
    for pair in protocol_pairs(folder, track=track, seed=seed, noise=noise, limit=limit):
        rows["sharp"].append(_png(pair.sharp))
        rows["blurred"].append(_png(pair.blurred))
        rows["kernel"].append(pair.kernel.astype(np.float32))
        rows["sigma_major"].append(pair.sigma_major)
        rows["sigma_minor"].append(pair.sigma_minor)
        rows["theta"].append(pair.theta)
        rows["kernel_id"].append(pair.kernel_id)
        rows["source"].append(f"{name}/{pair.name}")
    return datasets.Dataset.from_dict(rows, features=FEATURES)


def build_corpus_dict(
    train_sources: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    validation_folder: str | os.PathLike | None = None,
    **build_kwargs: Any,
) -> datasets.DatasetDict:
    """``train`` (:func:`build_corpus` on ``train_sources``, default ``bsds500_train``) and ``validation``
    (:func:`validation_split` on ``validation_folder``, default ``bsds500_val``) as one ``DatasetDict``."""
    if train_sources is None:
        train_sources = [default_data_dir() / DEFAULT_TRAIN_FOLDER]
    return datasets.DatasetDict(
        {"train": build_corpus(train_sources, **build_kwargs), "validation": validation_split(validation_folder)}
    )


# ---------------------------------------------------------------------------------------------------------------
# Sharing: a dataset card and the Hub
# ---------------------------------------------------------------------------------------------------------------
def _size_category(rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return label
    return "1M<n<10M" if rows < 10_000_000 else "n>10M"


def _source_licence(source: str | os.PathLike) -> str:
    if _is_hub_id(source):
        hub_id = str(source).partition(":")[0]
        return f"Hub dataset [{hub_id}](https://huggingface.co/datasets/{hub_id}): see that dataset's licence."
    name = Path(source).resolve().name
    for prefix, note in _FOLDER_LICENCES.items():
        if name.lower().startswith(prefix):
            return f"`{name}`: {note}"
    return f"`{name}`: licence unknown; check the terms of these images before sharing the corpus."


def dataset_card(
    dataset_dict_or_dataset: datasets.DatasetDict | datasets.Dataset,
    sources: str | os.PathLike | Iterable[str | os.PathLike],
    build_kwargs: dict[str, Any] | None = None,
    *,
    pretty_name: str = "BIKAnet blurred-crop corpus",
    extra_metadata: dict[str, Any] | None = None,
) -> str:
    """A Hugging Face dataset card (``README.md``) for a corpus: YAML metadata, how it was built, its columns and the
    licences of its sources.

    ``build_kwargs`` are the :func:`build_corpus` arguments used (defaults are filled in); ``extra_metadata`` is merged
    into the YAML header (used by :func:`push_corpus_to_hub` to keep the ``configs``/``dataset_info`` that
    ``push_to_hub`` wrote).
    """
    import yaml  # a dependency of datasets and huggingface_hub

    if isinstance(dataset_dict_or_dataset, datasets.Dataset):
        splits = {"train": dataset_dict_or_dataset}
    else:
        splits = dict(dataset_dict_or_dataset)
    settings = {
        "crop_size": 128,
        "crops_per_image": 4,
        "seed": 0,
        "bank16_fraction": 0.5,
        "noise_sigma": 0.0,
        "small_images": "pad",
        **(build_kwargs or {}),
    }
    sources = [str(s) for s in _as_source_list(sources)]
    metadata: dict[str, Any] = dict(extra_metadata or {})
    metadata.update(
        {
            "license": "other",
            # The crops keep the terms of their sources, which differ: the card's "Licences" section lists them.
            "license_name": "mixed-source-licences",
            "task_categories": ["image-to-image"],
            "tags": ["deblurring", "image-restoration", "blur-kernels"],
            "size_categories": [_size_category(sum(len(split) for split in splits.values()))],
            "pretty_name": pretty_name,
        }
    )
    header = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
    split_rows = "\n".join(f"| `{name}` | {len(split):,} |" for name, split in splits.items())
    licences = "\n".join(f"- {_source_licence(s)}" for s in sources)
    noise = (
        f"white Gaussian noise with σ = {settings['noise_sigma']} (0–255 scale) added after blurring"
        if settings["noise_sigma"] > 0
        else "no noise"
    )
    crop = settings["crop_size"]
    small_policy = "mirror-padded" if settings["small_images"] == "pad" else "skipped"
    return f"""---
{header}---

# {pretty_name}

Pairs of sharp and Gaussian-blurred image crops with the exact blur kernel, for training and evaluating blind
deblurring and kernel estimation ([BIKAnet](https://huggingface.co/spaces/bikanet-hf/bikanet)).

## How it was built

- **train**: {settings["crops_per_image"]} random {crop}×{crop} crops per source image (images smaller than
  the crop plus its blur margin were {small_policy}). Each crop has its own 17×17 kernel: with probability
  {settings["bank16_fraction"]} one of the benchmark protocol's 16 "bank16" kernels, otherwise an anisotropic
  Gaussian of the protocol's random family (σ₁, σ₂ ~ U[0.6, 4.0], θ ~ U[0°, 180°)).
- Blurring follows the benchmark protocol: true convolution, {noise}, rounding to 8 bits. Each crop was blurred with
  an 8-pixel margin of real image around it and then cut out, so its borders show real blur, not padding.
- **validation** (when present): the protocol's "quick" pairs on full images (image *i*, sorted by name, blurred
  with bank16 kernel *i* mod 16).
- Seed {settings["seed"]}: image *i* draws from `numpy.random.default_rng([seed, i])`, so the build is reproducible.

| split | rows |
|---|---|
{split_rows}

## Columns

| column | type | meaning |
|---|---|---|
| `sharp` | image (PNG) | the sharp crop, RGB 8-bit |
| `blurred` | image (PNG) | the blurred crop, RGB 8-bit |
| `kernel` | float32 17×17 | the blur kernel (sums to 1; `x` to the right, `y` downwards) |
| `sigma_major`, `sigma_minor` | float32 | the kernel's Gaussian widths σ₁ ≥ σ₂ in pixels |
| `theta` | float32 | the angle of σ₁ from the x axis, in degrees |
| `kernel_id` | int32 | index into bank16, or -1 for a kernel of the random family |
| `source` | string | the source image: `<folder>/<file>` or `<hub id>:<index>` |

## Licences

The crops are derived from the source images and keep their terms; the corpus as a whole is for **non-commercial
research** when any source is (BSDS500 is). Do not redistribute it beyond those terms.

{licences}
"""


def push_corpus_to_hub(
    dataset_dict: datasets.DatasetDict,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
    sources: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    build_kwargs: dict[str, Any] | None = None,
    pretty_name: str = "BIKAnet blurred-crop corpus",
) -> None:
    """Push ``dataset_dict`` to the Hub dataset repo ``repo_id``, then replace its ``README.md`` with
    :func:`dataset_card` (``sources`` default to ``bsds500_train``).

    ``push_to_hub`` writes a README whose YAML lists the splits and features; that metadata is kept in the card.
    """
    from huggingface_hub import DatasetCard, HfApi

    dataset_dict.push_to_hub(repo_id, private=private, token=token, revision=revision)
    api = HfApi(token=token)
    try:
        written = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision)
        existing = DatasetCard.load(written).data.to_dict()
    except Exception:  # no README to merge (it is only metadata): write the card alone
        existing = {}
    if sources is None:
        sources = [default_data_dir(must_exist=False) / DEFAULT_TRAIN_FOLDER]
    card = dataset_card(dataset_dict, sources, build_kwargs, pretty_name=pretty_name, extra_metadata=existing)
    api.upload_file(
        path_or_fileobj=card.encode("utf-8"),
        path_in_repo="README.md",
        repo_id=repo_id,
        repo_type="dataset",
        revision=revision,
        commit_message="Add dataset card",
    )


# ---------------------------------------------------------------------------------------------------------------
# On-the-fly sampling
# ---------------------------------------------------------------------------------------------------------------
class OnTheFlyTransform:
    """The ``with_transform`` function of :func:`on_the_fly`: turns a batch of sample ids into blurred crops.

    Sample ``i`` draws everything (image, crop position, flip/rotation, kernel, noise, JPEG quality) from
    ``numpy.random.default_rng([seed, i])``. Images are decoded the first time they are used and kept in memory,
    since decoding a JPEG per sample would dominate the cost; the cache is not pickled, so each DataLoader worker
    fills its own.
    """

    def __init__(
        self,
        images: list[dict[str, Any]],
        crop_size: int,
        seed: int,
        bank16_fraction: float,
        noise_sigma: float,
        noise_probability: float,
        context_probability: float = 1.0,
        kernel_family: str = "gaussian",
        estimated_kernel_probability: float = 0.0,
        kernel_estimates: dict[str, np.ndarray] | None = None,
        defocus_fraction: float = 0.0,
        jpeg_probability: float = 0.0,
        near_sharp_fraction: float = 0.0,
    ) -> None:
        self.images = images  # undecoded Image values: {"bytes", "path"}
        self.crop_size = crop_size
        self.seed = seed
        self.bank16_fraction = bank16_fraction
        self.noise_sigma = noise_sigma
        self.noise_probability = noise_probability
        self.context_probability = context_probability
        self.kernel_family = kernel_family
        self.estimated_kernel_probability = estimated_kernel_probability
        self.kernel_estimates = kernel_estimates
        self.defocus_fraction = defocus_fraction
        self.jpeg_probability = jpeg_probability
        self.near_sharp_fraction = near_sharp_fraction
        self.margin = _margin(kernel_family)
        self._decoded: list[np.ndarray | None] = [None] * len(images)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_decoded"] = [None] * len(self.images)
        return state

    def _image(self, index: int) -> np.ndarray:
        if self._decoded[index] is None:
            # Padding once here means every crop window (crop + margin) fits, whatever the image size.
            self._decoded[index] = _mirror_pad_to(_decode_rgb(self.images[index]), self.crop_size + 2 * self.margin)
        return self._decoded[index]

    def sample(self, sample_id: int) -> dict[str, torch.Tensor]:
        """One training sample, as tensors (see :func:`on_the_fly`)."""
        rng = np.random.default_rng([self.seed, int(sample_id)])
        # Draw order is fixed and every draw is made whether it is used or not, so that e.g. turning noise on
        # keeps the same crops and kernels.
        image = self._image(int(rng.integers(len(self.images))))
        region = _random_region(image, self.crop_size + 2 * self.margin, rng)
        m = self.margin
        if rng.random() >= self.context_probability:
            # Blur the crop as the protocol blurs a whole image (mirror padding) instead of with its real
            # surroundings: the Wiener front-end then sees no border artefacts it cannot explain, which otherwise
            # dominate the loss on small crops (see the README's training notes).
            region = np.pad(region[m:-m, m:-m], ((m, m), (m, m), (0, 0)), mode="reflect")
        flip, quarter_turns = rng.random() < 0.5, int(rng.integers(4))
        if flip:
            region = region[:, ::-1]
        region = np.rot90(region, quarter_turns)
        noisy, sigma_fraction = rng.random() < self.noise_probability, float(rng.uniform(0.0, 1.0))
        sigma = sigma_fraction * self.noise_sigma if noisy else 0.0
        crop = _blur_region(
            region,
            rng,
            self.bank16_fraction,
            sigma,
            _draw_noise_seed(rng),
            self.kernel_family,
            defocus_fraction=self.defocus_fraction,
            near_sharp_fraction=self.near_sharp_fraction,
        )
        # Drawn last, so that the option changes nothing else about the data.
        model_kernel, estimated = crop.kernel, rng.random() < self.estimated_kernel_probability
        if estimated and self.kernel_estimates is None:
            estimate = estimate_shake_kernel(crop.blurred_region / 255.0, crop.kernel.shape[0])
            model_kernel = align_kernel(estimate, crop.kernel)
        elif estimated:
            crop, model_kernel = self._precomputed_sample(rng, sigma)
        # After all the others, for the same reason.
        low, high = JPEG_QUALITY_RANGE
        compressed, quality = rng.random() < self.jpeg_probability, int(rng.integers(low, high + 1))
        blurred = jpeg_roundtrip(np.ascontiguousarray(crop.blurred), quality) if compressed else crop.blurred
        return {
            "sharp": to_tensor(crop.sharp),
            "blurred": to_tensor(blurred),
            "kernel": torch.from_numpy(crop.kernel.astype(np.float32)),
            "model_kernel": torch.from_numpy(model_kernel.astype(np.float32)),
            "kernel_is_estimate": torch.tensor(float(estimated)),
            "kernel_id": torch.tensor(crop.kernel_id, dtype=torch.int64),
            "sigma_major": torch.tensor(crop.sigma_major, dtype=torch.float32),
            "sigma_minor": torch.tensor(crop.sigma_minor, dtype=torch.float32),
            "theta": torch.tensor(crop.theta, dtype=torch.float32),
            "noise_sigma": torch.tensor(crop.noise_sigma, dtype=torch.float32),
            "jpeg_quality": torch.tensor(quality if compressed else 0, dtype=torch.int64),
        }

    def _precomputed_sample(self, rng: np.random.Generator, noise_sigma: float) -> tuple[_BlurredCrop, np.ndarray]:
        """A crop of a photo whose whole-photo kernel estimate was made beforehand: blurred with that photo's kernel
        and given the estimate (a camera-shake estimate aligned to it); the same flip and rotation for crop and
        kernels."""
        estimates = self.kernel_estimates
        entry = int(rng.integers(len(estimates["kernel"])))
        region = _random_region(
            self._image(int(estimates["image_index"][entry])), self.crop_size + 2 * self.margin, rng
        )
        kernel, estimate = (
            estimates["kernel"][entry].astype(np.float64),
            estimates["estimate"][entry].astype(np.float64),
        )
        flip, quarter_turns = rng.random() < 0.5, int(rng.integers(4))
        if flip:
            region, kernel, estimate = region[:, ::-1], kernel[:, ::-1], estimate[:, ::-1]
        region, kernel, estimate = (np.rot90(a, quarter_turns) for a in (region, kernel, estimate))
        kernel = np.ascontiguousarray(kernel)
        drawn = (kernel, -1, *kernel_spread(kernel))
        crop = _blur_region(
            region, rng, self.bank16_fraction, noise_sigma, _draw_noise_seed(rng), self.kernel_family, drawn
        )
        return crop, align_kernel(estimate, kernel) if self.kernel_family == "motion" else estimate

    def __call__(self, batch: dict[str, list]) -> dict[str, list[torch.Tensor]]:
        samples = [self.sample(i) for i in batch["sample_id"]]
        return {key: [s[key] for s in samples] for key in samples[0]} if samples else {}


def _load_kernel_estimates(
    path: str | os.PathLike, images: list[dict[str, Any]], kernel_family: str
) -> dict[str, np.ndarray]:
    """The arrays of a ``train/precompute_kernel_estimates.py`` file, checked against the photos they index and the
    kernel family."""
    with np.load(path) as file:
        estimates = {key: file[key] for key in ("sources", "image_index", "kernel", "estimate")}
    names = [Path(str(source)).name for source in estimates["sources"]]
    ours = [Path(image["path"] or "").name for image in images]
    if names != ours:
        raise ValueError(
            f"{path} was made from other photos ({len(names)}, e.g. {_list_names(names[:3])}) than these "
            f"({len(ours)}, e.g. {_list_names(ours[:3])}); run train/precompute_kernel_estimates.py on the same "
            "--train_dirs."
        )
    size = MOTION_KERNEL_SIZE if kernel_family == "motion" else KERNEL_SIZE
    if estimates["kernel"].shape[1:] != (size, size) or len(estimates["kernel"]) == 0:
        raise ValueError(f"{path} holds no {size}×{size} kernels (the {kernel_family} family's size).")
    return estimates


def on_the_fly(
    sharp_dataset: datasets.Dataset,
    *,
    num_samples: int,
    crop_size: int = 64,
    seed: int = 0,
    bank16_fraction: float = 0.5,
    noise_sigma: float = 0.0,
    noise_probability: float = 0.0,
    context_probability: float = 1.0,
    kernel_family: str = "gaussian",
    estimated_kernel_probability: float = 0.0,
    kernel_estimates: str | os.PathLike | None = None,
    defocus_fraction: float = 0.0,
    jpeg_probability: float = 0.0,
    near_sharp_fraction: float = 0.0,
) -> datasets.Dataset:
    """A dataset of ``num_samples`` training samples made when read, from the ``sharp`` images of ``sharp_dataset``
    (see :func:`sharp_images`).

    Reading sample ``i`` picks an image, a random ``crop_size`` crop (with the 8-pixel real-context margin; small
    images are mirror-padded), a random horizontal flip and 90° rotation, a fresh kernel
    (:func:`bikanet_hf.kernels.sample_kernels` with ``bank16_fraction``), and with probability ``noise_probability``
    noise of σ ~ U[0, ``noise_sigma``] (0–255 scale); all drawn from ``numpy.random.default_rng([seed, i])``, so the
    same id always gives the same sample. For new samples every epoch, rebuild with ``seed + epoch``. With
    probability ``1 - context_probability`` a crop is blurred with mirror padding instead of its real surroundings.
    ``kernel_family="motion"`` draws camera-shake kernels (:func:`bikanet_hf.motion.camera_shake_kernel`, 31×31)
    instead of Gaussians (``bank16_fraction`` is then unused). With probability ``defocus_fraction`` a Gaussian
    crop's kernel is a defocus disk instead (:func:`bikanet_hf.kernels.defocus_kernel`, radius 1–7.5 px), the
    blur of a lens out of focus, and with probability ``near_sharp_fraction`` (of the others) a nearly sharp Gaussian
    (σ 0.3–0.6, :data:`~bikanet_hf.kernels.NEAR_SHARP_SIGMA_RANGE`), so that a model learns to leave a sharp photo as
    it is; the ``kernel_estimates`` file says which kernels its photos were blurred with.

    ``model_kernel`` is the kernel the model is given (``kernel_is_estimate`` says which): the true ``kernel``, or
    with probability
    ``estimated_kernel_probability`` the blind estimate that deblurring will use, so that a model learns to deblur
    with the errors of its estimator (after Vasu et al., "Non-blind deblurring: handling kernel uncertainty with
    CNNs", CVPR 2018). With ``kernel_estimates`` (an ``.npz`` of ``train/precompute_kernel_estimates.py`` made from
    the same photos, in the same order, for the same kernel family) those samples take a crop of a photo blurred
    with one of the file's kernels and the estimate made from that whole photo, as deblurring a photo meets it.
    Without it (camera shake only) the estimate is made from the blurred crop with its margins by
    :func:`bikanet_hf.shake_estimation.estimate_shake_kernel`, which is much worse than from a whole photo.
    Camera-shake estimates are aligned to the true kernel (:func:`~bikanet_hf.shake_estimation.align_kernel`): the
    model learns the estimator's shape errors, not a shift no blurred image reveals.

    ``ds[i]`` is a dict of tensors: ``sharp`` and ``blurred`` (float32 ``3×S×S`` in [0, 1]; ``blurred`` is the
    8-bit blurred image / 255), ``kernel`` (float32 17×17, or 31×31 for motion), ``kernel_id`` (int64),
    ``sigma_major``, ``sigma_minor``,
    ``theta`` and ``noise_sigma`` (float32), and ``jpeg_quality`` (int64): with probability ``jpeg_probability`` the
    blurred crop is saved as a JPEG of a quality drawn from :data:`JPEG_QUALITY_RANGE` and read back
    (:func:`bikanet_hf.image_io.jpeg_roundtrip`), as users' photos come; 0 for the others. A
    ``torch.utils.data.DataLoader`` with the default collate batches them.
    """
    _check_common(crop_size, bank16_fraction, noise_sigma)
    if num_samples < 0:
        raise ValueError(f"num_samples must be non-negative, got {num_samples}.")
    for name, probability in (("noise_probability", noise_probability), ("jpeg_probability", jpeg_probability)):
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {probability}.")
    feature = sharp_dataset.features.get("sharp")
    if not isinstance(feature, datasets.Image):
        raise ValueError(f"sharp_dataset needs a 'sharp' Image column (see sharp_images), got {feature!r}.")
    if len(sharp_dataset) == 0:
        raise ValueError("sharp_dataset holds no images.")
    images = list(sharp_dataset.cast_column("sharp", datasets.Image(decode=False))["sharp"])
    if kernel_family not in KERNEL_FAMILIES:
        raise ValueError(f"kernel_family must be one of {KERNEL_FAMILIES}, got {kernel_family!r}.")
    if not 0.0 <= context_probability <= 1.0:
        raise ValueError(f"context_probability must be in [0, 1], got {context_probability}.")
    if not 0.0 <= estimated_kernel_probability <= 1.0:
        raise ValueError(f"estimated_kernel_probability must be in [0, 1], got {estimated_kernel_probability}.")
    for name, fraction in (("defocus_fraction", defocus_fraction), ("near_sharp_fraction", near_sharp_fraction)):
        if not 0.0 <= fraction <= 1.0 or (fraction and kernel_family != "gaussian"):
            raise ValueError(f"{name} must be in [0, 1], and 0 unless kernel_family='gaussian'; got {fraction}.")
    if estimated_kernel_probability > 0 and kernel_family != "motion" and kernel_estimates is None:
        raise ValueError(
            "estimated_kernel_probability with Gaussian blur needs kernel_estimates (whole-photo estimates of "
            "train/precompute_kernel_estimates.py --kernel_family gaussian); only camera shake is estimated per crop."
        )
    on_crops = kernel_estimates is None and estimated_kernel_probability > 0
    if on_crops and crop_size + 2 * (MOTION_KERNEL_SIZE // 2) < 2 * MOTION_KERNEL_SIZE:
        raise ValueError(f"Estimating camera shake needs crop_size ≥ {MOTION_KERNEL_SIZE + 1}, got {crop_size}.")
    estimates = None
    if kernel_estimates is not None:
        if estimated_kernel_probability == 0:
            raise ValueError("kernel_estimates is only used with estimated_kernel_probability > 0.")
        estimates = _load_kernel_estimates(kernel_estimates, images, kernel_family)
    transform = OnTheFlyTransform(
        images,
        crop_size,
        seed,
        bank16_fraction,
        noise_sigma,
        noise_probability,
        context_probability,
        kernel_family,
        estimated_kernel_probability,
        estimates,
        defocus_fraction,
        jpeg_probability,
        near_sharp_fraction,
    )
    return datasets.Dataset.from_dict({"sample_id": np.arange(num_samples)}).with_transform(transform)
