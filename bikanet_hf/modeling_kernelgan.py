"""An internal-GAN blur-kernel estimator after KernelGAN (Bell-Kligler, Shocher & Irani, "Blind Super-Resolution
Kernel Estimation using an Internal-GAN", NeurIPS 2019), reimplemented from the paper's description.

The idea: the crops of one image recur across its scales. A *linear* generator blurs and downscales ×2 crops of the
image; a patch discriminator learns to tell its output from real crops of the image at the original scale. When the
generator fools the discriminator, its kernel k_g makes ``(B ⊛ k_g)↓2`` look like ``B``. For a blurred image
``B = S ⊛ k_b`` of a scale-invariant scene S and Gaussian kernels, ``(Σ_b + Σ_g) / 4 = Σ_b``, so ``Σ_b = Σ_g / 3``;
real scenes are not exactly scale-invariant (and carry some blur of their own), so the map ``Σ_b = a·Σ_g + c·I`` is
fitted on data (``benchmarks/kernelgan_calibration.py``) and stored in the config. The returned kernel is the
protocol's Gaussian with that covariance.

Reading order:

* ``kernel_covariance`` — the second moments of a kernel (its width, as a 2×2 covariance); ``gaussian_covariance``
  — the covariance of the Gaussian a (truncated) kernel stands for;
* ``BlurGenerator`` — the deep linear network; ``kernel()`` reads its single kernel out with an impulse;
* ``PatchDiscriminator`` — spectral-normalised, fully convolutional, one score per 9×9 patch of pixel
  differences;
* ``kernel_priors`` — the paper's priors on the generator kernel (sum to one, boundaries, centre, sparsity);
* ``KernelGAN`` — holds the config and the per-image networks; ``estimate`` trains them on one image.

Self-contained on purpose (torch, numpy, transformers and sibling modules only) for ``trust_remote_code`` loading.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm
from transformers import PreTrainedModel

from .configuration_kernelgan import KernelGANConfig
from .modeling_kernel_estimator import gaussian_kernels
from .modeling_kernel_estimator import kernel_covariance as batched_kernel_covariance

LUMA = (0.299, 0.587, 0.114)
MIN_IMAGE_SIDE = 64


def _offsets(size: int, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column (x) and row (y) offsets from the centre of a ``size×size`` kernel."""
    r = size // 2
    offsets = torch.arange(-r, r + 1, dtype=reference.dtype, device=reference.device)
    y, x = torch.meshgrid(offsets, offsets, indexing="ij")
    return x, y


def kernel_covariance(kernel: torch.Tensor) -> torch.Tensor:
    """2×2 covariance (pixels², x = column, y = row) of a square kernel's positive part (a generator's kernel has
    small negative taps), about its centre of mass."""
    return batched_kernel_covariance(kernel.clamp_min(0)[None])[0]


def gaussian_covariance(kernel: torch.Tensor, iterations: int = 30) -> torch.Tensor:
    """The covariance Σ (float64) whose Gaussian, rendered at the kernel's size as the protocol does, has the kernel's
    second moments. A wide Gaussian loses its tails to the square frame (σ = 5 px keeps a variance of 16 px² of 25 in
    17×17), so a kernel's own moments understate the blur it stands for; fixed-point iterations
    ``Σ ← Σ + (C(kernel) − C(render(Σ)))`` undo that (widths kept within [0.1 px, kernel side])."""
    kernel = kernel.double()
    target = kernel_covariance(kernel)
    covariance = target
    for _ in range(iterations):
        covariance = covariance + target - kernel_covariance(gaussian_kernels(covariance[None], kernel.shape[-1])[0])
        values, vectors = torch.linalg.eigh(covariance)
        covariance = vectors @ torch.diag(values.clamp(0.01, float(kernel.shape[-1]) ** 2)) @ vectors.T
    return covariance


