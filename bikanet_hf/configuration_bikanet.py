"""Configuration of BIKAnet, the Blind Image Kernel-Adaptive network.

Self-contained on purpose: this file is copied next to saved weights so that
``AutoModel.from_pretrained(folder, trust_remote_code=True)`` works without ``bikanet_hf`` installed.
"""

from __future__ import annotations

from transformers import PretrainedConfig

KERNEL_CONDITIONINGS = ("adain", "motion_flow")


class BikanetConfig(PretrainedConfig):
    r"""Configuration of [`BikanetForImageDeblurring`].

    The defaults are the shipped model. The paper's ablations are the same model with one switch flipped:
    ``use_kernel_adaptation=False`` (plain AE blocks, no AdaIN from the kernel) and ``use_long_term_skip=False``.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Colour channels of the input and output images.
        kernel_size (`int`, *optional*, defaults to 17):
            Side of the square blur kernel the model is conditioned on (odd).
        hidden_size (`int`, *optional*, defaults to 32):
            Channels of the full-resolution head and tail (the "coarse features").
        block_hidden_size (`int`, *optional*, defaults to 64):
            Channels inside each kernel-adaptive AE block, at half resolution (the encoded space AdaIN modulates).
        num_blocks (`int`, *optional*, defaults to 4):
            Number of kernel-adaptive AE blocks.
        mapping_hidden_size (`int`, *optional*, defaults to 128):
            Width of the kernel mapping network (flattened kernel → AdaIN scale and bias of every block).
        mapping_num_layers (`int`, *optional*, defaults to 3):
            Hidden layers of the kernel mapping network.
        use_kernel_adaptation (`bool`, *optional*, defaults to `True`):
            Condition the network on the kernel (as `kernel_conditioning` says). `False` is the paper's "without
            KA-AE block" ablation: the blocks do not see the kernel.
        kernel_conditioning (`str`, *optional*, defaults to `"adain"`):
            How the kernel reaches the network when `use_kernel_adaptation` is on: `"adain"` (the paper's main model:
            the kernel mapping network's scale and bias in every block) or `"motion_flow"` (the paper's motion-blur
            extension: a per-pixel motion flow, two channels (u, v) in pixels, concatenated to the input instead of
            AdaIN; it can vary across the image).
        use_long_term_skip (`bool`, *optional*, defaults to `True`):
            Feed the head's coarse features into the middle of every block. `False` is the paper's second ablation.
        adain_instance_norm (`bool`, *optional*, defaults to `False`):
            Normalise features by their instance statistics before the kernel's scale and bias (classic AdaIN).
            Off by default: statistics of small training crops differ from those of whole photos, which cost
            1–1.6 dB at test time in our CPU study (see the README); the kernel-driven scale and bias remain.
        use_wiener_prior (`bool`, *optional*, defaults to `True`):
            Give the network Wiener deconvolutions of the input with the kernel as extra channels and predict a
            residual over the first of them: a classical front-end that lets a small network start at Wiener quality.
        wiener_balances (`list[float]`, *optional*, defaults to `[0.0005, 0.005]`):
            Noise-to-signal balances of the Wiener deconvolutions (small = sharper but noisier).
        wiener_feature_channels (`int`, *optional*, defaults to 0):
            Feature maps of the input deconvolved by Wiener filtering in feature space, each at its own learned
            balance, given to the network as extra channels (after DWDN, Dong et al., NeurIPS 2020); 0 = off. From
            scratch on a CPU, 16 maps gained 0.19–0.25 dB at equal steps for 30% more time per step (see the README).
        kernel_estimate_input (`bool`, *optional*, defaults to `False`):
            One more input channel saying whether the kernel is a blind estimate (1) or known (0), so that one
            model trusts a known kernel fully and treats an estimate with care (trained with
            `--estimated_kernel_probability`; blind camera-shake estimates are wrong in the fine shape of the path,
            which a kernel-trusting model turns into ringing).
        noise_level_input (`bool`, *optional*, defaults to `False`):
            One more input channel holding the image's noise level, which the model measures itself
            ([`estimate_noise_level`]), as FFDNet's noise map (Zhang et al., TIP 2018): a network that sees only local
            windows cannot tell grain from texture, and one trained for both clean and noisy photos otherwise
            deblurs clean ones as if they might be noisy (softer).
        residual_output (`bool`, *optional*, defaults to `True`):
            Predict a correction added to the base image (first Wiener estimate, or the blurred input without the
            prior) instead of the image itself.
        pad_multiple (`int`, *optional*, defaults to 2):
            Inputs are mirror-padded to a multiple of this (the blocks work at half resolution) and cropped back.
    """

    model_type = "bikanet"

    def __init__(
        self,
        num_channels: int = 3,
        kernel_size: int = 17,
        hidden_size: int = 32,
        block_hidden_size: int = 64,
        num_blocks: int = 4,
        mapping_hidden_size: int = 128,
        mapping_num_layers: int = 3,
        use_kernel_adaptation: bool = True,
        kernel_conditioning: str = "adain",
        use_long_term_skip: bool = True,
        adain_instance_norm: bool = False,
        use_wiener_prior: bool = True,
        wiener_balances: list[float] | None = None,
        wiener_feature_channels: int = 0,
        kernel_estimate_input: bool = False,
        noise_level_input: bool = False,
        residual_output: bool = True,
        pad_multiple: int = 2,
        **kwargs,
    ):
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}.")
        if wiener_feature_channels < 0:
            raise ValueError(f"wiener_feature_channels must be 0 (off) or more, got {wiener_feature_channels}.")
        if kernel_conditioning not in KERNEL_CONDITIONINGS:
            raise ValueError(
                f"kernel_conditioning must be one of {KERNEL_CONDITIONINGS}, got {kernel_conditioning!r}."
            )
        self.num_channels = num_channels
        self.kernel_size = kernel_size
        self.hidden_size = hidden_size
        self.block_hidden_size = block_hidden_size
        self.num_blocks = num_blocks
        self.mapping_hidden_size = mapping_hidden_size
        self.mapping_num_layers = mapping_num_layers
        self.use_kernel_adaptation = use_kernel_adaptation
        self.kernel_conditioning = kernel_conditioning
        self.use_long_term_skip = use_long_term_skip
        self.adain_instance_norm = adain_instance_norm
        self.use_wiener_prior = use_wiener_prior
        self.wiener_balances = list(wiener_balances) if wiener_balances is not None else [0.0005, 0.005]
        self.wiener_feature_channels = wiener_feature_channels
        self.kernel_estimate_input = kernel_estimate_input
        self.noise_level_input = noise_level_input
        self.residual_output = residual_output
        self.pad_multiple = pad_multiple
        super().__init__(**kwargs)
