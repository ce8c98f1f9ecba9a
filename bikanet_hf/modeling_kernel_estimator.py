"""The amortized kernel estimator: one network pass from a blurred image to its Gaussian blur kernel.

Reading order:

* ``gaussian_kernels`` — renders kernels from blur covariances, differentiably (the protocol's Gaussian);
* ``BlurFeatureExtractor`` — a full-resolution stem then strided stages (no pooling layers), pooled over the image;
* ``BikanetKernelEstimator`` — features → (σ₁, σ₂, θ) → covariance → kernel; trained with the protocol's kernel
  error ``Σ|k̂ − k|`` as its loss. Large images are estimated from their most textured crops, whose covariances
  are averaged (covariances, not kernels, average meaningfully: a mixture of kernels would be no Gaussian).

Self-contained on purpose (torch, transformers and the sibling config only) for ``trust_remote_code`` loading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_kernel_estimator import BikanetKernelEstimatorConfig


def covariance_from_parameters(sigma_major: torch.Tensor, sigma_minor: torch.Tensor, theta: torch.Tensor):
    """``Σ = R(θ) diag(σ₁², σ₂²) R(θ)ᵀ`` for batches of widths and angles (radians); B×2×2."""
    c, s = torch.cos(theta), torch.sin(theta)
    rotation = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    return rotation @ torch.diag_embed(torch.stack([sigma_major**2, sigma_minor**2], -1)) @ rotation.transpose(-1, -2)


def gaussian_kernels(covariance: torch.Tensor, size: int) -> torch.Tensor:
    """Kernels ``k(x, y) ∝ exp(-½ [x y] Σ⁻¹ [x y]ᵀ)`` (x: column offset, y: row offset), B×size×size, sum 1."""
    r = size // 2
    offsets = torch.arange(-r, r + 1, device=covariance.device, dtype=covariance.dtype)
    y, x = torch.meshgrid(offsets, offsets, indexing="ij")
    xy = torch.stack([x, y], -1).reshape(-1, 2)  # (size², 2)
    precision = torch.linalg.inv(covariance)
    quad = torch.einsum("pi,bij,pj->bp", xy, precision, xy)
    return torch.softmax(-0.5 * quad, dim=-1).reshape(-1, size, size)


class BlurFeatureExtractor(nn.Module):
    """Convolutional features of how blurred an image is, pooled over the whole input (any size)."""

    def __init__(self, config: BikanetKernelEstimatorConfig):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(config.num_channels, config.stem_size, 3, padding=1), nn.GELU()]
        width = config.stem_size
        for hidden in config.hidden_sizes:
            layers += [
                nn.Conv2d(width, hidden, 3, stride=2, padding=1),
                nn.GELU(),
                nn.Conv2d(hidden, hidden, 3, padding=1),
                nn.GELU(),
            ]
            width = hidden
        self.layers = nn.Sequential(*layers)
        self.output_size = 2 * width

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # Centre each image: the blur is in the edges, not the mean brightness.
        centred = pixel_values - pixel_values.mean(dim=(-2, -1), keepdim=True)
        features = self.layers(centred)
        return torch.cat([features.mean(dim=(-2, -1)), features.amax(dim=(-2, -1))], dim=1)


@dataclass
class KernelEstimationOutput(ModelOutput):
    """Output of [`BikanetKernelEstimator`].

    Args:
        loss: mean kernel error ``Σ|k̂ − k|`` against ``labels`` when they are given.
        kernel: B×k×k estimated kernels (non-negative, summing to 1, centred).
        covariance: B×2×2 blur covariances (pixels²).
        sigma_major, sigma_minor: B widths in pixels; theta: B angles in degrees from the x axis, in [0, 180).
    """

    loss: torch.Tensor | None = None
    kernel: torch.Tensor | None = None
    covariance: torch.Tensor | None = None
    sigma_major: torch.Tensor | None = None
    sigma_minor: torch.Tensor | None = None
    theta: torch.Tensor | None = None


class BikanetKernelEstimator(PreTrainedModel):
    """Estimates the Gaussian blur kernel of an image in one pass.

    ``forward(pixel_values, labels=None)`` takes B×3×H×W blurred images in [0, 1] (each is one crop: features are
    pooled over it); :meth:`estimate` takes one image of any size and averages its most textured crops.
    """

    config_class = BikanetKernelEstimatorConfig
    base_model_prefix = "kernel_estimator"
    main_input_name = "pixel_values"

    def __init__(self, config: BikanetKernelEstimatorConfig):
        super().__init__(config)
        self.features = BlurFeatureExtractor(config)
        # LayerNorm first: pooled statistics of a blurred image are small and their scale varies with the image;
        # without it the head saw near-constant inputs and learned to answer the average kernel.
        self.head = nn.Sequential(
            nn.LayerNorm(self.features.output_size),
            nn.Linear(self.features.output_size, config.head_hidden_size),
            nn.GELU(),
            nn.Linear(config.head_hidden_size, 4),
        )
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # He initialisation for the GELU stack: with unit gain each layer halved the signal (features of std 3e-4
        # after nine layers at initialisation).
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def parameters_to_covariance(self, raw: torch.Tensor) -> tuple[torch.Tensor, ...]:
        lo, hi = self.config.sigma_min, self.config.sigma_max
        sigma_a = lo + (hi - lo) * torch.sigmoid(raw[:, 0])
        sigma_b = lo + (hi - lo) * torch.sigmoid(raw[:, 1])
        # The angle is predicted as a direction of 2θ: a Gaussian at θ and θ + 180° is the same kernel.
        theta = 0.5 * torch.atan2(raw[:, 3], raw[:, 2])
        return covariance_from_parameters(sigma_a, sigma_b, theta)

    @staticmethod
    def covariance_to_parameters(covariance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(σ₁ ≥ σ₂, θ in degrees in [0, 180)) of B×2×2 covariances."""
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
        major = eigenvectors[..., :, 1]
        theta = torch.rad2deg(torch.atan2(major[..., 1], major[..., 0])) % 180.0
        return eigenvalues[..., 1].clamp_min(0).sqrt(), eigenvalues[..., 0].clamp_min(0).sqrt(), theta

    def forward(
        self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, return_dict: bool | None = None
    ) -> KernelEstimationOutput | tuple:
        r"""
        Args:
            pixel_values: B×3×H×W blurred images (crops) in [0, 1].
            labels: optional B×k×k true kernels; gives ``loss``, the protocol's kernel error.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        covariance = self.parameters_to_covariance(self.head(self.features(pixel_values)).float())
        return self._output(covariance, labels, return_dict)

    def _output(self, covariance, labels, return_dict):
        kernel = gaussian_kernels(covariance, self.config.kernel_size)
        loss = None
        if labels is not None:
            loss = (kernel - labels.float()).abs().sum(dim=(-2, -1)).mean()
        sigma_major, sigma_minor, theta = self.covariance_to_parameters(covariance.detach())
        if not return_dict:
            return tuple(v for v in (loss, kernel, covariance, sigma_major, sigma_minor, theta) if v is not None)
        return KernelEstimationOutput(loss, kernel, covariance, sigma_major, sigma_minor, theta)

    @torch.no_grad()
    def select_crops(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to ``max_crops`` crops of one 3×H×W image on a grid, the most textured first, and their texture
        (mean gradient magnitude). An image no larger than ``crop_size`` is its own only crop."""
        size = self.config.crop_size
        h, w = image.shape[-2:]
        crops = torch.stack([image[:, t : t + size, l : l + size] for t in _grid(h, size) for l in _grid(w, size)])
        gray = crops.mean(dim=1)
        texture = (gray[:, 1:, :] - gray[:, :-1, :]).abs().mean(dim=(-2, -1)) + (
            gray[:, :, 1:] - gray[:, :, :-1]
        ).abs().mean(dim=(-2, -1))
        order = texture.argsort(descending=True)[: self.config.max_crops]
        return crops[order], texture[order]

    @torch.no_grad()
    def estimate(self, image: torch.Tensor) -> KernelEstimationOutput:
        """The kernel of one 3×H×W image in [0, 1] of any size (at least 16×16): the covariances of its most
        textured crops (``select_crops``) are averaged, weighted by texture, and rendered as one kernel."""
        if image.ndim != 3:
            raise ValueError(f"estimate() takes one C×H×W image, got shape {tuple(image.shape)}.")
        crops, texture = self.select_crops(image)
        raw = self.head(self.features(crops)).float()
        covariances = self.parameters_to_covariance(raw)
        weights = texture / texture.sum() if texture.sum() > 0 else torch.full_like(texture, 1 / len(texture))
        covariance = (weights[:, None, None] * covariances).sum(0, keepdim=True)
        return self._output(covariance, None, True)


def _grid(length: int, size: int) -> list[int]:
    """Start positions of crops of ``size`` covering ``length`` (evenly spaced, first at 0, last at the end)."""
    count = max(1, math.ceil(length / size))
    if count == 1:
        return [0]
    return [round(i * (length - size) / (count - 1)) for i in range(count)]
