import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bikanet_hf.kernels import gaussian_kernel
from bikanet_hf.metrics import aligned_psnr, kernel_l1, psnr, ssim


def test_psnr_and_ssim_equal_skimage(rng):
    gt = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    out = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    assert psnr(gt, out) == pytest.approx(peak_signal_noise_ratio(gt, out, data_range=255), abs=1e-10)
    ref = structural_similarity(
        gt, out, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(gt, out) == pytest.approx(ref, abs=1e-12)
    assert psnr(gt, gt) == float("inf") and ssim(gt, gt) == pytest.approx(1.0)


def test_psnr_definition_by_hand():
    gt = np.zeros((2, 2, 3), np.uint8)
    out = gt.copy()
    out[0, 0, 0] = 12  # MSE = 144 / 12 = 12
    assert psnr(gt, out) == pytest.approx(10 * np.log10(255**2 / 12))


def test_metrics_reject_float_and_mismatched_images():
    a = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="8-bit"):
        psnr(a, a.astype(np.float32))
    with pytest.raises(ValueError, match="same shape"):
        ssim(a, np.zeros((4, 5, 3), np.uint8))


def test_kernel_l1():
    k = gaussian_kernel(2, 1, 0)
    assert kernel_l1(k, k) == 0.0
    assert kernel_l1(3 * k, k) == pytest.approx(0.0, abs=1e-12)  # both are normalised first
    delta_a, delta_b = np.zeros((17, 17)), np.zeros((17, 17))
    delta_a[8, 8], delta_b[0, 0] = 1, 1
    assert kernel_l1(delta_a, delta_b) == pytest.approx(2.0)
    small = np.zeros((3, 3))
    small[1, 1] = 1
    assert kernel_l1(small, delta_a) == pytest.approx(0.0)  # centred in the larger frame


def test_aligned_psnr_forgives_a_shift_and_nothing_else(rng):
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    shifted = np.roll(image, (3, -2), axis=(0, 1))
    assert psnr(image, shifted) < 12 and aligned_psnr(image, shifted) == float("inf")
    noisy = np.clip(image + rng.normal(0, 5, image.shape), 0, 255).round().astype(np.uint8)
    assert aligned_psnr(image, noisy) == pytest.approx(psnr(image[6:-6, 6:-6], noisy[6:-6, 6:-6]), abs=1e-9)
    assert aligned_psnr(image, np.roll(image, 7, axis=1)) < 12  # beyond max_shift
    with pytest.raises(ValueError, match="too small to align"):
        aligned_psnr(image[:20], image[:20])
