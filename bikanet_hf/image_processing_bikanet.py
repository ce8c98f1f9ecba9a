"""Image processor of BIKAnet: user images in, model tensors out, and back to PIL images.

Self-contained (copied next to saved weights for ``trust_remote_code`` loading): imports only numpy, PIL, torch and
transformers.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageOps
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature


class BikanetImageProcessor(BaseImageProcessor):
    r"""Turns images into ``pixel_values`` for [`BikanetForImageDeblurring`] and reconstructions back into images.

    Inputs may be PIL images (any mode: grayscale is replicated to RGB, alpha is dropped, EXIF orientation is
    applied), ``H×W``/``H×W×3``/``H×W×4`` numpy arrays (uint8 0–255, or float in [0, 1]) or ``3×H×W`` tensors in
    [0, 1]. A batch of different sizes is mirror-padded to the largest size; ``original_sizes`` says how to crop.

    Args:
        rescale_factor (`float`, *optional*, defaults to `1/255`):
            Factor from 8-bit values to the model's [0, 1] range.
    """

    model_input_names = ["pixel_values"]

    def __init__(self, rescale_factor: float = 1 / 255, **kwargs):
        super().__init__(**kwargs)
        self.rescale_factor = rescale_factor

    def to_array(self, image) -> np.ndarray:
        """One image → H×W×3 float32 array in [0, 1]."""
        if isinstance(image, Image.Image):
            image = ImageOps.exif_transpose(image)
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(image, dtype=np.float32)
                arr = arr / 65535.0 if arr.max() > 255 else arr * self.rescale_factor
                return np.repeat(np.clip(arr, 0, 1)[..., None], 3, axis=-1)
            return np.asarray(image.convert("RGB"), dtype=np.float32) * self.rescale_factor
        if isinstance(image, torch.Tensor):
            if image.ndim != 3 or image.shape[0] not in (1, 3):
                raise ValueError(f"A tensor image must be C×H×W with 1 or 3 channels, got {tuple(image.shape)}.")
            return image.detach().float().cpu().expand(3, -1, -1).permute(1, 2, 0).numpy()
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
            raise ValueError(f"An image array must be H×W, H×W×3 or H×W×4, got shape {arr.shape}.")
        arr = np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr[..., :3]
        if arr.dtype == np.uint8:
            return arr.astype(np.float32) * self.rescale_factor
        if arr.dtype == np.uint16:
            return arr.astype(np.float32) / 65535.0
        return np.clip(arr.astype(np.float32), 0.0, 1.0)

    def preprocess(self, images, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        """Images → ``BatchFeature`` with ``pixel_values`` (B×3×H×W float32 in [0, 1]) and ``original_sizes``."""
        if not isinstance(images, list | tuple):
            images = [images]
        if not images:
            raise ValueError("No images given.")
        arrays = [self.to_array(image) for image in images]
        sizes = [a.shape[:2] for a in arrays]
        if any(h == 0 or w == 0 for h, w in sizes):
            raise ValueError("An image has zero width or height.")
        max_h, max_w = max(h for h, _ in sizes), max(w for _, w in sizes)
        padded = [
            np.pad(a, ((0, max_h - a.shape[0]), (0, max_w - a.shape[1]), (0, 0)), mode="symmetric") for a in arrays
        ]
        pixel_values = np.stack(padded).transpose(0, 3, 1, 2)
        data = {"pixel_values": pixel_values, "original_sizes": np.array(sizes)}
        return BatchFeature(data=data, tensor_type=return_tensors)

    def postprocess(self, reconstruction: torch.Tensor, original_sizes=None) -> list[Image.Image]:
        """Model output (B×3×H×W in [0, 1]) → PIL RGB images, quantised as 8-bit files are, cropped to size."""
        arr = reconstruction.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
        arr = arr.permute(0, 2, 3, 1).numpy()
        images = []
        for i, a in enumerate(arr):
            if original_sizes is not None:
                h, w = (int(v) for v in original_sizes[i])
                a = a[:h, :w]
            images.append(Image.fromarray(np.ascontiguousarray(a), mode="RGB"))
        return images
