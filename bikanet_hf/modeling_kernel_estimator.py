"""The amortized kernel estimator: one network pass from a blurred image to its Gaussian blur kernel.

Reading order:

* ``gaussian_kernels`` — renders kernels from blur covariances, differentiably (the protocol's Gaussian), and
  ``straight_motion_kernels`` the straight motions of the same spread (what a motion estimator answers);
* ``DirectionalBlurStatistics`` — fixed (parameter-free) measurements of how soft the image's edges are: the image is
  re-blurred with Gaussians of known widths and its derivatives in ``num_directions`` directions are pooled as moments
  ``mean(|∂I|^p)``. An edge blurred by a Gaussian of width s along its normal loses gradient under a re-blur of width
  r by the factor ``s / sqrt(s² + r²)``, so the ratios across re-blur widths encode s per direction, i.e. the blur
  covariance (the re-blur idea of Zhuo & Sim's defocus maps and Polyblur's directional gradient measurements);
* ``BikanetKernelEstimator`` — standardised log-statistics → MLP → (σ₁, σ₂, θ) → covariance → kernel; trained with
  the protocol's kernel error ``Σ|k̂ − k|`` as its loss (a motion estimator, ``kernel_family="motion"``: with the
  error between the Gaussians of its covariance and of the camera-shake kernel's, ``spread_error``). The MLP learns
  what a step-edge model cannot say: textures that are not step edges, noise and 8-bit quantisation. Large images
  are measured on their most textured crops, whose moments are pooled before the MLP.

Self-contained on purpose (torch, transformers and the sibling config only) for ``trust_remote_code`` loading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_kernel_estimator import BikanetKernelEstimatorConfig

LUMA = (0.299, 0.587, 0.114)
PIXEL_CHUNK = 8192  # pixels per chunk of the directional derivatives (DirectionalBlurStatistics)


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


def straight_motion_kernels(covariance: torch.Tensor, size: int) -> torch.Tensor:
    """Straight motions whose spread matches B×2×2 covariances (pixels²), B×size×size, summing to 1, centred.

    A segment of length L has variance L²/12 along it, so the motion runs ``L = sqrt(12·λ_max)`` pixels (at most
    ``size − 3``) along the largest eigenvector; it is sampled at 8 points per pixel of the frame, each splatted
    bilinearly (which keeps the centre of mass on the centre pixel).
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance.double())
    length = torch.sqrt(12 * eigenvalues[:, 1].clamp_min(0)).clamp(max=size - 3)
    samples = 8 * size
    t = (torch.arange(samples, dtype=torch.float64, device=covariance.device) + 0.5) / samples - 0.5
    points = t[None, :, None] * length[:, None, None] * eigenvectors[:, None, :, 1] + size // 2  # B×S×(x, y)
    corner = points.floor()
    fraction = points - corner
    kernels = torch.zeros(covariance.shape[0], size * size, dtype=torch.float64, device=covariance.device)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        along_x = fraction[..., 0] if dx else 1 - fraction[..., 0]
        weight = along_x * (fraction[..., 1] if dy else 1 - fraction[..., 1])
        index = ((corner[..., 1] + dy) * size + corner[..., 0] + dx).long()
        kernels.scatter_add_(1, index, weight)
    kernels = kernels.view(-1, size, size)
    return (kernels / kernels.sum(dim=(-2, -1), keepdim=True)).to(covariance.dtype)


def kernel_covariance(kernels: torch.Tensor) -> torch.Tensor:
    """The second moments of B×k×k kernels about their centres of mass (pixels², x then y): B×2×2."""
    k = kernels / kernels.sum(dim=(-2, -1), keepdim=True)
    r = k.shape[-1] // 2
    offsets = torch.arange(-r, r + 1, device=k.device, dtype=k.dtype)
    y, x = offsets.view(1, -1, 1), offsets.view(1, 1, -1)
    mean_x, mean_y = (k * x).sum(dim=(-2, -1)), (k * y).sum(dim=(-2, -1))
    dx, dy = x - mean_x.view(-1, 1, 1), y - mean_y.view(-1, 1, 1)
    cxx, cxy, cyy = ((k * a * b).sum(dim=(-2, -1)) for a, b in ((dx, dx), (dx, dy), (dy, dy)))
    return torch.stack([torch.stack([cxx, cxy], -1), torch.stack([cxy, cyy], -1)], -2)