# ---------------------------------------------------------------------------------------------------------------
# Generator: a deep linear network, i.e. one blur kernel, followed by ×2 subsampling
# ---------------------------------------------------------------------------------------------------------------
class BlurGenerator(nn.Module):
    """Linear convolutions without bias or non-linearity (``generator_kernel_sizes``, e.g. 13×13, 9×9, 7×7, 3×3,
    then 1×1 layers), from one channel to one channel. Their composition is a single kernel of side
    ``sum(s − 1) + 1``; the depth only over-parameterises it, which the paper found to make it train better.

    ``forward`` applies the layers one by one (stride 1, no padding); :meth:`downscale` gives the same blur through
    the read-out kernel, subsampled ×2, for every colour channel — equal by linearity and far cheaper, so training
    uses it.
    """

    def __init__(self, config: KernelGANConfig):
        super().__init__()
        sizes = config.generator_kernel_sizes
        channels = [1] + [config.generator_channels] * (len(sizes) - 1) + [1]
        self.layers = nn.ModuleList(
            nn.Conv2d(c_in, c_out, size, bias=False)
            for c_in, c_out, size in zip(channels[:-1], channels[1:], sizes, strict=True)
        )
        self.kernel_size = sum(size - 1 for size in sizes) + 1

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """B×1×H×W → B×1×(H − K + 1)×(W − K + 1): the layers applied in turn ('valid' convolutions, stride 1)."""
        for layer in self.layers:
            images = layer(images)
        return images

    def kernel(self) -> torch.Tensor:
        """The network's K×K kernel k (``forward(x) = x ⊛ k``, true convolution): its response to a unit impulse.

        Each layer is applied with full zero padding, so the impulse response grows to K×K and nothing is cut off.
        """
        response = torch.ones(1, 1, 1, 1, dtype=self.layers[0].weight.dtype, device=self.layers[0].weight.device)
        for layer in self.layers:
            response = F.conv2d(response, layer.weight, padding=layer.kernel_size[0] - 1)
        return response[0, 0]

    def downscale(self, images: torch.Tensor, kernel: torch.Tensor | None = None) -> torch.Tensor:
        """``(images ⊛ k)↓2`` per channel of B×C×H×W images ('valid': H and W shrink by K − 1, then halve).

        By FFT (a 41×41 kernel makes direct convolution the slowest part of a training step): the circular
        convolution's samples from K − 1 on are the valid ones. ``kernel`` is :meth:`kernel` when the caller already
        has it (a training step reads it out once).
        """
        kernel = self.kernel() if kernel is None else kernel
        size = images.shape[-2:]
        blurred = torch.fft.irfft2(torch.fft.rfft2(images) * torch.fft.rfft2(kernel, s=size), s=size)
        start = kernel.shape[-1] - 1
        return blurred[..., start::2, start::2]


# ---------------------------------------------------------------------------------------------------------------
# Discriminator: which small patches are real crops of the image, which are the generator's downscaled crops
# ---------------------------------------------------------------------------------------------------------------
class PatchDiscriminator(nn.Module):
    """Scores each small patch of a crop by its horizontal and vertical pixel differences: one convolution of side
    ``discriminator_kernel_size − 1`` over the differences (so each score sees ``discriminator_kernel_size`` pixels),
    then 1×1 convolutions with batch normalisation and LeakyReLU(0.2) between them, all spectral-normalised; no
    stride and no pooling. A small field makes the discriminator judge patch statistics (how sharp edges are, and in
    which direction), not image content.

    Differences rather than intensities: a patch's brightness says nothing about its blur, and spectral
    normalisation bounds the first layer's gain, which on raw intensities goes mostly to the patch mean. On
    bsds500_val's random track (8 images, 300 steps, 7×7 patches) the differences raised the correlation of the
    generator's anisotropy with the blur's from −0.16 to 0.69; 9×9 patches did better on the quick track's small
    blurs. Batch normalisation lets the features grow past spectral normalisation's Lipschitz bound (without it the
    critic barely separated blurs in a few hundred steps)."""

    def __init__(self, config: KernelGANConfig):
        super().__init__()
        width = config.discriminator_channels
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(6, width, config.discriminator_kernel_size - 1))]
        for _ in range(config.discriminator_layers - 2):
            layers += [nn.BatchNorm2d(width), nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(width, width, 1))]
        layers += [nn.BatchNorm2d(width), nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(width, 1, 1))]
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """B×3×h×w crops in [0, 1] → B×1×(h − s + 1)×(w − s + 1) scores, s = ``discriminator_kernel_size`` (LSGAN:
        1 = real, 0 = generated)."""
        corner = images[..., :-1, :-1]
        differences = torch.cat([images[..., :-1, 1:] - corner, images[..., 1:, :-1] - corner], dim=1)
        return self.layers(differences)


