"""Configuration of the amortized kernel estimator (one network pass: blurred image → blur kernel).

Self-contained on purpose: copied next to saved weights for ``trust_remote_code`` loading.
"""

from __future__ import annotations

from transformers import PretrainedConfig


class BikanetKernelEstimatorConfig(PretrainedConfig):
    r"""Configuration of [`BikanetKernelEstimator`].

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Colour channels of the input image.
        kernel_size (`int`, *optional*, defaults to 17):
            Side of the square kernel the estimator returns (odd).
        stem_size (`int`, *optional*, defaults to 24):
            Channels of the full-resolution stem; fine detail decides small blur widths, so the first layer does not
            downsample.
        hidden_sizes (`list[int]`, *optional*, defaults to `[32, 64, 96, 128]`):
            Channels of the stages; each stage halves the resolution (strided convolution, no pooling).
        head_hidden_size (`int`, *optional*, defaults to 128):
            Width of the MLP that maps pooled features to the Gaussian's parameters.
        sigma_min (`float`, *optional*, defaults to 0.3):
            Smallest blur width (pixels) the estimator can return.
        sigma_max (`float`, *optional*, defaults to 5.0):
            Largest blur width (pixels) the estimator can return.
        crop_size (`int`, *optional*, defaults to 128):
            Side of the crops a large image is estimated from (the training crop size).
        max_crops (`int`, *optional*, defaults to 4):
            How many of the most textured crops of a large image are averaged (as covariances).
    """

    model_type = "bikanet_kernel_estimator"

    def __init__(
        self,
        num_channels: int = 3,
        kernel_size: int = 17,
        stem_size: int = 24,
        hidden_sizes: list[int] | None = None,
        head_hidden_size: int = 128,
        sigma_min: float = 0.3,
        sigma_max: float = 5.0,
        crop_size: int = 128,
        max_crops: int = 4,
        **kwargs,
    ):
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}.")
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"Need 0 < sigma_min < sigma_max, got {sigma_min} and {sigma_max}.")
        self.num_channels = num_channels
        self.kernel_size = kernel_size
        self.stem_size = stem_size
        self.hidden_sizes = list(hidden_sizes) if hidden_sizes is not None else [32, 64, 96, 128]
        self.head_hidden_size = head_hidden_size
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.crop_size = crop_size
        self.max_crops = max_crops
        super().__init__(**kwargs)
