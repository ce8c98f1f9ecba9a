"""Configuration of the amortized kernel estimator (one network pass: blurred image → blur kernel).

Self-contained on purpose: copied next to saved weights for ``trust_remote_code`` loading.
"""

from __future__ import annotations

from transformers import PretrainedConfig


class BikanetKernelEstimatorConfig(PretrainedConfig):
    r"""Configuration of [`BikanetKernelEstimator`].

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Colour channels of the input image (the statistics are taken on its luminance).
        kernel_size (`int`, *optional*, defaults to 17):
            Side of the square kernel the estimator returns (odd).
        reblur_sigmas (`list[float]`, *optional*, defaults to `[0.0, 0.7, 1.4, 2.8, 5.0]`):
            Widths (pixels) of the isotropic Gaussians the image is re-blurred with before its gradients are measured;
            0 is the image itself. How fast edges soften under re-blurring tells how blurred they already were.
        num_directions (`int`, *optional*, defaults to 12):
            Directions, evenly spaced over 180°, in which derivatives are taken (they resolve anisotropic blur).
        moments (`list[int]`, *optional*, defaults to `[1, 2, 4]`):
            Powers p of the pooled derivative magnitudes ``mean(|∂I|^p)^(1/p)``; high powers weigh strong edges.
        head_hidden_size (`int`, *optional*, defaults to 256):
            Width of the MLP that maps the statistics to the Gaussian's parameters.
        head_layers (`int`, *optional*, defaults to 2):
            Hidden layers of that MLP.
        sigma_min (`float`, *optional*, defaults to 0.3):
            Smallest blur width (pixels) the estimator can return.
        sigma_max (`float`, *optional*, defaults to 5.0):
            Largest blur width (pixels) the estimator can return.
        crop_size (`int`, *optional*, defaults to 256):
            Side of the crops a large image is measured on by `estimate` (their statistics are pooled).
        max_crops (`int`, *optional*, defaults to 8):
            How many of the most textured crops of a large image `estimate` pools.
        average_symmetries (`bool`, *optional*, defaults to `False`):
            Average the estimate over the mirror images and 90° rotations of the input. Mirroring or rotating an
            image only permutes its directional statistics, so this costs a few passes of the small MLP, not of the
            statistics; it makes the estimate of a mirrored or rotated photo the mirrored or rotated estimate. The
            bundled Gaussian estimator uses it (kernel error 0.097 → 0.095 on the 100 bsds500_val quick pairs); for the
            motion estimator it was neutral (spread error 0.462 against 0.465), so it keeps the default.
        kernel_family (`str`, *optional*, defaults to `"gaussian"`):
            The blur it was trained on: `"gaussian"` (the protocol's Gaussians; its kernel is the Gaussian it
            estimates) or `"motion"` (camera shake, for the motion model: it estimates the shake's covariance, its
            second moments, is trained to match it, and answers with the straight motion of that spread).
        deblur_covariance_scale (`float`, *optional*, defaults to 1.0):
            Factor on the estimated covariance when the kernel is used for deblurring (``bikanet_hf.deblur``, the
            pipeline): deblurring with a kernel wider than the true one costs far more than with a narrower one, so a
            slightly narrower kernel deblurs better on average. Calibrated by ``benchmarks/kernel_scale.py``, on
            photos no model was trained on (wikiphotos10) and on the estimator's training photos, not the benchmark.
        deblur_sigma_offset (`float`, *optional*, defaults to 0.0):
            Pixels taken off the kernel's width along its major axis (after ``deblur_covariance_scale``; the minor axis
            in proportion) when it is used for deblurring, never below ``sigma_min`` nor ``deblur_offset_floor``: the
            estimator reads a photo's own softness as a little blur, which weighs most for mild blur.
        deblur_offset_floor (`float`, *optional*, defaults to 0.0):
            Width (pixels) below which ``deblur_sigma_offset`` narrows no kernel: an estimate narrower than this
            is only scaled, a wider one loses the offset but not below it. Mild blur (σ 0.6–0.8) is deblurred
            best with less taken off, sharp photos (which the estimator reads as about 0.35–0.55 px) with all of it:
            0 (the bundled configs) spares sharp photos, 0.8 suits photos known to be blurred
            (``benchmarks/kernel_scale.py``).
    """

    model_type = "bikanet_kernel_estimator"

    def __init__(
        self,
        num_channels: int = 3,
        kernel_size: int = 17,
        reblur_sigmas: list[float] | None = None,
        num_directions: int = 12,
        moments: list[int] | None = None,
        head_hidden_size: int = 256,
        head_layers: int = 2,
        sigma_min: float = 0.3,
        sigma_max: float = 5.0,
        crop_size: int = 256,
        max_crops: int = 8,
        average_symmetries: bool = False,
        deblur_covariance_scale: float = 1.0,
        deblur_sigma_offset: float = 0.0,
        deblur_offset_floor: float = 0.0,
        kernel_family: str = "gaussian",
        **kwargs,
    ):
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}.")
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"Need 0 < sigma_min < sigma_max, got {sigma_min} and {sigma_max}.")
        self.num_channels = num_channels
        self.kernel_size = kernel_size
        reblur_sigmas = reblur_sigmas if reblur_sigmas is not None else [0.0, 0.7, 1.4, 2.8, 5.0]
        self.reblur_sigmas = [float(s) for s in reblur_sigmas]
        if any(s < 0 for s in self.reblur_sigmas) or not self.reblur_sigmas:
            raise ValueError(f"reblur_sigmas must be non-negative widths, got {self.reblur_sigmas}.")
        self.num_directions = num_directions
        self.moments = [int(p) for p in moments] if moments is not None else [1, 2, 4]
        self.head_hidden_size = head_hidden_size
        self.head_layers = head_layers
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.crop_size = crop_size
        self.max_crops = max_crops
        self.average_symmetries = average_symmetries
        if deblur_covariance_scale <= 0 or deblur_sigma_offset < 0 or deblur_offset_floor < 0:
            raise ValueError(
                "Need deblur_covariance_scale > 0, deblur_sigma_offset >= 0 and deblur_offset_floor >= 0, got "
                f"{deblur_covariance_scale}, {deblur_sigma_offset} and {deblur_offset_floor}."
            )
        self.deblur_covariance_scale = deblur_covariance_scale
        self.deblur_sigma_offset = deblur_sigma_offset
        self.deblur_offset_floor = deblur_offset_floor
        if kernel_family not in ("gaussian", "motion"):
            raise ValueError(f"kernel_family must be 'gaussian' or 'motion', got {kernel_family!r}.")
        self.kernel_family = kernel_family
        super().__init__(**kwargs)