def spread_error(estimated: torch.Tensor, true: torch.Tensor, size: int) -> torch.Tensor:
    """``Σ|g(Σ̂) − g(Σ)|`` per item: the kernel error between the Gaussians of two B×2×2 covariances, the loss and
    score of a motion estimator (a camera-shake kernel's shape is beyond one pass; its spread is not). A small
    isotropic term (0.1 px², added to both) keeps the Gaussian of a straight line, which has no width across, well
    defined."""
    eye = 0.1 * torch.eye(2, device=true.device, dtype=true.dtype)
    return (gaussian_kernels(estimated + eye, size) - gaussian_kernels(true + eye, size)).abs().sum(dim=(-2, -1))


def _gaussian_blurs(gray: torch.Tensor, sigmas: list[float]) -> list[torch.Tensor]:
    """B×1×H×W blurred by a Gaussian of each width in ``sigmas`` (0: the image itself), with mirror padding.

    Each is the separable convolution with the sampled Gaussian of radius ⌈3σ⌉ (clipped to what the image allows),
    normalised to sum 1; all are computed from one FFT of the image mirror-padded by the largest radius, which gives
    the same values as direct convolution (the padding keeps the FFT's wrap-around out of the image) in a third of
    the time.
    """
    height, width = gray.shape[-2:]
    radii = [min(math.ceil(3 * s), width - 1, height - 1) if s > 0 else 0 for s in sigmas]
    pad = max(radii)
    if pad == 0:
        return [gray for _ in sigmas]
    padded = F.pad(gray, (pad, pad, pad, pad), mode="reflect")
    rows, cols = padded.shape[-2:]
    spectrum = torch.fft.rfft2(padded)
    blurred = []
    for sigma, radius in zip(sigmas, radii, strict=True):
        if radius == 0:
            blurred.append(gray)
            continue
        taps = torch.arange(-radius, radius + 1, device=gray.device)
        g = torch.exp(-0.5 * (taps.to(gray.dtype) / sigma) ** 2)
        g = g / g.sum()
        g_rows = torch.zeros(rows, dtype=gray.dtype, device=gray.device).index_put_((taps % rows,), g)
        g_cols = torch.zeros(cols, dtype=gray.dtype, device=gray.device).index_put_((taps % cols,), g)
        transfer = torch.fft.fft(g_rows)[:, None] * torch.fft.rfft(g_cols)[None, :]
        out = torch.fft.irfft2(spectrum * transfer, s=(rows, cols))
        blurred.append(out[..., pad : pad + height, pad : pad + width])
    return blurred


def _cross_moments(gx: torch.Tensor, gy: torch.Tensor, p: int) -> list[torch.Tensor]:
    """``E[gx^(p−k) gy^k]`` for k = 0…p (even p), each of shape B, from B×pixels derivatives: the Gram matrix of the
    monomials of degree p/2, ``u_a = gx^(p/2−a) gy^a``, holds them all (``u_a u_b = gx^(p−a−b) gy^(a+b)``), and
    one batched product computes it."""
    half = p // 2
    monomials = torch.stack([gx.pow(half - a) * gy.pow(a) for a in range(half + 1)], 1)  # B × (p/2 + 1) × pixels
    gram = monomials @ monomials.transpose(1, 2) / gx.shape[-1]
    return [gram[:, max(0, k - half), k - max(0, k - half)] for k in range(p + 1)]


