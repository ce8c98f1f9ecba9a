"""The ``image-deblurring`` pipeline: ``pipeline("image-deblurring", model=...)(image, kernel=None)``.

Blind when no kernel is given: the kernel estimator (the pipeline's ``estimator``, else the ``kernel_estimator``
subfolder of the model's folder or Hub repository) estimates it once per image; BIKAnet then deblurs the image in
overlapping tiles. It runs the same steps as :func:`bikanet_hf.deblur` with ``method="amortized"``, so both give the
same pixels; like it, it tells a model that reads the noise level at least ``JPEG_NOISE_LEVEL`` (2 grey levels) for
a JPEG file, a PIL image read from one, or pixels that show a JPEG's 8×8 blocks (an array carries no format; a
crop that moved the grid may not be recognised: pass ``noise_level=2``), whose compression artefacts the model would
otherwise sharpen. For a motion model this one-pass
estimate is a straight motion; ``deblur(..., blur_type="motion")`` traces the shake's path instead
(``bikanet_hf.shake_estimation``), and ``deblur(..., blur_type="defocus")`` or ``"auto"`` measures a lens's defocus
disk (``bikanet_hf.defocus_estimation``): neither is part of this self-contained file.

Self-contained on purpose (torch, numpy, PIL, transformers and sibling files only): saving the pipeline copies this
file, so that ``pipeline(..., trust_remote_code=True)`` works where ``bikanet_hf`` is not installed.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image
from transformers import Pipeline

from .image_processing_bikanet import BikanetImageProcessor
from .modeling_bikanet import check_precision, jpeg_floored_noise_level, shows_jpeg_blocks, user_noise_level
from .modeling_kernel_estimator import BikanetKernelEstimator

ESTIMATOR_SUBFOLDER = "kernel_estimator"


def kernel_for_model(kernel, size: int) -> np.ndarray:
    """An odd-sized 2-D kernel as ``size×size`` float64 summing to 1: centred in zeros if smaller, its central
    window renormalised if larger. ``ValueError`` for kernels empty, even-sized, not finite or of non-positive sum."""
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim > 2:  # 1×k×k or k×k×1; a 1×1 kernel (a delta) or a 1×k line stays 2-D
        k = k.reshape([n for n in k.shape if n != 1] or [1, 1])
    if k.ndim != 2 or k.size == 0 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise ValueError(f"A blur kernel must be a non-empty 2-D array of odd sizes, got shape {k.shape}.")
    if not np.all(np.isfinite(k)) or k.sum() <= 0:
        raise ValueError("A blur kernel must hold finite values with a positive sum.")
    h, w = k.shape
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    k = k[top : top + size, left : left + size]
    out = np.zeros((size, size))
    y, x = (size - k.shape[0]) // 2, (size - k.shape[1]) // 2
    out[y : y + k.shape[0], x : x + k.shape[1]] = k
    return out / out.sum()


class ImageDeblurringPipeline(Pipeline):
    """Deblurs images with BIKAnet; estimates each image's blur kernel when none is given.

    Call with one image or a list (PIL images, ``H×W(×3)`` arrays or file paths) and optionally ``kernel=`` (an
    array used for every image), ``tile_size=``, ``tile_overlap=``, ``self_ensemble=True`` (8 flips and turns
    averaged), ``precision=`` (default ``"auto"``: bf16 autocast where the device computes it natively) and
    ``noise_level=`` (σ in grey levels, for models that read it; default: measured), as ``bikanet_hf.deblur``.
    Each result is a dict with ``"image"`` (PIL RGB, same size) and ``"kernel"`` (the kernel used, float64).
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False
    _load_video_processor = False

    def __init__(self, *args, estimator=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.model.for_inference()
        if self.image_processor is None:
            self.image_processor = BikanetImageProcessor()
        self._estimator = estimator

    @property
    def estimator(self) -> BikanetKernelEstimator:
        """The kernel estimator, loaded on first use."""
        if not isinstance(self._estimator, BikanetKernelEstimator):
            source = self._estimator
            if source is None:
                source, subfolder = self.model.name_or_path, ESTIMATOR_SUBFOLDER
            else:
                subfolder = ""
            try:
                self._estimator = BikanetKernelEstimator.from_pretrained(os.fspath(source), subfolder=subfolder)
            except OSError as err:
                raise ValueError(
                    f"No kernel estimator found for blind deblurring ({err}); pass kernel=... or estimator=..."
                ) from None
            self._estimator.eval()
        return self._estimator

    def _sanitize_parameters(
        self,
        kernel=None,
        tile_size=None,
        tile_overlap=None,
        self_ensemble=None,
        precision=None,
        noise_level=None,
        **kwargs,
    ):
        preprocess = {"kernel": kernel} if kernel is not None else {}
        if precision is not None:
            check_precision(precision)
        options = (
            ("tile_size", tile_size),
            ("tile_overlap", tile_overlap),
            ("self_ensemble", self_ensemble),
            ("precision", precision),
            ("noise_level", user_noise_level(noise_level, self.model.config)),
        )
        forward = {k: v for k, v in options if v is not None}
        return preprocess, forward, {}

    def preprocess(self, image, kernel=None) -> dict:
        if isinstance(image, str | os.PathLike):
            with Image.open(image) as opened:
                image = opened.copy()
                image.format = opened.format  # copy() drops it
        pixel_values = torch.from_numpy(np.ascontiguousarray(self.image_processor.to_array(image))).permute(2, 0, 1)
        size = self.model.config.kernel_size
        estimated = kernel is None
        if estimated:
            estimate = self.estimator.estimate(pixel_values, for_deblurring=True).kernel[0].double().numpy()
            kernel = kernel_for_model(estimate, size)
        else:
            kernel = kernel_for_model(kernel, size)
        return {
            "pixel_values": pixel_values[None],
            "kernel": torch.from_numpy(kernel).float()[None],
            "kernel_is_estimate": estimated,
            "jpeg_file": isinstance(image, Image.Image) and image.format == "JPEG",
        }

    def _forward(
        self,
        model_inputs: dict,
        tile_size: int | None = 512,
        tile_overlap: int = 64,
        self_ensemble: bool = False,
        precision: str = "auto",
        noise_level: torch.Tensor | None = None,
    ) -> dict:
        if noise_level is None and self.model.config.noise_level_input:
            # a JPEG file, or pixels that show a JPEG's blocks (looked for only here, where the answer is used)
            pixels = model_inputs["pixel_values"]
            if model_inputs["jpeg_file"] or bool(shows_jpeg_blocks(pixels)[0]):
                noise_level = jpeg_floored_noise_level(pixels)
        output = self.model.deblur_tiled(
            model_inputs["pixel_values"],
            model_inputs["kernel"],
            tile_size,
            tile_overlap,
            kernel_is_estimate=model_inputs["kernel_is_estimate"],
            self_ensemble=self_ensemble,
            precision=precision,
            noise_level=noise_level,
        )
        return {"reconstruction": output, "kernel": model_inputs["kernel"]}

    def postprocess(self, model_outputs: dict) -> dict:
        image = self.image_processor.postprocess(model_outputs["reconstruction"])[0]
        return {"image": image, "kernel": model_outputs["kernel"][0].double().cpu().numpy()}