# ---------------------------------------------------------------------------------------------------------------
# Priors on the generator kernel
# ---------------------------------------------------------------------------------------------------------------
def kernel_priors(kernel: torch.Tensor, config: KernelGANConfig) -> torch.Tensor:
    """Weighted sum of the paper's priors on the generator's K×K kernel k:

    * sum to one: ``(1 − Σk)²`` (the blur keeps the image's brightness);
    * boundaries: ``(Σ|k|·m)²`` with m rising (quadratically) from 0 at 0.6 of the radius to 1 at the radius and
      beyond, so that mass far from the centre costs;
    * centre: the squared distance (pixels²) from the kernel's centre of mass to its centre (the blur does not shift);
    * sparsity: ``mean |k|^0.2``, small for kernels with few non-zero taps.

    The first three are squared so that their gradients vanish where they are met: as absolute values their
    constant-size gradients are ~300× the adversarial one, and Adam turns them into a random walk of the generator's
    weights that widens its kernel whatever the image.
    """
    x, y = _offsets(kernel.shape[-1], kernel)
    radius = kernel.shape[-1] // 2
    distance = torch.sqrt(x * x + y * y)
    mask = ((distance - 0.6 * radius) / (0.4 * radius)).clamp(0, 1) ** 2
    total = kernel.sum()
    centre = ((kernel * x).sum() / total) ** 2 + ((kernel * y).sum() / total) ** 2
    return (
        config.sum_to_one_weight * (1 - total) ** 2
        + config.boundaries_weight * (kernel.abs() * mask).sum() ** 2
        + config.centre_weight * centre
        + config.sparsity_weight * (kernel.abs() + 1e-8).pow(0.2).mean()
    )


