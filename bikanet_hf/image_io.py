"""Reading images the way the protocol and users need them: 8-bit RGB ``H×W×3`` numpy arrays.

Step 1 of the protocol's blurring: load as RGB uint8, grayscale replicated to 3 channels, alpha dropped.
EXIF orientation is applied, so a phone photo is upright. Anything that is not a readable image raises
``ValueError`` naming the file, never an exception from deep inside PIL.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def to_rgb_uint8(image: Image.Image) -> np.ndarray:
    """PIL image of any mode (L, LA, RGBA, P, CMYK, I;16, I, F …) → ``H×W×3`` uint8; 16-bit data is scaled."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        # 16-bit range to 8-bit: always for the 16-bit modes (a dark 16-bit scan may stay under 256), and for
        # 32-bit integers ("I", which carry either range) where the values leave the 8-bit one
        arr = arr / 257.0 if image.mode != "I" or arr.max() > 255 else arr
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=-1)
    if image.mode == "F":
        arr = np.clip(np.round(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """``H×W×3`` uint8 RGB → ``3×H×W`` float32 tensor in [0, 1], the layout the estimators and BIKAnet read."""
    rgb = np.ascontiguousarray(rgb)
    if not rgb.flags.writeable:  # e.g. np.asarray(a PIL image): torch warns about sharing read-only memory
        rgb = rgb.copy()
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255)


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``H×W×3`` uint8 RGB, or raise ``ValueError`` that says what is wrong with it."""
    return to_rgb_uint8(open_image(path))


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open and decode an image file, or raise ``ValueError`` that says what is wrong with it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file.")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: the file is empty.")
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file PIL can read.") from None
    except Image.DecompressionBombError as err:
        raise ValueError(f"{path}: the image is too large to open safely ({err}).") from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise ValueError(f"{path}: the image data is corrupt or truncated ({err}).") from None


def alpha_channel(image: Image.Image) -> np.ndarray | None:
    """The ``H×W`` uint8 alpha of an image with transparency (upright, as :func:`to_rgb_uint8`), else ``None``."""
    if image.mode not in ("RGBA", "LA", "PA") and not (image.mode == "P" and "transparency" in image.info):
        return None
    return np.asarray(ImageOps.exif_transpose(image).convert("RGBA"), dtype=np.uint8)[..., 3].copy()


def read_image(image: str | os.PathLike | Image.Image | np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A user's image as ``(rgb, alpha)``: ``H×W×3`` uint8 and the ``H×W`` uint8 alpha channel or ``None``.

    Takes a path, a PIL image (any mode; EXIF orientation applied) or a numpy array: ``H×W`` or ``H×W×1`` (grey),
    ``H×W×3`` (RGB) or ``H×W×4`` (RGBA), of dtype uint8, uint16 (scaled to 8 bits) or float in [0, 1]. Raises
    ``ValueError`` with a sentence saying what is wrong.
    """
    if isinstance(image, str | os.PathLike):
        image = open_image(image)
    if isinstance(image, Image.Image):
        rgb, alpha = to_rgb_uint8(image), alpha_channel(image)
    elif isinstance(image, np.ndarray):
        rgb, alpha = _array_to_rgb(image)
    else:
        raise ValueError(f"Expected an image path, a PIL image or a numpy array, got {type(image).__name__}.")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"The image is empty ({rgb.shape[1]}×{rgb.shape[0]} pixels).")
    return rgb, alpha


def _array_to_rgb(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"An image array must be H×W, H×W×3 or H×W×4, got shape {array.shape}.")
    if array.dtype == np.uint8:
        pass
    elif array.dtype == np.uint16:
        array = np.round(array / 257.0).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError("The image array contains NaN or infinite values.")
        if array.size and (array.min() < 0 or array.max() > 1):
            raise ValueError(
                f"A float image array must hold values in [0, 1], got {array.min():.3g}…{array.max():.3g} "
                "(pass uint8 for 0–255 data)."
            )
        array = np.round(array * 255.0).astype(np.uint8)
    else:
        raise ValueError(f"Image arrays must be uint8, uint16 or float in [0, 1], got {array.dtype}.")
    alpha = array[..., 3].copy() if array.shape[-1] == 4 else None
    rgb = np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array[..., :3]
    return np.ascontiguousarray(rgb), alpha


def is_jpeg(image) -> bool:
    """Whether ``image`` (a path or a PIL image, as :func:`read_image` takes) is a JPEG file; an array carries no
    format: ``False``, as for a file that cannot be read (:func:`read_image` says what is wrong with it)."""
    if isinstance(image, str | os.PathLike):
        try:
            with Image.open(image) as opened:
                return opened.format == "JPEG"
        except (OSError, ValueError):
            return False
    return isinstance(image, Image.Image) and image.format == "JPEG"


# JPEG qualities of the training corpus's compressed crops (inclusive): from web images (70) to phone photos (95).
JPEG_QUALITY_RANGE = (70, 95)


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """An ``H×W×3`` uint8 image saved as a JPEG of ``quality`` (PIL, 4:2:0 chroma) and read back: the artefacts
    users' photos carry, for benchmarks and training crops."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return np.asarray(image.convert("RGB")).copy()


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files in ``folder`` (not recursive), sorted by file name as the protocol's pairings require."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder.")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
