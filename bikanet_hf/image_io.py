"""Reading images the way the protocol and users need them: 8-bit RGB ``H×W×3`` numpy arrays.

Step 1 of the protocol's blurring: load as RGB uint8, grayscale replicated to 3 channels, alpha dropped.
EXIF orientation is applied, so a phone photo is upright. Anything that is not a readable image raises
``ValueError`` naming the file, never an exception from deep inside PIL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def to_rgb_uint8(image: Image.Image) -> np.ndarray:
    """PIL image of any mode (L, LA, RGBA, P, CMYK, I;16, I, F …) → ``H×W×3`` uint8; 16-bit data is scaled."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        arr = arr / 257.0 if arr.max() > 255 else arr  # 16-bit range to 8-bit
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=-1)
    if image.mode == "F":
        arr = np.clip(np.round(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``H×W×3`` uint8 RGB, or raise ``ValueError`` that says what is wrong with it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file.")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: the file is empty.")
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb_uint8(im)
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file PIL can read.") from None
    except Image.DecompressionBombError as err:
        raise ValueError(f"{path}: the image is too large to open safely ({err}).") from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise ValueError(f"{path}: the image data is corrupt or truncated ({err}).") from None


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files in ``folder`` (not recursive), sorted by file name as the protocol's pairings require."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder.")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def iter_images(folder: str | os.PathLike) -> Iterator[tuple[Path, np.ndarray]]:
    """``(path, rgb)`` for each image of :func:`list_images`."""
    for path in list_images(folder):
        yield path, load_rgb(path)