# ---------------------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------------------
class KernelGAN(PreTrainedModel):
    """Estimates the Gaussian blur kernel of one image by training a GAN on that image's crops.

    The weights belong to one image: :meth:`estimate` re-initialises and trains them (they stay in the model
    afterwards, and can be saved with ``save_pretrained``); the config holds everything else.
    """

    config_class = KernelGANConfig
    base_model_prefix = "kernelgan"
    main_input_name = "pixel_values"

    def __init__(self, config: KernelGANConfig):
        super().__init__(config)
        self.generator = BlurGenerator(config)
        self.discriminator = PatchDiscriminator(config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, BlurGenerator):
            # Variance-preserving random layers; `estimate` then fits their composition to a starting kernel.
            for layer in module.layers:
                nn.init.normal_(layer.weight, std=1 / math.sqrt(layer.weight[0].numel()))
        elif isinstance(module, nn.Conv2d) and parametrize.is_parametrized(module, "weight"):
            # Spectral normalisation rescales the weight, so only its direction matters.
            nn.init.kaiming_normal_(module.parametrizations.weight.original, a=0.2, nonlinearity="leaky_relu")
            nn.init.zeros_(module.bias)

    # -- the calibrated map between the generator's kernel and the image's blur ------------------------------------
    def image_covariance(self, generator_covariance: torch.Tensor) -> torch.Tensor:
        """``Σ_b = a·Σ_g + c·I`` (the config's calibration), with widths clipped to [sigma_min, sigma_max]."""
        config = self.config
        eye = torch.eye(2, dtype=generator_covariance.dtype, device=generator_covariance.device)
        covariance = config.calibration_scale * generator_covariance + config.calibration_offset * eye
        values, vectors = torch.linalg.eigh(covariance)
        values = values.clamp(config.sigma_min**2, config.sigma_max**2)
        return vectors @ torch.diag(values) @ vectors.T

    def generator_start(self, image_covariance: torch.Tensor) -> torch.Tensor:
        """The inverse map ``Σ_g = (Σ_b − c·I) / a``, with widths of at least 0.5 px."""
        config = self.config
        eye = torch.eye(2, dtype=image_covariance.dtype, device=image_covariance.device)
        covariance = (image_covariance - config.calibration_offset * eye) / config.calibration_scale
        values, vectors = torch.linalg.eigh(covariance)
        return vectors @ torch.diag(values.clamp_min(0.25)) @ vectors.T

    def image_kernel(self, generator_covariance: torch.Tensor) -> torch.Tensor:
        """The protocol's Gaussian (``kernel_size``², float64, sum 1, centred) for a generator covariance."""
        covariance = self.image_covariance(generator_covariance.double())
        return gaussian_kernels(covariance[None], self.config.kernel_size)[0]

    # -- training on one image ---------------------------------------------------------------------------------------
    def _reset(self, seed: int) -> None:
        """Fresh networks drawn from ``seed``; the global random state is left as it was."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.generator = BlurGenerator(self.config)
            self.discriminator = PatchDiscriminator(
                self.config
            )  # also re-draws spectral norm's power-iteration vectors
            self.generator.apply(self._init_weights)
            self.discriminator.apply(self._init_weights)

    def _fit_generator(self, target: torch.Tensor) -> None:
        """Fit the generator's kernel to ``target`` (least squares, Adam), so training starts from that blur.

        Errors are weighted by ``1 + d²`` (d: distance to the centre in pixels): stray mass far out would inflate the
        kernel's second moments, which are what the estimate reads.
        """
        x, y = _offsets(target.shape[-1], target)
        weights = 1 + x * x + y * y
        optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.config.init_fit_lr)
        for _ in range(self.config.init_fit_steps):
            loss = ((self.generator.kernel() - target).pow(2) * weights).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    @staticmethod
    def _crops(
        image: torch.Tensor,
        weights: torch.Tensor,
        stride: int,
        size: int,
        count: int,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """``count`` crops of side ``size`` of 3×H×W ``image``; crop i starts at a position drawn with probability ∝
        ``weights``, a map over window positions every ``stride`` pixels."""
        starts = torch.multinomial(weights.flatten(), count, replacement=True, generator=generator)
        positions = weights.shape[-1]
        return torch.stack(
            [
                image[:, t * stride : t * stride + size, s * stride : s * stride + size]
                for t, s in zip(starts // positions, starts % positions, strict=True)
            ]
        )

    def generator_covariance(
        self,
        image: torch.Tensor,
        steps: int | None = None,
        seed: int = 0,
        init_kernel: torch.Tensor | np.ndarray | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Train the GAN on one image (see :meth:`estimate`) and return the generator kernel's 2×2 covariance
        (float64), averaged over the last ``average_fraction`` of the steps."""
        config = self.config
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"KernelGAN takes one 3×H×W image, got shape {tuple(image.shape)}.")
        if min(image.shape[-2:]) < MIN_IMAGE_SIDE:
            raise ValueError(
                f"KernelGAN needs an image of at least {MIN_IMAGE_SIDE}×{MIN_IMAGE_SIDE} pixels to learn from its "
                f"crops, got {image.shape[-2]}×{image.shape[-1]}."
            )
        steps = config.steps if steps is None else steps
        image = image.float().clamp(0, 1)
        if init_kernel is None:
            start = config.init_generator_sigma**2 * torch.eye(2, dtype=torch.float64)
        else:
            start = self.generator_start(gaussian_covariance(torch.as_tensor(init_kernel)))
        generator = torch.Generator().manual_seed(seed)
        self._reset(seed)
        with torch.enable_grad():
            self._fit_generator(gaussian_kernels(start[None].float(), self.generator.kernel_size)[0])
            return self._train(image, steps, generator, progress)

    def _train(
        self,
        image: torch.Tensor,
        steps: int,
        generator: torch.Generator,
        progress: Callable[[int, int], None] | None,
    ) -> torch.Tensor:
        config = self.config
        radius = self.generator.kernel_size // 2
        real_size, source_size = config.crop_size, 2 * config.crop_size
        # Crops come preferably from textured regions: probability ∝ (the window's mean gradient magnitude) ** p.
        gray = (image * torch.tensor(LUMA).view(3, 1, 1)).sum(0)
        gradient = F.pad((gray[:, 1:] - gray[:, :-1]).abs(), (0, 1)) + F.pad(
            (gray[1:] - gray[:-1]).abs(), (0, 0, 0, 1)
        )
        # Positions every `stride` pixels: one per pixel up to a megapixel or so; a 24-megapixel photo would otherwise
        # exceed what torch.multinomial can draw from (2^24 categories) and spend seconds on the window averages.
        stride = max(1, math.ceil(math.sqrt(gray.numel() / 2**20)))
        power = config.crop_gradient_power
        real_weights = F.avg_pool2d(gradient[None], real_size, stride=stride)[0] ** power + 1e-6
        source_weights = F.avg_pool2d(gradient[None], source_size, stride=stride)[0] ** power + 1e-6
        # Mirror padding lets the generator's 'valid' blur cover source crops anywhere, the image's border included.
        padded = F.pad(image[None], (radius,) * 4, mode="reflect")[0]
        g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=config.generator_lr, betas=(0.5, 0.999))
        d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=config.discriminator_lr, betas=(0.5, 0.999))
        average_from = steps - math.ceil(config.average_fraction * steps)
        covariances = []
        for step in range(steps):
            real = self._crops(image, real_weights, stride, real_size, config.batch_size, generator)
            sources = self._crops(
                padded, source_weights, stride, source_size + 2 * radius, config.batch_size, generator
            )
            kernel = self.generator.kernel()
            fake = self.generator.downscale(sources, kernel / kernel.sum())
            # LSGAN: the discriminator regresses real patches to 1 and generated ones to 0 … (real and generated crops
            # share one batch, so that batch normalisation cannot erase a difference in contrast between them)
            scores = self.discriminator(torch.cat([real, fake.detach()]))
            d_loss = (scores[: len(real)] - 1).pow(2).mean() + scores[len(real) :].pow(2).mean()
            d_optimizer.zero_grad()
            d_loss.backward()
            d_optimizer.step()
            # … and the generator wants its patches scored 1, under the kernel priors.
            if step >= config.discriminator_warmup_steps:
                scores = self.discriminator(torch.cat([real, fake]))
                g_loss = (scores[len(real) :] - 1).pow(2).mean() + kernel_priors(kernel, config)
                g_optimizer.zero_grad()
                g_loss.backward()
                g_optimizer.step()
            if step >= average_from:
                covariances.append(kernel_covariance(kernel.detach().double()))
            if progress is not None:
                progress(step + 1, steps)
        if not covariances:  # zero steps: the starting kernel
            covariances.append(kernel_covariance(self.generator.kernel().detach().double()))
        return torch.stack(covariances).mean(0)

    @torch.no_grad()
    def estimate(
        self,
        image: torch.Tensor,
        steps: int | None = None,
        seed: int = 0,
        init_kernel: torch.Tensor | np.ndarray | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """The blur kernel of one image: 17×17 (``kernel_size``), float64, non-negative, sum 1, centred.

        Args:
            image: 3×H×W float tensor in [0, 1], at least 64×64.
            steps: adversarial training steps (default: the config's ``steps``); 0 returns the starting kernel.
            seed: seeds the networks' initialisation and the crop sampling (same seed, same kernel); the global
                random state is not touched.
            init_kernel: a kernel to start from ("refine" mode, e.g. the amortized estimator's answer): the
                generator is first fitted so that its image-blur estimate is that kernel's Gaussian, and the answer
                weighs that kernel's covariance against the GAN's (:meth:`refined_covariance`). Default: an
                isotropic generator kernel of width ``init_generator_sigma``.
            progress: called as ``progress(step, total)`` after each training step.
        """
        covariance = self.image_covariance(self.generator_covariance(image, steps, seed, init_kernel, progress))
        if init_kernel is not None:
            covariance = self.refined_covariance(gaussian_covariance(torch.as_tensor(init_kernel)), covariance)
        return gaussian_kernels(covariance[None], self.config.kernel_size)[0]

    def refined_covariance(self, start: torch.Tensor, gan: torch.Tensor) -> torch.Tensor:
        """``(w·Σ_start + Σ_gan) / (1 + w)``, w = ``refine_prior_weight``: the starting kernel and the GAN's answer
        (both image-blur covariances) as two measurements of the blur, weighted by their measured reliability."""
        weight = self.config.refine_prior_weight
        return (weight * start + gan) / (1 + weight)
