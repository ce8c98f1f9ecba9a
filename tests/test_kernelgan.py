import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bikanet_hf.configuration_kernelgan import KernelGANConfig
from bikanet_hf.kernels import degrade, gaussian_kernel
from bikanet_hf.metrics import kernel_l1
from bikanet_hf.modeling_kernelgan import BlurGenerator, KernelGAN, gaussian_covariance, kernel_covariance

# Small networks and crops, so that each GAN run takes about a second on one core; the map is the scale-invariant one.
TINY = dict(
    generator_kernel_sizes=[9, 7, 5, 1],
    generator_channels=4,
    discriminator_channels=16,
    discriminator_layers=3,
    crop_size=16,
    steps=20,
    discriminator_warmup_steps=5,
    init_generator_sigma=3.0,
    calibration_scale=1 / 3,
    calibration_offset=0.0,
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sharp_picture(size: int = 96, seed: int = 0) -> np.ndarray:
    """Random rectangles and discs of random colours on a grey background: edges in every direction."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 128, np.uint8)
    y, x = np.mgrid[:size, :size]
    for _ in range(40):
        colour = rng.integers(0, 256, 3)
        cy, cx, r = rng.integers(0, size, 2).tolist() + [int(rng.integers(3, size // 5))]
        if rng.random() < 0.5:
            image[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = colour
        else:
            image[max(cy - r, 0) : cy + r, max(cx - r, 0) : cx + r] = colour
    return image


def as_image(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(2, 0, 1).float() / 255


def test_generator_kernel_is_the_composition_of_its_layers():
    torch.manual_seed(0)
    generator = BlurGenerator(KernelGANConfig(generator_kernel_sizes=[7, 5, 3, 1, 1], generator_channels=3))
    kernel = generator.kernel()
    assert kernel.shape == (generator.kernel_size, generator.kernel_size) == (13, 13)
    x = torch.rand(2, 1, 40, 37)
    # forward: the layers in turn; the read-out kernel by true convolution (correlation with the flipped kernel).
    expected = F.conv2d(x, kernel.flip(-2, -1)[None, None])
    torch.testing.assert_close(generator(x), expected, rtol=1e-4, atol=1e-6)
    # downscale: the same blur on every colour channel, then every second pixel.
    rgb = torch.rand(2, 3, 40, 37)
    per_channel = generator(rgb.reshape(6, 1, 40, 37)).reshape(2, 3, 28, 25)
    torch.testing.assert_close(generator.downscale(rgb), per_channel[..., ::2, ::2], rtol=1e-4, atol=1e-6)


def test_kernel_covariance_of_a_protocol_gaussian():
    covariance = kernel_covariance(torch.from_numpy(gaussian_kernel(2.0, 1.0, 90.0, size=31)))
    torch.testing.assert_close(
        covariance, torch.tensor([[1.0, 0.0], [0.0, 4.0]], dtype=torch.float64), atol=2e-3, rtol=0
    )


def test_estimate_is_a_valid_deterministic_kernel_and_reports_progress():
    model = KernelGAN(KernelGANConfig(**TINY))
    image = as_image(degrade(sharp_picture(), gaussian_kernel(2.0, 1.0, 30.0)))
    calls = []
    rng_state = torch.get_rng_state()
    kernel = model.estimate(image, seed=3, progress=lambda step, total: calls.append((step, total)))
    assert torch.equal(torch.get_rng_state(), rng_state)  # the global random state is untouched
    assert calls == [(step, 20) for step in range(1, 21)]
    assert kernel.shape == (17, 17) and kernel.dtype == torch.float64
    assert kernel.min() >= 0 and kernel.sum().item() == pytest.approx(1.0)
    offsets = torch.arange(-8, 9, dtype=torch.float64)
    assert abs((kernel.sum(0) * offsets).sum()) < 0.5 and abs((kernel.sum(1) * offsets).sum()) < 0.5
    assert torch.equal(model.estimate(image, seed=3), kernel)
    assert not torch.equal(model.estimate(image, seed=4), kernel)


def test_estimate_rejects_small_images():
    model = KernelGAN(KernelGANConfig(**TINY))
    with pytest.raises(ValueError, match="at least 64×64"):
        model.estimate(torch.rand(3, 63, 200))
    with pytest.raises(ValueError, match="3×H×W"):
        model.estimate(torch.rand(64, 64))


def test_stronger_blur_gives_a_wider_estimate():
    model = KernelGAN(KernelGANConfig(**{**TINY, "steps": 150}))
    sharp = sharp_picture(128)
    widths = [
        kernel_covariance(model.estimate(as_image(degrade(sharp, gaussian_kernel(s, s, 0.0))))).trace().item()
        for s in (0.8, 3.5)
    ]
    assert widths[1] > widths[0]


def test_init_kernel_sets_the_starting_estimate():
    model = KernelGAN(KernelGANConfig(**TINY))
    init = gaussian_kernel(2.0, 1.2, 30.0)
    image = as_image(degrade(sharp_picture(), gaussian_kernel(3.0, 3.0, 0.0)))
    start = model.estimate(image, steps=0, init_kernel=init)
    assert kernel_l1(start.numpy(), init) < 0.1
    assert kernel_l1(model.estimate(image, steps=0), init) > 0.3  # without it, the start is elsewhere


def test_gaussian_covariance_undoes_the_truncation_of_wide_kernels():
    kernel = torch.from_numpy(gaussian_kernel(5.0, 2.0, 30.0))  # 17×17: its tails are cut off
    angle = np.deg2rad(30.0)
    rotation = torch.tensor([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=torch.float64)
    true = rotation @ torch.diag(torch.tensor([25.0, 4.0], dtype=torch.float64)) @ rotation.T
    assert (kernel_covariance(kernel) - true).abs().max() > 3  # the kernel's own moments are far too small
    torch.testing.assert_close(gaussian_covariance(kernel), true, atol=1e-3, rtol=0)


def test_refine_weighs_the_starting_kernel_against_the_gan():
    image = as_image(degrade(sharp_picture(), gaussian_kernel(3.0, 3.0, 0.0)))
    init = gaussian_kernel(2.0, 1.2, 30.0)
    gan_only = KernelGAN(KernelGANConfig(**TINY, refine_prior_weight=0.0)).estimate(image, init_kernel=init)
    halfway = KernelGAN(KernelGANConfig(**TINY, refine_prior_weight=1.0)).estimate(image, init_kernel=init)
    start = gaussian_covariance(torch.from_numpy(init))
    # the GAN moved away from the start, well beyond the tolerance of the check below
    assert (gaussian_covariance(gan_only) - start).abs().max() > 0.1
    expected = (start + gaussian_covariance(gan_only)) / 2
    torch.testing.assert_close(gaussian_covariance(halfway), expected, atol=1e-3, rtol=0)


def test_save_and_load(tmp_path):
    model = KernelGAN(KernelGANConfig(**TINY))
    model.estimate(as_image(sharp_picture()), steps=2)
    model.save_pretrained(tmp_path)
    loaded = KernelGAN.from_pretrained(tmp_path)
    assert loaded.config.generator_kernel_sizes == [9, 7, 5, 1]
    torch.testing.assert_close(loaded.generator.kernel(), model.generator.kernel())


def test_a_large_photo_is_sampled_on_a_coarser_grid():
    """17 megapixels: more window positions than torch.multinomial can draw from (2^24)."""
    image = torch.rand(3, 4200, 4100)
    kernel = KernelGAN(KernelGANConfig(init_fit_steps=5)).estimate(image, steps=1)
    assert kernel.shape == (17, 17) and torch.isfinite(kernel).all()
