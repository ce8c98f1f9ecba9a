"""BIKAnet: the Blind Image Kernel-Adaptive network, as a 🤗 transformers model.

Reading order, small parts to the whole model, each named after the paper's figure boxes:

* ``wiener_deconvolution`` — the classical front-end (our addition, a config switch): Wiener estimates of the
  sharp image from the blurred one and the kernel, given to the network as extra channels;
* ``FeatureWienerDeconvolution`` — the same in feature space (our addition, ``wiener_feature_channels``, off in the
  shipped models): learned feature maps of the input, each Wiener-deconvolved at its own learned balance;
* ``estimate_noise_level`` — the image's noise level, measured by the model itself and given to it as one more
  channel (a config switch, ``noise_level_input``);
* ``KernelMappingNetwork`` — flattened blur kernel → per-block AdaIN scale and bias;
* ``motion_flow_from_kernel`` — the motion-blur extension's conditioning (``kernel_conditioning="motion_flow"``):
  a per-pixel motion flow concatenated to the input instead of AdaIN;
* ``KernelAdaptiveAEBlock`` — convolutional encoder → AdaIN modulated by the kernel code (+ long-term skip) →
  decoder, with no pooling: the encoder halves the resolution with a strided convolution, the decoder restores it
  with a pixel shuffle, so the block's output has its input's size;
* ``LongTermSkip`` — the head's coarse features, fed into the middle of every block;
* ``BikanetForImageDeblurring`` — head → blocks → tail, predicting a residual over the base image.

Self-contained on purpose (imports only torch, transformers and sibling files): this file and the files it imports
are copied next to saved weights for ``trust_remote_code`` loading.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_bikanet import BikanetConfig
from .modeling_kernel_estimator import kernel_covariance


# ---------------------------------------------------------------------------------------------------------------
# Wiener front-end
# ---------------------------------------------------------------------------------------------------------------
def mirror_extend(images: torch.Tensor) -> torch.Tensor:
    """Whole-image mirror extension to (2H−2)×(2W−2): periodic, so the FFT sees no seam at the borders."""
    images = torch.cat([images, images[..., 1:-1].flip(-1)], dim=-1)
    return torch.cat([images, images[..., 1:-1, :].flip(-2)], dim=-2)


def wiener_deconvolution(
    images: torch.Tensor, kernels: torch.Tensor, balances: Sequence[float] | torch.Tensor, margin: int | None = None
) -> torch.Tensor:
    """Wiener deconvolution ``X = conj(K)·Y / (|K|² + λ)`` of each image with its own kernel, for each balance λ.

    Args:
        images: B×C×H×W blurred images (H, W ≥ 2; the extension must be at least the kernel's size).
        kernels: B×k×k kernels (true convolution kernels, summing to 1).
        balances: the λ values: L numbers, or an L×C tensor that gives each channel its own (and passes gradients
            to it: :class:`FeatureWienerDeconvolution` learns its balances).
        margin: ``None``: the whole-image mirror extension (no seam, 4× the pixels); a number: mirror padding of that
            many pixels around the image instead, to a size of fast FFTs (a multiple of 16), whose far borders meet
            in a seam that rings a little — cheaper for many channels.

    Returns:
        B×(len(balances)·C)×H×W estimates, balance-major (all channels for λ₀, then λ₁, …). Computed in float32
        whatever the autocast dtype, as FFTs need it.
    """
    with torch.autocast(device_type=images.device.type, enabled=False):
        if margin is None:
            y, top = mirror_extend(images.float()), 0
        else:
            h, w = images.shape[-2:]
            pad_h, pad_w = (-(h + 2 * margin)) % 16, (-(w + 2 * margin)) % 16
            mode = "reflect" if min(h, w) > margin + max(pad_h, pad_w) else "replicate"
            y, top = F.pad(images.float(), (margin, margin + pad_w, margin, margin + pad_h), mode=mode), margin
        he, we = y.shape[-2:]
        k = kernels.float()
        kh, kw = k.shape[-2:]
        if he < kh or we < kw:
            raise ValueError(f"Image too small ({images.shape[-2]}×{images.shape[-1]}) for a {kh}×{kw} kernel.")
        # Optical transfer function: the kernel zero-padded to the image size with its centre moved to (0, 0).
        otf = torch.fft.rfft2(torch.roll(F.pad(k, (0, we - kw, 0, he - kh)), (-(kh // 2), -(kw // 2)), (-2, -1)))
        spectrum = torch.fft.rfft2(y)
        numerator = (otf.conj()[:, None] * spectrum)[:, None]  # B×1×C×He×We'
        power = (otf.abs() ** 2)[:, None, None]
        lam = torch.as_tensor(balances, device=y.device, dtype=y.dtype)
        lam = lam.view(1, lam.shape[0], -1, 1, 1)
        x = torch.fft.irfft2(numerator / (power + lam), s=(he, we))
        x = x[..., top : top + images.shape[-2], top : top + images.shape[-1]]
        return x.flatten(1, 2).to(images.dtype)


class FeatureWienerDeconvolution(nn.Module):
    """Wiener deconvolution in feature space (after Dong, Roth and Schiele, "Deep Wiener Deconvolution: Wiener Meets
    Deep Learning for Image Deblurring", NeurIPS 2020): two convolutions extract features of the blurred image, and
    each feature map is deconvolved with the kernel at its own learned balance, so that the network is given
    deconvolved maps of edges and textures as well as of the image (``config.wiener_feature_channels``; our
    addition, off in the shipped models).

    Deconvolution is linear, so the deconvolved features differ from features of the Wiener image by the
    non-linearity between the two convolutions and by each map's balance.
    """

    def __init__(self, config: BikanetConfig):
        super().__init__()
        f = config.wiener_feature_channels
        self.features = nn.Sequential(
            nn.Conv2d(config.num_channels, f, 3, padding=1), nn.GELU(), nn.Conv2d(f, f, 3, padding=1)
        )
        self.log_balances = nn.Parameter(torch.empty(f))
        self.reset_balances()

    @torch.no_grad()
    def reset_balances(self) -> None:
        """λ from 1e-4 to 1e-2 across the maps, held as log λ (positive, learned on a relative scale)."""
        self.log_balances.copy_(torch.linspace(math.log(1e-4), math.log(1e-2), len(self.log_balances)))

    def forward(self, images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        features = self.features(images)
        return wiener_deconvolution(features, kernels, self.log_balances.exp()[None], margin=kernels.shape[-1])


# ---------------------------------------------------------------------------------------------------------------
# Noise level
# ---------------------------------------------------------------------------------------------------------------
# The noise-level channel holds σ in units of 5 grey levels (0–255 scale), the largest σ the shipped model trained on.
NOISE_LEVEL_UNIT = 5.0 / 255.0
# A JPEG photo's compression artefacts are noise to BIKAnet, while the noise measurement reads such a photo as clean
# (JPEG keeps flat blocks flat: 0–0.8 grey levels at quality 75–95). Told at least this noise level (σ in grey levels,
# 0–255 scale), the model smooths the artefacts instead of sharpening them: bikanet_hf.deblur and the pipeline tell
# it to JPEG files, and models trained with JPEG'd crops (train_bikanet.py --jpeg_probability) were told it for them.
# Probed on the first 32 quick pairs of bsds500_val saved as JPEGs with a model that had never seen a JPEG (gain over
# the blurred input, true kernel / blind; lossless: +5.09 / +4.57): quality 95 +1.97 / +2.30 measured, +3.41 / +3.12
# told 2; quality 90 +1.24 / +2.07 → +3.01 / +2.75 (4: +2.93 / +2.72); quality 75 +0.17 / +1.62 → +1.94 / +1.95.
# Measured on all 100 with that model: benchmarks/results/jpeg_before_jpeg.md; with the shipped one: jpeg.md.
JPEG_NOISE_LEVEL = 2.0
# The noise level is read in blocks of NOISE_BLOCK×NOISE_BLOCK pixels, from the NOISE_QUANTILE-th quantile of their
# measured levels (chosen on sharp, blurred and noisy photos: see estimate_noise_level).
NOISE_BLOCK = 16
NOISE_QUANTILE = 0.02


def estimate_noise_level(images: torch.Tensor) -> torch.Tensor:
    """The standard deviation of white noise in each image, from its finest diagonal Haar details in its flattest
    blocks.

    The finest diagonal details ``HH`` of a natural image (all the more a blurred one) hold little but noise where
    the image is smooth, as in Donoho and Johnstone's estimate (Biometrika 1994); fine texture (foliage, fur, the
    hatching of an engraving) puts signal there too. So, as in estimators from weak-textured patches (Liu, Tanaka
    and Okutomi, TIP 2013), the image is cut into 16×16 blocks, each block's variance of ``HH`` is measured (all
    channels pooled), and σ is read from a low quantile (2%) of those variances, corrected by the same quantile of the
    χ² law the variance of pure noise follows (so white noise reads σ, however many blocks there are). Blocks more
    than 5% clipped to 0 or 255, where noise cannot show, are left out. On sharp photos the earlier estimate (the
    median of ``|HH|`` over the whole image) read texture as noise: a Doré engraving as 12 grey levels and a sharp
    bsds500_val photo (101085) as 8, and the model smoothed them; these now read 2.2 and 6.0.

    Args:
        images: B×C×H×W in [0, 1].

    Returns:
        B float32 σ on the same [0, 1] scale (0 for images smaller than 2×2). The protocol's clean blurred images
        (the 100 quick pairs of bsds500_val) read 0–0.9 grey levels; the first 24 on its noise track (σ = 2.55) read
        2.55–2.8.
    """
    block = min(NOISE_BLOCK, images.shape[-2] // 2 * 2, images.shape[-1] // 2 * 2)
    if block == 0:
        return torch.zeros(images.shape[0], device=images.device)
    batch, channels = images.shape[:2]
    rows, cols = images.shape[-2] // block, images.shape[-1] // block
    x = images[..., : rows * block, : cols * block].float()
    details = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2

    def block_means(values: torch.Tensor, side: int) -> torch.Tensor:  # B×C×(rows·side)×(cols·side) → B×blocks
        return (
            values.reshape(batch, channels, rows, side, cols, side).mean(dim=(1, 3, 5), dtype=torch.float32).flatten(1)
        )

    variances = block_means(details.square_(), block // 2)
    clipped = block_means((x <= 0.5 / 255) | (x >= 254.5 / 255), block) > 0.05
    # A sample quantile at p of N values lies, on average, at the law's quantile (p(N − 1) + 1)/(N + 1); the
    # variance of n samples of pure noise is σ²·χ²ₙ/n, whose quantiles follow Wilson and Hilferty's approximation.
    n = details.shape[1] * (block // 2) ** 2
    levels = []
    for image_variances, image_clipped in zip(variances, clipped, strict=True):
        kept = image_variances[~image_clipped] if not image_clipped.all() else image_variances
        p = (NOISE_QUANTILE * (len(kept) - 1) + 1) / (len(kept) + 1)
        z = torch.special.ndtri(torch.tensor(p, dtype=torch.float64)).item()
        chi2_ratio = (1 - 2 / (9 * n) + z * math.sqrt(2 / (9 * n))) ** 3
        levels.append((torch.quantile(kept, NOISE_QUANTILE) / chi2_ratio).sqrt())
    return torch.stack(levels)


def jpeg_floored_noise_level(images: torch.Tensor, jpeg: bool | torch.Tensor = True) -> torch.Tensor:
    """:func:`estimate_noise_level` of ``images``, raised to at least ``JPEG_NOISE_LEVEL`` where ``jpeg`` (one bool for
    all, or one per image): the level a JPEG photo is told, by the pipeline and in training."""
    levels = estimate_noise_level(images)
    floor = torch.as_tensor(jpeg, device=levels.device).float() * (JPEG_NOISE_LEVEL / 255)
    return torch.maximum(levels, floor)


# A JPEG's 8×8 blocks are coded apart, so their edges stand out in its pixels: the mean step between neighbouring
# pixels across a block edge (positions 7 | 8 of every 8, from the top-left corner, both directions) over the steps
# beside it. Images upscaled 2× or 4× step harder on every odd or fourth position too, so the ratio is taken over
# the same one at the middle of the blocks (positions 3 | 4), which JPEG leaves as it is. Measured on the 264 pairs
# of bsds500_val, set14 and mcmaster18 (quick and random tracks): the blurred photos read 0.96–1.02, with 2 grey
# levels of noise 0.97–1.02; saved as JPEG q95 1.01–1.24 (70% above the threshold), q90 1.07–1.66, q75 1.22–3.74.
# 33 PNGs (set5, set14, wikiphotos10, GoPro) read 0.90–1.33: 5 above, the video frames and a few that carry old
# compression; upscaled 2×, 3×, 1.5× or 4× they read at most 1.12, and only 4 of those 5 read above. Missing a JPEG
# costs more than a false alarm (bsds500_val, true kernel: a q95 JPEG told its measured level gained +1.47 dB, told
# 2 grey levels +3.23; a lossless photo told 2 grey levels +3.76 instead of +4.92), hence a threshold just above
# the lossless photos' range. Small images have few blocks, so their ratio strays further: on grid-aligned square
# crops of those blurred photos (2 per pair), 1% of the lossless ones read above 1.14 at 64 px, 1.08 at 96, 1.05 at
# 128, 1.04 at 192 and 256; the threshold rises as JPEG_SMALL_IMAGE_SIDE / √(H·W) above 1 where that is more than
# JPEG_BLOCKINESS_THRESHOLD's margin (1.16 at 64 px, 1.10 at 96, 1.08 at 128). On those crops it flags 1.1%,
# 0.8%, 0%, 0.4% and 0% of the lossless ones (64, 96, 128, 192, 256 px), 78%, 90%, 96%, 99.6% and 100% of the q90
# JPEGs, 22%, 31%, 45%, 60% and 70% of the q95 ones. A crop that moved the grid is recognised by chance at best.
JPEG_BLOCKINESS_THRESHOLD = 1.05
JPEG_SMALL_IMAGE_SIDE = 10.0
_BLOCKINESS_EPSILON = 0.05 / 255  # keeps flat images (and nearest-neighbour upscales, all zero steps) near 1


def jpeg_blockiness(images: torch.Tensor) -> torch.Tensor:
    """How much the edges of an 8×8 grid from the top-left corner stand out in each image (B×C×H×W in [0, 1]):
    about 1 for a photo never saved as JPEG, more for one that was (see ``JPEG_BLOCKINESS_THRESHOLD``); 1 for
    images under 16×16 pixels."""
    if min(images.shape[-2:]) < 16:
        return torch.ones(images.shape[0], device=images.device)
    x = images.float()
    luma = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1) if x.shape[1] == 3 else x.mean(1)
    steps = torch.zeros(images.shape[0], 8, device=images.device)
    for d in (luma.diff(dim=-1).abs(), luma.diff(dim=-2).abs().transpose(-1, -2)):
        for position in range(8):  # the step between pixels position and position + 1 of each block
            steps[:, position] += d[..., position::8].mean(dim=(-2, -1)) / 2
    s = steps + _BLOCKINESS_EPSILON
    return (s[:, 7] / (s[:, 6] + s[:, 0])) / (s[:, 3] / (s[:, 2] + s[:, 4]))


def shows_jpeg_blocks(images: torch.Tensor) -> torch.Tensor:
    """Whether each image (B×C×H×W in [0, 1]) shows a JPEG's block edges (:func:`jpeg_blockiness` above
    ``JPEG_BLOCKINESS_THRESHOLD``, or above ``1 + JPEG_SMALL_IMAGE_SIDE / √(H·W)`` for small images): the pixels
    of a photo that was a JPEG, passed as an array that carries no format."""
    margin = max(JPEG_BLOCKINESS_THRESHOLD - 1, JPEG_SMALL_IMAGE_SIDE / math.sqrt(images.shape[-2] * images.shape[-1]))
    return jpeg_blockiness(images) > 1 + margin


# ---------------------------------------------------------------------------------------------------------------
# Motion flow (the motion-blur extension)
# ---------------------------------------------------------------------------------------------------------------
def motion_flow_from_kernel(kernels: torch.Tensor) -> torch.Tensor:
    """The motion flow (u, v) of each kernel: the straight motion with the kernel's spread, in pixels.

    A straight motion of length L has variance L²/12 along its direction, so a kernel whose second moments (about
    its centre of mass) have largest eigenvalue λ along the unit vector e is summarised as the half-motion
    ``sqrt(3λ)·e``. A motion and its reverse blur alike; as in Gong et al. ("From motion blur to motion flow",
    CVPR 2017), the sign is fixed by ``v ≥ 0`` (and ``u > 0`` when ``v = 0``).

    Args:
        kernels: B×k×k non-negative kernels.

    Returns:
        B×2 float32 (u to the right, v downwards).
    """
    covariance = kernel_covariance(kernels.float())
    cxx, cxy, cyy = covariance[:, 0, 0], covariance[:, 0, 1], covariance[:, 1, 1]
    largest = (cxx + cyy) / 2 + torch.sqrt(((cxx - cyy) / 2) ** 2 + cxy**2)
    angle = 0.5 * torch.atan2(2 * cxy, cxx - cyy)  # direction of the largest spread, in (-π/2, π/2]
    angle = torch.where(angle < 0, angle + math.pi, angle)  # [0, π): v ≥ 0
    half_length = torch.sqrt(3 * largest.clamp_min(0))
    return torch.stack([half_length * torch.cos(angle), half_length * torch.sin(angle)], dim=-1)


# ---------------------------------------------------------------------------------------------------------------
# Kernel mapping network
# ---------------------------------------------------------------------------------------------------------------
class KernelMappingNetwork(nn.Module):
    """Maps a flattened blur kernel to the AdaIN scale and bias of every kernel-adaptive block.

    An MLP (the paper's mapping network) gives a kernel code; one linear head per block turns it into that block's
    per-channel scale ``1 + γ`` and bias ``β``. The heads start at zero, so an untrained network is unmodulated.
    """

    def __init__(self, config: BikanetConfig):
        super().__init__()
        layers: list[nn.Module] = []
        width_in = config.kernel_size * config.kernel_size
        for _ in range(config.mapping_num_layers):
            layers += [nn.Linear(width_in, config.mapping_hidden_size), nn.GELU()]
            width_in = config.mapping_hidden_size
        self.mlp = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Linear(width_in, 2 * config.block_hidden_size) for _ in range(config.num_blocks))
        for head in self.heads:
            head.zero_init = True
        self.kernel_size = config.kernel_size

    def forward(self, kernel: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        # Kernels sum to 1 and most taps are tiny: scaling by the number of taps puts the input near unit range.
        code = self.mlp(kernel.flatten(1) * (self.kernel_size * self.kernel_size))
        styles = []
        for head in self.heads:
            gamma, beta = head(code).chunk(2, dim=1)
            styles.append((1.0 + gamma[..., None, None], beta[..., None, None]))
        return styles


# ---------------------------------------------------------------------------------------------------------------
# Long-term skip
# ---------------------------------------------------------------------------------------------------------------
class LongTermSkip(nn.Module):
    """Carries the head's coarse features to the middle of every block.

    The features are brought to the blocks' half resolution once (a strided convolution); each block then adds
    them through its own 1×1 projection.
    """

    def __init__(self, config: BikanetConfig):
        super().__init__()
        self.down = nn.Conv2d(config.hidden_size, config.block_hidden_size, 3, stride=2, padding=1)
        self.projections = nn.ModuleList(
            nn.Conv2d(config.block_hidden_size, config.block_hidden_size, 1) for _ in range(config.num_blocks)
        )

    def forward(self, coarse_features: torch.Tensor) -> list[torch.Tensor]:
        skip = self.down(coarse_features)
        return [projection(skip) for projection in self.projections]


# ---------------------------------------------------------------------------------------------------------------
# Kernel-adaptive AE block
# ---------------------------------------------------------------------------------------------------------------
class KernelAdaptiveAEBlock(nn.Module):
    """Encoder → AdaIN with the kernel's scale and bias (+ long-term skip) → decoder, residual.

    No pooling: the encoder downsamples with a stride-2 convolution and the decoder upsamples with a pixel shuffle,
    so the spatial size is kept. The residual branch is scaled by a learned per-channel factor that starts at zero
    (as NAFNet's β), so a deep stack starts as the identity and trains stably.
    """

    def __init__(self, config: BikanetConfig):
        super().__init__()
        c, h = config.hidden_size, config.block_hidden_size
        self.encoder = nn.Sequential(nn.Conv2d(c, h, 3, stride=2, padding=1), nn.GELU(), nn.Conv2d(h, h, 3, padding=1))
        self.instance_norm = nn.InstanceNorm2d(h, affine=False) if config.adain_instance_norm else nn.Identity()
        # The decoder's last 1×1 convolution gives 4 values per channel, which a pixel shuffle puts on the 2×2 grid of
        # the full resolution (see forward).
        self.decoder = nn.Sequential(nn.GELU(), nn.Conv2d(h, h, 3, padding=1), nn.GELU(), nn.Conv2d(h, 4 * c, 1))
        self.residual_scale = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(
        self,
        hidden_states: torch.Tensor,
        style: tuple[torch.Tensor, torch.Tensor] | None,
        skip: torch.Tensor | None,
    ) -> torch.Tensor:
        encoded = self.encoder(hidden_states)
        if style is not None:  # AdaIN: the kernel decides each channel's scale and bias
            scale, bias = style
            encoded = self.instance_norm(encoded) * scale + bias
        if skip is not None:
            encoded = encoded + skip
        # hidden + residual_scale · pixel_shuffle(decoder(encoded)), with the scale folded into the last 1×1
        # convolution and the shuffle read as a view inside the addition: one pass over the full-resolution features
        # instead of three (a shuffled copy, the scaling, the sum), 2.5× faster for that step on a CPU. Under bf16
        # autocast the features stay bf16 from block to block (float32 features took half as long again for no
        # measurable PSNR: benchmarks/README.md, Speed).
        out_conv = self.decoder[-1]
        out_scale = self.residual_scale.flatten().repeat_interleave(4)  # one per 1×1 output, 4 per channel
        decoded = F.conv2d(
            self.decoder[:-1](encoded), out_conv.weight * out_scale[:, None, None, None], out_conv.bias * out_scale
        )
        return add_pixel_shuffled(hidden_states, decoded)


def add_pixel_shuffled(hidden_states: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``hidden_states + pixel_shuffle(values, 2)`` for B×C×H×W ``hidden_states`` and B×4C×H/2×W/2 ``values``, without
    the shuffled copy: the shuffle is a view (channel 4c + 2i + j goes to row 2y + i, column 2x + j of channel c)."""
    channels, height, width = hidden_states.shape[1:]
    shuffled = values.unflatten(1, (channels, 2, 2)).permute(0, 1, 4, 2, 5, 3)  # B×C×H/2×2×W/2×2
    grid = hidden_states.unflatten(3, (width // 2, 2)).unflatten(2, (height // 2, 2))
    return (grid + shuffled).flatten(4).flatten(2, 3)


# ---------------------------------------------------------------------------------------------------------------
# The full model
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class ImageDeblurringOutput(ModelOutput):
    """Output of [`BikanetForImageDeblurring`].

    Args:
        loss: L1 loss against ``labels`` when they are given.
        reconstruction: the deblurred images, B×C×H×W in [0, 1], the input's size.
    """

    loss: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None


class BikanetPreTrainedModel(PreTrainedModel):
    config_class = BikanetConfig
    base_model_prefix = "bikanet"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = False

    def _init_weights(self, module: nn.Module) -> None:
        # Zero-initialised parts (mapping heads, residual scales, the tail) start at zero so that an untrained model
        # returns its base image (the Wiener estimate) and the blocks grow from the identity. This also runs on the
        # parts a checkpoint lacks when it is loaded into a deeper config (``from_pretrained`` with more blocks), so
        # the added blocks start as the identity and the grown model computes what the checkpoint did.
        if getattr(module, "zero_init", False):
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="linear")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            module.reset_parameters()
        elif isinstance(module, KernelAdaptiveAEBlock):
            nn.init.zeros_(module.residual_scale)
        elif isinstance(module, FeatureWienerDeconvolution):
            module.reset_balances()


class BikanetForImageDeblurring(BikanetPreTrainedModel):
    """BIKAnet: deblurs an image given its blur kernel.

    ``forward(pixel_values, kernel)`` takes B×3×H×W images in [0, 1] of any size (mirror-padded to a multiple of
    ``config.pad_multiple`` and cropped back) and B×k×k kernels (true convolution kernels summing to 1). With
    ``config.noise_level_input`` it also reads each image's noise level, which it measures itself
    (:func:`estimate_noise_level`).
    """

    def __init__(self, config: BikanetConfig):
        super().__init__(config)
        c = config.hidden_size
        in_channels = config.num_channels * (1 + (len(config.wiener_balances) if config.use_wiener_prior else 0))
        self.uses_motion_flow = config.use_kernel_adaptation and config.kernel_conditioning == "motion_flow"
        if self.uses_motion_flow:
            in_channels += 2
        if config.kernel_estimate_input:
            in_channels += 1
        if config.noise_level_input:
            in_channels += 1
        self.feature_wiener = FeatureWienerDeconvolution(config) if config.wiener_feature_channels else None
        in_channels += config.wiener_feature_channels
        self.head = nn.Conv2d(in_channels, c, 3, padding=1)
        uses_adain = config.use_kernel_adaptation and config.kernel_conditioning == "adain"
        self.mapping = KernelMappingNetwork(config) if uses_adain else None
        self.long_term_skip = LongTermSkip(config) if config.use_long_term_skip else None
        self.blocks = nn.ModuleList(KernelAdaptiveAEBlock(config) for _ in range(config.num_blocks))
        self.tail = nn.Conv2d(c, config.num_channels, 3, padding=1)
        self.tail.zero_init = config.residual_output
        self.post_init()

    def save_pretrained(self, save_directory, *args, **kwargs):
        # transformers records one auto class per model class in auto_map; folders written for remote code (the
        # class is registered for AutoModel) also map the image-to-image auto class to this model, and carry the
        # "image-deblurring" pipeline (its file and the files it imports, and config.custom_pipelines), so that
        # pipeline("image-deblurring", model=folder, trust_remote_code=True) works without bikanet_hf.
        pipeline_class = None
        if self._auto_class is not None:
            auto_map = dict(getattr(self.config, "auto_map", None) or {})
            auto_map["AutoModelForImageToImage"] = f"modeling_bikanet.{type(self).__name__}"
            self.config.auto_map = auto_map
            try:
                from .pipeline_bikanet import ImageDeblurringPipeline as pipeline_class
            except ImportError:  # a folder loaded as remote code without the pipeline file
                pass
            else:
                self.config.custom_pipelines = {
                    "image-deblurring": {
                        "impl": f"pipeline_bikanet.{pipeline_class.__name__}",
                        "pt": ["AutoModelForImageToImage"],
                        "type": "image",
                    }
                }
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if pipeline_class is not None:
            from transformers.dynamic_module_utils import custom_object_save

            custom_object_save(pipeline_class, save_directory)
        return result

    def _flow_channels(self, kernel: torch.Tensor, motion_flow: torch.Tensor | None, size) -> torch.Tensor:
        """The two motion-flow input channels, in units of the kernel's half-size (so about [−1, 1])."""
        if motion_flow is None:
            motion_flow = motion_flow_from_kernel(kernel)[..., None, None].expand(-1, -1, *size)
        else:  # the caller's flow, padded as the image was
            motion_flow = self._pad(motion_flow.float(), multiple=1, min_size=self.config.kernel_size // 2 + 2)
        return motion_flow / (self.config.kernel_size // 2)

    def _pad(self, images: torch.Tensor, multiple: int, min_size: int = 1) -> torch.Tensor:
        """Pad the bottom and right to a multiple of ``multiple`` and at least ``min_size`` (mirror, or edge
        replication when the image is too small to mirror)."""
        h, w = images.shape[-2:]
        pad_h = max((-h) % multiple, min_size - h)
        pad_w = max((-w) % multiple, min_size - w)
        if pad_h == 0 and pad_w == 0:
            return images
        mode = "reflect" if h > pad_h and w > pad_w else "replicate"
        return F.pad(images, (0, pad_w, 0, pad_h), mode=mode)

    def forward(
        self,
        pixel_values: torch.Tensor,
        kernel: torch.Tensor,
        labels: torch.Tensor | None = None,
        motion_flow: torch.Tensor | None = None,
        kernel_is_estimate: bool | torch.Tensor = False,
        noise_level: float | torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> ImageDeblurringOutput | tuple:
        r"""
        Args:
            pixel_values: B×3×H×W blurred images in [0, 1].
            kernel: B×k×k (or B×1×k×k) blur kernels, ``k = config.kernel_size``.
            labels: optional B×3×H×W sharp images in [0, 1]; gives ``loss`` (L1).
            motion_flow: only for ``kernel_conditioning="motion_flow"``: a B×2×H×W per-pixel flow (u, v) in pixels
                (see [`motion_flow_from_kernel`]), for blur that varies across the image; default: the kernel's own
                flow everywhere. The Wiener front-end always uses ``kernel``.
            kernel_is_estimate: whether ``kernel`` is a blind estimate (a bool, or one per image); read by models
                with ``config.kernel_estimate_input`` (others deblur the same either way).
            noise_level: for models with ``config.noise_level_input``: the noise σ of the images on the [0, 1] scale
                (a number, or one per image); default: measured in ``pixel_values`` ([`estimate_noise_level`]).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if kernel.ndim == 4:
            kernel = kernel[:, 0]
        ks = self.config.kernel_size
        if kernel.shape[-2:] != (ks, ks) or kernel.shape[0] != pixel_values.shape[0]:
            raise ValueError(
                f"Expected one {ks}×{ks} kernel per image ({pixel_values.shape[0]}), got {tuple(kernel.shape)}."
            )
        kernel = kernel.to(pixel_values.dtype)
        height, width = pixel_values.shape[-2:]
        if motion_flow is not None and motion_flow.shape != (pixel_values.shape[0], 2, height, width):
            raise ValueError(
                f"Expected motion_flow as B×2×H×W ({pixel_values.shape[0]}×2×{height}×{width}), "
                f"got {tuple(motion_flow.shape)}."
            )
        # The Wiener front-end sees the image as it is (padding it first would move the mirror axes of its
        # extension and add border errors); only tiny images are enlarged so that the extension holds the kernel.
        x = self._pad(pixel_values, multiple=1, min_size=self.config.kernel_size // 2 + 2)
        if self.config.use_wiener_prior:
            x = torch.cat([x, wiener_deconvolution(x, kernel, self.config.wiener_balances)], dim=1)
        if self.uses_motion_flow:
            x = torch.cat([x, self._flow_channels(kernel, motion_flow, x.shape[-2:]).to(x.dtype)], dim=1)
        elif motion_flow is not None:
            raise ValueError("motion_flow is only used by models with kernel_conditioning='motion_flow'.")
        if self.config.kernel_estimate_input:
            x = _with_constant_channel(x, kernel_is_estimate)
        if self.config.noise_level_input:
            if noise_level is None:
                noise_level = estimate_noise_level(pixel_values)
            x = _with_constant_channel(x, torch.as_tensor(noise_level, device=x.device) / NOISE_LEVEL_UNIT)
        if self.feature_wiener is not None:
            x = torch.cat([x, self.feature_wiener(x[:, : self.config.num_channels], kernel)], dim=1)
        x = self._pad(x, multiple=self.config.pad_multiple)
        channels = self.config.num_channels
        base = x[:, channels : 2 * channels] if self.config.use_wiener_prior else x
        features = self.head(x)

        styles = self.mapping(kernel) if self.mapping is not None else [None] * len(self.blocks)
        skips = self.long_term_skip(features) if self.long_term_skip is not None else [None] * len(self.blocks)
        hidden_states = features
        for block, style, skip in zip(self.blocks, styles, skips, strict=True):
            hidden_states = block(hidden_states, style, skip)
        output = self.tail(hidden_states)
        if self.config.residual_output:
            output = output + base
        output = output[..., :height, :width]

        loss = None
        if labels is not None:
            loss = F.l1_loss(output.float(), labels.float())
        reconstruction = output.clamp(0.0, 1.0)
        if not return_dict:
            return (loss, reconstruction) if loss is not None else (reconstruction,)
        return ImageDeblurringOutput(loss=loss, reconstruction=reconstruction)

    def for_inference(self) -> BikanetForImageDeblurring:
        """This model in eval mode and, on CPU, with channels-last weights, where oneDNN's convolutions run 1.3–1.7×
        faster (512×512 on 2 threads: 0.99 s against 1.24 s on an AVX-512 CPU, 1.28 s against 2.21 s on an AVX2 one,
        ``benchmarks/bikanet_speed.py``, before 2026-12-08's one-pass residual); outputs match
        the default layout to float rounding (~2e-5). ``deblur()``, the app and the pipeline use it."""
        if self.device.type == "cpu":
            self.to(memory_format=torch.channels_last)
        return self.eval()

    @torch.no_grad()
    def deblur_tiled(
        self,
        pixel_values: torch.Tensor,
        kernel: torch.Tensor,
        tile_size: int | None = 512,
        tile_overlap: int = 64,
        progress: Callable[[int, int], None] | None = None,
        motion_flow: torch.Tensor | None = None,
        kernel_is_estimate: bool | torch.Tensor = False,
        self_ensemble: bool = False,
        precision: str = "float32",
        noise_level: float | torch.Tensor | None = None,
        tile_context: int | Sequence[int] = 0,
    ) -> torch.Tensor:
        """Deblur images of any size in overlapping ``tile_size`` tiles, so that memory stays bounded.

        ``kernel`` is B×k×k (one per image), or B×T×k×k: one per tile of :func:`tile_windows` (row by row), for
        blur that varies across the image (the piecewise-uniform model of Hirsch et al., "Efficient filter flow",
        CVPR 2010). Each tile is deblurred on its own (its Wiener front-end and AdaIN statistics see only the tile;
        the noise level of models with ``noise_level_input``, unless given as ``noise_level`` as in ``forward``, is
        measured once on the whole image, so that every tile is denoised alike) and the tiles are blended with
        weights that ignore the outer quarter of each overlap, where a tile's own border effects live, and ramp
        linearly across the middle half. ``tile_context``: each tile is deblurred with up to that many pixels of the
        image around it, then cut back to the tile — a lens's disk is undone from further out than a tile's overlap
        hides (a disk of radius 3.5 / 5 px on three wikiphotos10 crops, 256-px tiles overlapping by 64: +0.30 / +0.50
        dB with 32 px of context, for 1.5× the time; nothing for a Gaussian; ``benchmarks/results/tile_context.md``);
        a number for every tile, or one per tile of :func:`tile_windows` (row by row, as tile kernels).
        ``tile_size=None`` or an image no larger than one tile runs in one pass. ``progress(done, total)`` is called
        after each tile. ``motion_flow`` (motion-flow models only, B×2×H×W as in ``forward``) is cut into the same
        tiles; ``kernel_is_estimate`` as in ``forward``, or with tile kernels B×T: one per tile (a photo may mix
        measured and estimated kernels).
        ``self_ensemble`` averages the results for the image and kernel flipped and turned together in all 8 ways
        (the "geometric self-ensemble" of Timofte et al., CVPR 2016, and EDSR+): 8× the time, for +0.13 dB on
        bsds500_val quick (true kernel; +0.10 blind). ``precision`` (see :func:`autocast_dtype`): ``"bfloat16"`` runs
        the network under bf16 autocast (its Wiener front-end stays float32) — on a CPU with native bf16, 512×512 on 2
        threads in 0.38 s instead of 0.89 s, for −0.008 dB on bsds500_val quick
        (``benchmarks/results/bikanet_speed_avx512_one_pass.json``); ``"auto"`` does so only where the device computes
        bf16 natively.
        Returns B×3×H×W in [0, 1].
        """
        if self.config.noise_level_input and noise_level is None:
            noise_level = estimate_noise_level(pixel_values)
        dtype = autocast_dtype(precision, pixel_values.device)
        if dtype is not None:
            with torch.autocast(pixel_values.device.type, dtype=dtype):
                output = self.deblur_tiled(
                    pixel_values,
                    kernel,
                    tile_size,
                    tile_overlap,
                    progress,
                    motion_flow,
                    kernel_is_estimate,
                    self_ensemble,
                    noise_level=noise_level,
                    tile_context=tile_context,
                )
            return output.to(pixel_values.dtype)
        if self_ensemble:
            if motion_flow is not None or kernel.ndim == 4:
                raise ValueError(
                    "self_ensemble turns the image's one kernel; it takes no motion_flow or tile kernels."
                )
            total = torch.zeros(pixel_values.shape, dtype=torch.float32, device=pixel_values.device)
            for index, (flip, turns) in enumerate((f, t) for f in (False, True) for t in range(4)):
                output = self.deblur_tiled(
                    _dihedral(pixel_values, flip, turns),
                    _dihedral(kernel, flip, turns),
                    tile_size,
                    tile_overlap,
                    None if progress is None else functools.partial(_ensemble_progress, progress, index),
                    kernel_is_estimate=kernel_is_estimate,
                    noise_level=noise_level,
                    tile_context=tile_context,
                )
                total += _dihedral(output.float(), flip, turns, undo=True)
            return total.div_(8).to(pixel_values.dtype)
        height, width = pixel_values.shape[-2:]
        windows = tile_windows(height, width, tile_size, tile_overlap)
        if kernel.ndim == 4 and kernel.shape[1] != len(windows):
            raise ValueError(
                f"Expected one kernel per tile ({len(windows)} tiles of this image), got {kernel.shape[1]} kernels."
            )

        contexts = [tile_context] * len(windows) if isinstance(tile_context, Integral) else list(tile_context)
        if len(contexts) != len(windows):
            raise ValueError(
                f"Expected one tile_context per tile ({len(windows)} tiles of this image), got {len(contexts)}."
            )
        per_tile_flags = torch.is_tensor(kernel_is_estimate) and kernel_is_estimate.ndim == 2
        if per_tile_flags and (kernel.ndim != 4 or kernel_is_estimate.shape[1] != kernel.shape[1]):
            raise ValueError("kernel_is_estimate per tile (B×T) needs one kernel per tile (B×T×k×k) to match.")

        def tile_kernel(index: int) -> torch.Tensor:
            return kernel[:, index] if kernel.ndim == 4 else kernel

        def tile_flag(index: int) -> bool | torch.Tensor:
            return kernel_is_estimate[:, index] if per_tile_flags else kernel_is_estimate

        if len(windows) == 1:
            output = self(
                pixel_values,
                tile_kernel(0),
                motion_flow=motion_flow,
                kernel_is_estimate=tile_flag(0),
                noise_level=noise_level,
            )
            if progress is not None:
                progress(1, 1)
            return output.reconstruction
        output = torch.zeros(pixel_values.shape, dtype=torch.float32, device=pixel_values.device)
        total_weight = torch.zeros((height, width), dtype=torch.float32, device=pixel_values.device)
        for index, (top, bottom, left, right) in enumerate(windows):
            # the tile and the context around it (within the image), deblurred together and cut back to the tile
            context = contexts[index]
            above, below = min(context, top), min(context, height - bottom)
            before, after = min(context, left), min(context, width - right)
            rows, cols = slice(top - above, bottom + below), slice(left - before, right + after)
            tile = self(
                pixel_values[..., rows, cols],
                tile_kernel(index),
                motion_flow=None if motion_flow is None else motion_flow[..., rows, cols],
                kernel_is_estimate=tile_flag(index),
                noise_level=noise_level,
            ).reconstruction[..., above : above + bottom - top, before : before + right - left]
            device = pixel_values.device
            weight = (
                _blend_ramp(bottom - top, tile_overlap, top > 0, bottom < height, device)[:, None]
                * (_blend_ramp(right - left, tile_overlap, left > 0, right < width, device)[None, :])
            )
            output[..., top:bottom, left:right] += tile.float() * weight
            total_weight[top:bottom, left:right] += weight
            if progress is not None:
                progress(index + 1, len(windows))
        return output.div_(total_weight).to(pixel_values.dtype)


def _with_constant_channel(images: torch.Tensor, values) -> torch.Tensor:
    """``images`` with one more channel holding one value per image (a number or bool for all, or one per image)."""
    values = torch.as_tensor(values, dtype=images.dtype, device=images.device).reshape(-1, 1, 1, 1)
    return torch.cat([images, values.expand(images.shape[0], 1, *images.shape[-2:])], dim=1)


def _dihedral(images: torch.Tensor, flip: bool, turns: int, undo: bool = False) -> torch.Tensor:
    """Images (or kernels) mirrored left–right if ``flip``, then turned ``turns`` quarter turns; ``undo`` inverts."""
    if undo:
        images = torch.rot90(images, -turns, (-2, -1))
        return images.flip(-1) if flip else images
    return torch.rot90(images.flip(-1) if flip else images, turns, (-2, -1))


def _ensemble_progress(progress: Callable[[int, int], None], index: int, done: int, total: int) -> None:
    """``progress`` over all 8 passes of a self-ensemble, from one pass's (done, total)."""
    progress(index * total + done, 8 * total)


PRECISIONS = ("auto", "float32", "bfloat16")


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes in bfloat16 natively: a CUDA GPU that supports it, or a CPU with AVX-512 BF16 or
    AMX. Elsewhere PyTorch emulates bf16 on the CPU, about 100× slower than float32 (measured on an AVX2-only CPU).
    Reads PyTorch's own CPU feature checks; a PyTorch without them counts as not native."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(check() for check in checks if check is not None)


def user_noise_level(noise_level: float | None, config: BikanetConfig) -> torch.Tensor | None:
    """A user's noise level (σ in grey levels, 0–255 scale) as ``forward``'s ``noise_level`` (one image, [0, 1]
    scale); ``None`` stays ``None`` (measured). ``ValueError`` unless it is a finite number ≥ 0 given to a model that
    reads it (``config.noise_level_input``)."""
    if noise_level is None:
        return None
    if not config.noise_level_input:
        raise ValueError(
            "This model does not read a noise level (only models trained with noise_level_input, such as the default "
            "bikanet, do); leave noise_level out."
        )
    try:
        value = math.nan if isinstance(noise_level, bool) else float(noise_level)
    except (TypeError, ValueError):
        value = math.nan
    if not 0 <= value < math.inf:
        raise ValueError(
            f"noise_level is the photo's noise σ in grey levels (0–255 scale), 0 or more; got {noise_level!r}."
        )
    return torch.tensor([value / 255.0])


def check_precision(precision: str) -> None:
    """``ValueError`` unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}.")


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for an inference ``precision``: ``"float32"``: none (the weights' own dtype);
    ``"bfloat16"``: bf16; ``"auto"``: bf16 where :func:`native_bf16`, else none. ``ValueError`` for other names."""
    check_precision(precision)
    if precision == "bfloat16" or (precision == "auto" and native_bf16(device)):
        return torch.bfloat16
    return None


def tile_windows(height: int, width: int, tile_size: int | None, tile_overlap: int) -> list[tuple[int, int, int, int]]:
    """``(top, bottom, left, right)`` of the overlapping tiles ``deblur_tiled`` cuts an ``H×W`` image into, row by
    row: the whole image when ``tile_size`` is ``None`` or the image fits one tile."""
    if tile_size is None or (height <= tile_size and width <= tile_size):
        return [(0, height, 0, width)]
    if not 0 <= 2 * tile_overlap < tile_size:
        raise ValueError(
            f"tile_overlap ({tile_overlap}) must be 0 or more and less than half of tile_size ({tile_size})."
        )
    rows, cols = _tile_starts(height, tile_size, tile_overlap), _tile_starts(width, tile_size, tile_overlap)
    return [(t, min(t + tile_size, height), l, min(l + tile_size, width)) for t in rows for l in cols]


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spaced starts of tiles covering ``length`` with neighbours overlapping by at least ``overlap``."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def _blend_ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool, device) -> torch.Tensor:
    """1-D blending weight of a tile: 0 over the first quarter of the overlap on sides that meet another tile,
    a linear ramp over the next half, 1 elsewhere (and 1 up to the image's own borders)."""
    position = torch.arange(length, dtype=torch.float32, device=device) + 0.5
    margin, ramp = overlap / 4, max(overlap / 2, 1.0)
    weight = torch.ones(length, dtype=torch.float32, device=device)
    if ramp_start:
        weight = weight * ((position - margin) / ramp).clamp(0, 1)
    if ramp_end:
        weight = weight * ((length - position - margin) / ramp).clamp(0, 1)
    return weight.clamp_min(1e-6)
