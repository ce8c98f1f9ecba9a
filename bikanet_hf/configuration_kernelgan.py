"""Configuration of the internal-GAN kernel estimator (KernelGAN, Bell-Kligler, Shocher & Irani, NeurIPS 2019).

Self-contained on purpose: copied next to saved weights for ``trust_remote_code`` loading.
"""

from __future__ import annotations

from transformers import PretrainedConfig


class KernelGANConfig(PretrainedConfig):
    r"""Configuration of [`KernelGAN`]: a blur kernel estimated by a GAN trained on the crops of one image.

    Args:
        kernel_size (`int`, *optional*, defaults to 17):
            Side of the square image-blur kernel that `estimate` returns (odd).
        generator_kernel_sizes (`list[int]`, *optional*, defaults to `[17, 13, 9, 5, 1, 1]`):
            Spatial sizes of the generator's linear convolutions, first to last. Their composition is one kernel of
            side ``sum(s - 1) + 1`` (41 by default); it must hold ≈3× the image blur's covariance (σ up to ≈8 px).
        generator_channels (`int`, *optional*, defaults to 12):
            Channels between the generator's layers (over-parameterisation of one kernel; no non-linearity).
        discriminator_channels (`int`, *optional*, defaults to 32):
            Channels of the discriminator's layers.
        discriminator_layers (`int`, *optional*, defaults to 5):
            Convolutions of the discriminator: one spatial convolution over the pixel differences, then 1×1
            convolutions (batch normalisation and LeakyReLU between them).
        discriminator_kernel_size (`int`, *optional*, defaults to 9):
            The discriminator's receptive field in pixels (one score per patch): its first convolution, of side one
            less, runs over the horizontal and vertical pixel differences. At least 2.
        crop_size (`int`, *optional*, defaults to 32):
            Side of the real crops the discriminator sees; the generator downscales crops of twice this side.
        crop_gradient_power (`float`, *optional*, defaults to 2.0):
            Crops are drawn with probability ∝ (the window's mean gradient magnitude) ** this power. The most textured
            windows are where a photo looks most alike across scales, which is what the GAN relies on: on bsds500_val's
            first 8 images, 2 against 1 cut the kernel error from 0.572 to 0.500 (quick track) and from 0.344 to
            0.322 (random track). The map below was fitted with power 1 and not refitted.
        batch_size (`int`, *optional*, defaults to 4):
            Real and generated crops per training step.
        steps (`int`, *optional*, defaults to 600):
            Adversarial training steps per image.
        generator_lr (`float`, *optional*, defaults to 2e-4):
            Adam learning rate of the generator (betas 0.5, 0.999).
        discriminator_lr (`float`, *optional*, defaults to 2e-3):
            Adam learning rate of the discriminator (betas 0.5, 0.999); faster than the generator's, so that the
            critic keeps up with it.
        discriminator_warmup_steps (`int`, *optional*, defaults to 100):
            First steps that train only the discriminator, so the generator's first updates follow an informed critic.
        average_fraction (`float`, *optional*, defaults to 0.4):
            The generator kernel's covariance is averaged over this final fraction of the steps (the GAN oscillates).
        init_generator_sigma (`float`, *optional*, defaults to 4.0):
            Width (pixels) of the isotropic Gaussian the generator's own kernel starts from when no ``init_kernel`` is
            given (a mid-range image blur: σ ≈ 4/√3 ≈ 2.3 px by the scale-invariant map).
        init_fit_steps (`int`, *optional*, defaults to 400):
            Adam steps that fit the generator's kernel to its starting kernel before the adversarial training.
        init_fit_lr (`float`, *optional*, defaults to 3e-3):
            Learning rate of that fit.
        sum_to_one_weight (`float`, *optional*, defaults to 0.5):
            Weight of the prior ``(1 − Σk)²`` on the generator kernel k.
        boundaries_weight (`float`, *optional*, defaults to 0.5):
            Weight of the prior ``(Σ|k|·m)²``, m rising from 0 at 0.6 of the kernel's radius to 1 at its edge.
        centre_weight (`float`, *optional*, defaults to 1.0):
            Weight of the prior ``‖centre of mass of k − centre‖²`` (pixels²).
        sparsity_weight (`float`, *optional*, defaults to 0.0):
            Weight of the prior ``mean |k|^0.2``, which favours few non-zero taps. Off by default: the blur this model
            estimates is a Gaussian, and the prior shrinks the kernel, which the calibration would have to undo.
        calibration_scale (`float`, *optional*, defaults to 0.36):
            ``a`` in ``Σ_blur = a·Σ_generator + c·I``: the map from the generator kernel's covariance to the image's
            blur covariance (for scale-invariant images, ``(Σ_b + Σ_g)/4 = Σ_b`` gives a = 1/3, c = 0). Fitted (grid
            search on the mean kernel error) on the first 16 images of bsds500_train's random track by
            ``benchmarks/kernelgan_calibration.py``; results in ``benchmarks/results/kernelgan.md``.
        calibration_offset (`float`, *optional*, defaults to -4.0):
            ``c`` (pixels²) in that map; negative where real images carry some blur of their own.
        refine_prior_weight (`float`, *optional*, defaults to 1024.0):
            "Refine" mode (``init_kernel`` given): the answer is ``(w·Σ_start + Σ_gan) / (1 + w)``, the starting
            kernel's covariance and the GAN's (mapped) one weighted as two measurements of the blur, w their inverse
            ratio of error variances; w = 0 is KernelGAN's own answer. Measured by ``benchmarks/kernelgan_refine.py``
            with the amortized estimate as the start, on all 94 pairs of mcmaster18, set14, set5 and wikiphotos10
            (quick and random tracks; no estimator trains or is calibrated on them): the mean kernel error falls
            monotonically with w (0.386 at 0, 0.130 at 64, 0.1284 at 1024, the amortized start alone 0.1283), and the
            GAN's disagreement with the amortized estimate is uncorrelated with that estimate's error (r = 0.01 for
            the blur's size, 0.03 for its shape). The GAN adds nothing the amortized estimate lacks, so the largest
            weight tried is the default and refine returns about the amortized answer.
        sigma_min (`float`, *optional*, defaults to 0.3):
            Smallest blur width (pixels) `estimate` returns.
        sigma_max (`float`, *optional*, defaults to 5.0):
            Largest blur width (pixels) `estimate` returns.
    """

    model_type = "bikanet_kernelgan"

    def __init__(
        self,
        kernel_size: int = 17,
        generator_kernel_sizes: list[int] | None = None,
        generator_channels: int = 12,
        discriminator_channels: int = 32,
        discriminator_layers: int = 5,
        discriminator_kernel_size: int = 9,
        crop_size: int = 32,
        crop_gradient_power: float = 2.0,
        batch_size: int = 4,
        steps: int = 600,
        generator_lr: float = 2e-4,
        discriminator_lr: float = 2e-3,
        discriminator_warmup_steps: int = 100,
        average_fraction: float = 0.4,
        init_generator_sigma: float = 4.0,
        init_fit_steps: int = 400,
        init_fit_lr: float = 3e-3,
        sum_to_one_weight: float = 0.5,
        boundaries_weight: float = 0.5,
        centre_weight: float = 1.0,
        sparsity_weight: float = 0.0,
        calibration_scale: float = 0.36,
        calibration_offset: float = -4.0,
        refine_prior_weight: float = 1024.0,
        sigma_min: float = 0.3,
        sigma_max: float = 5.0,
        **kwargs,
    ):
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}.")
        self.generator_kernel_sizes = (
            [int(s) for s in generator_kernel_sizes] if generator_kernel_sizes is not None else [17, 13, 9, 5, 1, 1]
        )
        if any(s % 2 != 1 for s in self.generator_kernel_sizes):
            raise ValueError(f"generator_kernel_sizes must be odd, got {self.generator_kernel_sizes}.")
        if discriminator_kernel_size < 2:
            raise ValueError(f"discriminator_kernel_size must be at least 2, got {discriminator_kernel_size}.")
        if discriminator_layers < 2:
            raise ValueError(f"discriminator_layers must be at least 2, got {discriminator_layers}.")
        if crop_gradient_power < 0:
            raise ValueError(f"crop_gradient_power must be non-negative, got {crop_gradient_power}.")
        if not 0 < average_fraction <= 1:
            raise ValueError(f"average_fraction must be in (0, 1], got {average_fraction}.")
        if refine_prior_weight < 0:
            raise ValueError(f"refine_prior_weight must be non-negative, got {refine_prior_weight}.")
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"Need 0 < sigma_min < sigma_max, got {sigma_min} and {sigma_max}.")
        self.kernel_size = kernel_size
        self.generator_channels = generator_channels
        self.discriminator_channels = discriminator_channels
        self.discriminator_layers = discriminator_layers
        self.discriminator_kernel_size = discriminator_kernel_size
        self.crop_size = crop_size
        self.crop_gradient_power = crop_gradient_power
        self.batch_size = batch_size
        self.steps = steps
        self.generator_lr = generator_lr
        self.discriminator_lr = discriminator_lr
        self.discriminator_warmup_steps = discriminator_warmup_steps
        self.average_fraction = average_fraction
        self.init_generator_sigma = init_generator_sigma
        self.init_fit_steps = init_fit_steps
        self.init_fit_lr = init_fit_lr
        self.sum_to_one_weight = sum_to_one_weight
        self.boundaries_weight = boundaries_weight
        self.centre_weight = centre_weight
        self.sparsity_weight = sparsity_weight
        self.calibration_scale = calibration_scale
        self.calibration_offset = calibration_offset
        self.refine_prior_weight = refine_prior_weight
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        super().__init__(**kwargs)