class DirectionalBlurStatistics(nn.Module):
    """Pooled moments of directional derivatives of an image re-blurred at several known widths (no parameters).

    ``forward`` gives B×F moments ``mean(|∂_φ I_r|^p)`` (and the Laplacian's second moment per width r), averaged
    over all pixels, so moments of several crops of one image pool by averaging; ``log_features`` turns moments into
    contrast-invariant log-magnitudes.
    """

    def __init__(self, config: BikanetKernelEstimatorConfig):
        super().__init__()
        self.reblur_sigmas = list(config.reblur_sigmas)
        self.moments = list(config.moments)
        self.num_directions = config.num_directions
        self.per_width = config.num_directions * len(self.moments) + 1
        self.num_features = len(self.reblur_sigmas) * self.per_width
        # Constants are made in forward, not kept as non-persistent buffers: from_pretrained builds models on the meta
        # device and would leave such buffers uninitialised.

    def directions(self, device) -> torch.Tensor:
        """``num_directions × 2`` unit vectors (cos φ, sin φ), φ evenly spaced over [0°, 180°)."""
        angles = torch.arange(self.num_directions, device=device, dtype=torch.float32) * math.pi / self.num_directions
        return torch.stack([angles.cos(), angles.sin()], 1)

    def symmetries(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The image symmetries that only permute the moments: pairs (permutation of forward's features, 2×2
        orthogonal map M of (x, y)), such that ``features[:, permutation]`` are the features of the image transformed
        by M, whose blur covariance is ``M Σ Mᵀ``. The mirror x → −x turns direction φ into −φ; with an even number of
        directions, the 90° rotation turns φ into φ + 90°; their composition is the transpose. (Half-turns map every
        direction onto itself.)"""
        n = self.num_directions
        index = torch.arange(n)
        maps = [(index, torch.eye(2)), (-index % n, torch.tensor([[-1.0, 0.0], [0.0, 1.0]]))]
        if n % 2 == 0:
            maps += [((index + n // 2) % n, torch.tensor([[0.0, -1.0], [1.0, 0.0]]))]
            maps += [((n // 2 - index) % n, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))]
        symmetries = []
        for directions, transform in maps:
            blocks = [directions + block * n for block in range(len(self.moments))]
            per_width = torch.cat([*blocks, torch.tensor([n * len(self.moments)])])  # the Laplacian's moment stays
            permutation = torch.cat([per_width + width * self.per_width for width in range(len(self.reblur_sigmas))])
            symmetries.append((permutation, transform))
        return symmetries

    def exponents(self, device) -> torch.Tensor:
        """The power of each moment in forward's order: per width, a block of directions per p, then the
        Laplacian's 2."""
        per_width = [p for p in self.moments for _ in range(self.num_directions)] + [2]
        return torch.tensor(per_width * len(self.reblur_sigmas), device=device, dtype=torch.float32)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        weights = torch.tensor(LUMA, device=pixel_values.device, dtype=pixel_values.dtype)
        if pixel_values.shape[1] == 3:
            gray = (pixel_values * weights.view(1, -1, 1, 1)).sum(1, keepdim=True)
        else:
            gray = pixel_values.mean(1, keepdim=True)
        directions = self.directions(pixel_values.device).to(pixel_values.dtype)
        cos, sin = directions[:, 0], directions[:, 1]
        moments = []
        for image in _gaussian_blurs(gray, self.reblur_sigmas):
            centre = image[..., 1:-1, 1:-1]
            gx = ((image[..., 1:-1, 2:] - image[..., 1:-1, :-2]) / 2).flatten(1)
            gy = ((image[..., 2:, 1:-1] - image[..., :-2, 1:-1]) / 2).flatten(1)
            for p in self.moments:
                if p % 2:  # odd powers need |∂_φ I| itself: a matrix product gives all directions, taken over
                    # chunks of pixels so that the B × directions × chunk product stays small (fresh large tensors
                    # cost page faults: 2× faster in all than one B × directions × pixels product)
                    total = 0
                    for chunk in torch.stack([gx, gy], 1).split(PIXEL_CHUNK, -1):
                        derivative = (directions @ chunk).abs_()
                        total = total + (derivative.pow_(p) if p > 1 else derivative).sum(-1)
                    moments.append(total / gx.shape[-1])
                else:  # even powers expand: E[(cos φ gx + sin φ gy)^p] = Σ_k C(p,k) cos^(p−k) sin^k E[gx^(p−k) gy^k]
                    cross = _cross_moments(gx, gy, p)  # B each
                    moments.append(
                        sum(math.comb(p, k) * cos.pow(p - k) * sin.pow(k) * cross[k][:, None] for k in range(p + 1))
                    )
            laplacian = image[..., 1:-1, 2:] + image[..., 1:-1, :-2] + image[..., 2:, 1:-1] + image[..., :-2, 1:-1]
            moments.append((laplacian - 4 * centre).pow(2).flatten(1).mean(-1, keepdim=True))
        return torch.cat(moments, 1)

    def log_features(self, moments: torch.Tensor) -> torch.Tensor:
        """``log(m)/p`` per moment (log-magnitudes), minus their mean over the widest re-blur, which removes the
        image's contrast (a brighter copy of an image has the same blur)."""
        features = torch.log(moments.clamp_min(1e-30)) / self.exponents(moments.device).to(moments.dtype)
        return features - features[:, -self.per_width :].mean(1, keepdim=True)


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

    ``forward(pixel_values, labels=None)`` takes B×3×H×W blurred images in [0, 1] (each is one crop: its statistics
    are pooled over it); :meth:`estimate` takes one image of any size and pools the statistics of its most textured
    crops.
    """

    config_class = BikanetKernelEstimatorConfig
    base_model_prefix = "kernel_estimator"
    main_input_name = "pixel_values"

    def __init__(self, config: BikanetKernelEstimatorConfig):
        super().__init__(config)
        self.statistics = DirectionalBlurStatistics(config)
        # Standardisation of the log-statistics, measured on training data by `calibrate` and saved with the weights.
        self.register_buffer("feature_mean", torch.zeros(self.statistics.num_features))
        self.register_buffer("feature_std", torch.ones(self.statistics.num_features))
        layers: list[nn.Module] = []
        width = self.statistics.num_features
        for _ in range(config.head_layers):
            layers += [nn.Linear(width, config.head_hidden_size), nn.GELU()]
            width = config.head_hidden_size
        self.head = nn.Sequential(*layers, nn.Linear(width, 4))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)

    @torch.no_grad()
    def calibrate(self, pixel_values: torch.Tensor) -> None:
        """Set the feature standardisation from a batch of training crops (call once before training)."""
        features = self.statistics.log_features(self.statistics(pixel_values.float()))
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-6))

    def covariance(self, moments: torch.Tensor) -> torch.Tensor:
        """B×2×2 blur covariances from B×F pooled moments: standardised log-moments → MLP → (σ₁, σ₂, θ); with
        ``config.average_symmetries``, the mean over the image's mirror images and 90° rotations (each one a
        permutation of the moments, ``DirectionalBlurStatistics.symmetries``), mapped back to the image's frame."""
        features = self.statistics.log_features(moments)
        symmetries = self.statistics.symmetries()[: None if self.config.average_symmetries else 1]
        covariances = []
        for permutation, transform in symmetries:
            standardised = (features[:, permutation.to(features.device)] - self.feature_mean) / self.feature_std
            covariance = self.parameters_to_covariance(self.head(standardised))
            # the estimate for the transformed image is M Σ Mᵀ; back in the image's frame: Mᵀ (M Σ Mᵀ) M
            transform = transform.to(covariance)
            covariances.append(transform.T @ covariance @ transform)
        return torch.stack(covariances).mean(0)

    def parameters_to_covariance(self, raw: torch.Tensor) -> torch.Tensor:
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
        return self.from_moments(self.statistics(pixel_values.float()), labels, return_dict=return_dict)

    def from_moments(
        self,
        moments: torch.Tensor,
        labels: torch.Tensor | None = None,
        for_deblurring: bool = False,
        return_dict: bool | None = None,
    ) -> KernelEstimationOutput | tuple:
        """The output for B×F moments (:meth:`statistics` of crops, or :meth:`pooled_moments` of a photo): the
        kernel of the predicted covariance (with ``for_deblurring``, of :meth:`deblur_covariance`), and ``loss``
        against ``labels`` (B×k×k true kernels) when given. Differentiable, so that a head can be trained on cached
        moments."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        covariance = self.covariance(moments)
        if for_deblurring:
            covariance = self.deblur_covariance(covariance)
        if self.config.kernel_family == "motion":  # the kernel to deblur with; training matches the covariance
            kernel = straight_motion_kernels(covariance.detach(), self.config.kernel_size)
        else:
            kernel = gaussian_kernels(covariance, self.config.kernel_size)
        loss = None
        if labels is not None and self.config.kernel_family == "motion":
            loss = spread_error(covariance, kernel_covariance(labels.float()), self.config.kernel_size).mean()
        elif labels is not None:
            loss = (kernel - labels.float()).abs().sum(dim=(-2, -1)).mean()
        sigma_major, sigma_minor, theta = self.covariance_to_parameters(covariance.detach())
        if not return_dict:
            return tuple(v for v in (loss, kernel, covariance, sigma_major, sigma_minor, theta) if v is not None)
        return KernelEstimationOutput(loss, kernel, covariance, sigma_major, sigma_minor, theta)

    def deblur_covariance(self, covariance: torch.Tensor) -> torch.Tensor:
        """The B×2×2 covariances deblurring uses for estimated ones: each scaled by one factor, which makes the major
        axis's width √``config.deblur_covariance_scale`` times as wide, less ``config.deblur_sigma_offset`` pixels
        (the offset stops at ``sigma_min`` and at ``deblur_offset_floor``; never wider). A kernel wider than the true
        one costs deblurring far more than a narrower one, and the estimator reads some of a photo's own softness as
        blur, which weighs most for mild blur."""
        sigma = self.covariance_to_parameters(covariance)[0].clamp_min(1e-6)
        scaled = self.config.deblur_covariance_scale**0.5 * sigma
        floor = max(self.config.sigma_min, self.config.deblur_offset_floor)
        narrowed = torch.minimum(scaled, (scaled - self.config.deblur_sigma_offset).clamp_min(floor))
        return covariance * (narrowed / sigma).square()[:, None, None]

    @torch.no_grad()
    def select_crops(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to ``max_crops`` crops of one 3×H×W image on a grid, the most textured first, and their texture
        (mean gradient magnitude). A side no longer than ``crop_size`` is taken whole."""
        h, w = image.shape[-2:]
        size_h, size_w = min(h, self.config.crop_size), min(w, self.config.crop_size)
        windows = [(t, l) for t in _grid(h, size_h) for l in _grid(w, size_w)]
        gray = image.mean(dim=0)
        # Texture of each window, from views (a 24-megapixel photo has hundreds of windows; none is copied).
        texture = torch.stack(
            [
                (gray[t : t + size_h, l : l + size_w].diff(dim=0).abs().mean())
                + (gray[t : t + size_h, l : l + size_w].diff(dim=1).abs().mean())
                for t, l in windows
            ]
        )
        order = texture.argsort(descending=True)[: self.config.max_crops].tolist()
        crops = torch.stack([image[:, t : t + size_h, l : l + size_w] for t, l in (windows[i] for i in order)])
        return crops, texture[order]

    @torch.no_grad()
    def pooled_moments(self, image: torch.Tensor) -> torch.Tensor:
        """1×F moments of one 3×H×W image in [0, 1]: those of its most textured crops (``select_crops``), averaged
        as over one larger crop; what :meth:`estimate` maps to a kernel (and whole-photo fine-tuning learns from)."""
        if image.ndim != 3:
            raise ValueError(f"estimate() takes one C×H×W image, got shape {tuple(image.shape)}.")
        crops, _ = self.select_crops(image.float())
        return self.statistics(crops).mean(0, keepdim=True)

    @torch.no_grad()
    def estimate(self, image: torch.Tensor, for_deblurring: bool = False) -> KernelEstimationOutput:
        """The kernel of one 3×H×W image in [0, 1] of any size (at least 16×16): its pooled moments
        (:meth:`pooled_moments`) mapped to one kernel; with ``for_deblurring``, the narrower one deblurring uses
        (:meth:`deblur_covariance`)."""
        return self.from_moments(self.pooled_moments(image), for_deblurring=for_deblurring, return_dict=True)


def _grid(length: int, size: int) -> list[int]:
    """Start positions of crops of ``size`` covering ``length`` (evenly spaced, first at 0, last at the end)."""
    count = max(1, math.ceil(length / size))
    if count == 1:
        return [0]
    return [round(i * (length - size) / (count - 1)) for i in range(count)]
