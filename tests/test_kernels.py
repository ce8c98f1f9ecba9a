import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from PIL import Image

import bikanet_hf.kernels as K
from bikanet_hf.kernels import (
    bank16,
    blur,
    defocus_kernel,
    degrade,
    gaussian_kernel,
    kernel_grid_image,
    kernel_to_image,
    load_kernel,
    load_kernels,
    mirror_pad,
    quantize,
    random_track_kernel,
    sample_kernels,
    validate_kernel,
)


def scipy_blur(images: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    return np.stack(
        [
            np.stack([ndi.convolve(img[c], k, mode="mirror") for c in range(img.shape[0])])
            for img, k in zip(images, kernels, strict=True)
        ]
    )


def test_bank16_matches_canonical_file(data_dir):
    canonical = np.load(data_dir / "kernels" / "bikanet_bank16.npy")
    assert canonical.shape == (16, 17, 17)
    np.testing.assert_allclose(bank16(), canonical, rtol=0, atol=1e-9)


def test_gaussian_kernel_orientation_and_normalisation():
    k = gaussian_kernel(4.0, 1.0, 0.0)
    assert k.shape == (17, 17) and abs(k.sum() - 1) < 1e-12
    # θ = 0: the long axis runs along x (columns), so the kernel is wider than tall.
    assert k[8, 12] > k[12, 8]
    k90 = gaussian_kernel(4.0, 1.0, 90.0)
    np.testing.assert_allclose(k90, k.T, atol=1e-12)
    # θ = 45°: y downwards, so the mass lies along the main diagonal (down-right).
    k45 = gaussian_kernel(4.0, 1.0, 45.0)
    assert k45[11, 11] > k45[11, 5]
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel(1, 1, 0, size=16)


@pytest.mark.parametrize("kernel_shape", [(17, 17), (7, 5), (3, 9), (1, 1)])
def test_blur_equals_scipy_mirror_convolution_for_asymmetric_kernels(rng, kernel_shape):
    images = rng.integers(0, 256, (3, 3, 31, 44)).astype(np.float64)
    kernels = rng.random((3, *kernel_shape))
    kernels /= kernels.sum(axis=(1, 2), keepdims=True)
    out = blur(torch.from_numpy(images), torch.from_numpy(kernels)).numpy()
    np.testing.assert_allclose(out, scipy_blur(images, kernels), rtol=0, atol=1e-5)


def test_blur_direct_float32_path_equals_scipy_to_float32_precision(rng):
    images = rng.integers(0, 256, (3, 3, 31, 44)).astype(np.float32)
    kernels = rng.random((3, 17, 15))
    kernels /= kernels.sum(axis=(1, 2), keepdims=True)
    out = blur(torch.from_numpy(images), torch.from_numpy(kernels))
    assert out.dtype == torch.float32
    ref = scipy_blur(images.astype(np.float64), kernels)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=2e-4)


def test_blur_fft_path_equals_scipy(rng, monkeypatch):
    monkeypatch.setattr(K, "FFT_MIN_TAPS", 1)
    images = rng.integers(0, 256, (2, 3, 40, 37)).astype(np.float32)
    kernels = rng.random((2, 9, 13))
    kernels /= kernels.sum(axis=(1, 2), keepdims=True)
    out = blur(torch.from_numpy(images), torch.from_numpy(kernels)).numpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, scipy_blur(images.astype(np.float64), kernels), rtol=0, atol=1e-5)


def test_blur_batch_of_mixed_bank_kernels_and_tiny_image(rng):
    images = rng.integers(0, 256, (16, 3, 12, 10)).astype(np.float64)  # smaller than the kernel: repeated mirror
    kernels = bank16()
    out = blur(torch.from_numpy(images), kernels).numpy()
    np.testing.assert_allclose(out, scipy_blur(images, kernels), rtol=0, atol=1e-5)


def test_blur_single_kernel_broadcasts_and_rejects_bad_shapes(rng):
    images = torch.from_numpy(rng.random((2, 3, 20, 20)))
    k = gaussian_kernel(2, 1, 30)
    np.testing.assert_allclose(blur(images, k).numpy(), scipy_blur(images.numpy(), np.stack([k, k])), atol=1e-9)
    with pytest.raises(ValueError, match="odd"):
        blur(images, np.ones((2, 4, 4)) / 16)
    with pytest.raises(ValueError, match="kernels"):
        blur(images, np.ones((3, 5, 5)) / 25)


def test_mirror_pad_matches_numpy_reflect(rng):
    x = rng.random((1, 1, 5, 4))
    out = mirror_pad(torch.from_numpy(x), 11, 7).numpy()
    np.testing.assert_array_equal(out, _numpy_mirror(x, 11, 7))


def _numpy_mirror(x, ph, pw):
    # scipy's "mirror" mode == numpy "reflect" applied repeatedly for pads beyond the image.
    idx_h = _mirror_index(np.arange(-ph, x.shape[2] + ph), x.shape[2])
    idx_w = _mirror_index(np.arange(-pw, x.shape[3] + pw), x.shape[3])
    return x[:, :, idx_h][:, :, :, idx_w]


def _mirror_index(i, n):
    period = 2 * (n - 1)
    i = np.mod(i, period)
    return np.where(i < n, i, period - i)


def test_quantize_and_degrade_follow_protocol(rng):
    sharp = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    k = gaussian_kernel(2.5, 1.0, 30)
    out = degrade(sharp, k)
    ref = np.stack([ndi.convolve(sharp[..., c].astype(np.float64), k, mode="mirror") for c in range(3)], -1)
    np.testing.assert_array_equal(out, np.clip(np.round(ref), 0, 255).astype(np.uint8))
    assert out.dtype == np.uint8
    q = quantize(torch.tensor([-3.2, 0.5, 1.5, 2.4999, 254.5, 300.0]))
    assert q.tolist() == [0.0, 0.0, 2.0, 2.0, 254.0, 255.0]  # round half to even, as numpy


def test_degrade_noise_is_seeded():
    sharp = np.full((16, 16, 3), 128, np.uint8)
    k = gaussian_kernel(1, 1, 0)
    a = degrade(sharp, k, noise_sigma=2.55, generator=torch.Generator().manual_seed(3))
    b = degrade(sharp, k, noise_sigma=2.55, generator=torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(a, b)
    assert 1.5 < a.astype(float).std() < 3.5


def test_sample_kernels_cover_random_family_and_mix_bank16():
    batch = sample_kernels(400, np.random.default_rng(0), bank16_fraction=0.25)
    assert batch.kernels.shape == (400, 17, 17)
    np.testing.assert_allclose(batch.kernels.sum(axis=(1, 2)), 1.0)
    random = batch.kernel_id == -1
    assert 0.65 < random.mean() < 0.85
    assert np.all(batch.sigma_major >= batch.sigma_minor)
    assert batch.sigma_minor[random].min() >= 0.6 and batch.sigma_major[random].max() <= 4.0
    assert 0 <= batch.theta.min() and batch.theta.max() < 180
    np.testing.assert_allclose(batch.kernels[~random], bank16()[batch.kernel_id[~random]])
    again = sample_kernels(400, np.random.default_rng(0), bank16_fraction=0.25)
    np.testing.assert_array_equal(batch.kernels, again.kernels)


def test_sample_kernels_near_sharp_share():
    batch = sample_kernels(600, np.random.default_rng(1), bank16_fraction=0.3, near_sharp_fraction=0.2)
    near_sharp = batch.sigma_major <= 0.6
    assert 0.14 < near_sharp.mean() < 0.26
    assert batch.sigma_minor[near_sharp].min() >= 0.3 and np.all(batch.kernel_id[near_sharp] == -1)
    assert batch.kernels[near_sharp][:, 8, 8].min() > 0.4  # most of the weight on the centre tap
    bank = batch.kernel_id >= 0
    assert 0.18 < bank.mean() < 0.30  # bank16's share of the rest
    with pytest.raises(ValueError, match="near_sharp_fraction"):
        sample_kernels(1, np.random.default_rng(0), near_sharp_fraction=1.5)


def test_defocus_kernel_is_a_disk_of_the_radius():
    k = defocus_kernel(3.0)
    assert k.shape == (17, 17) and abs(k.sum() - 1) < 1e-12
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1])
    assert k[8, 8] == k.max() and k[8, 10] == k[8, 8]  # flat inside
    assert 0 < k[8, 11] < k[8, 8] and k[8, 12] == 0  # the edge pixel partly covered, nothing outside
    y, x = np.mgrid[-8:9, -8:9]
    # a disk's second moment, r² / 2, plus the pixel's own (1/12 per axis) that area sampling adds
    assert abs((k * (x * x + y * y)).sum() - (3.0**2 / 2 + 1 / 6)) < 0.05
    assert defocus_kernel(3.2)[8, 11] > k[8, 11]  # sub-pixel radii differ
    for bad in (0.0, -1.0, 8.5):
        with pytest.raises(ValueError, match="radius"):
            defocus_kernel(bad)


def test_sample_kernels_defocus_share():
    batch = sample_kernels(500, np.random.default_rng(2), bank16_fraction=0.5, defocus_fraction=0.3)
    disks = batch.defocus_radius > 0
    assert 0.24 < disks.mean() < 0.36
    assert batch.defocus_radius[disks].min() >= 1.0 and batch.defocus_radius[disks].max() <= 7.5
    for i in np.flatnonzero(disks)[:5]:
        np.testing.assert_allclose(batch.kernels[i], defocus_kernel(batch.defocus_radius[i]))
        assert batch.sigma_major[i] == batch.sigma_minor[i] == batch.defocus_radius[i] / 2
    assert np.all(batch.kernel_id[disks] == -1)
    # Off (the default), nothing extra is drawn: the same kernels as before the option existed.
    plain = sample_kernels(50, np.random.default_rng(2), bank16_fraction=0.5)
    np.testing.assert_array_equal(
        plain.kernels, sample_kernels(50, np.random.default_rng(2), 0.5, defocus_fraction=0).kernels
    )
    with pytest.raises(ValueError, match="defocus_fraction"):
        sample_kernels(1, np.random.default_rng(0), defocus_fraction=-0.1)


def test_random_track_kernel_uses_seed_plus_index():
    k, (s1, s2, t) = random_track_kernel(10, 5)
    rng = np.random.default_rng(15)
    a, b = rng.uniform(0.6, 4.0, size=2)
    assert (s1, s2) == (max(a, b), min(a, b)) and t == rng.uniform(0, 180)
    np.testing.assert_allclose(k, gaussian_kernel(s1, s2, t))


def test_load_kernels_from_npy_png_and_mat(tmp_path, data_dir):
    k = gaussian_kernel(3, 1, 60, size=21)
    np.save(tmp_path / "k.npy", k * 5)
    with pytest.warns(UserWarning, match="normalised"):
        np.testing.assert_allclose(load_kernel(tmp_path / "k.npy"), k)
    Image.fromarray(np.round(k / k.max() * 255).astype(np.uint8)).save(tmp_path / "k.png")
    assert np.abs(load_kernel(tmp_path / "k.png") - k).sum() < 0.02
    levin = load_kernels(data_dir / "kernels" / "Levin09.mat")  # MATLAB v7.3 (HDF5)
    assert len(levin) == 8 and all(x.shape[0] % 2 == 1 for x in levin)
    derived = np.load(data_dir / "kernels" / "Levin09_kernels_derived.npz")
    np.testing.assert_allclose(levin[0], derived["k1"] / derived["k1"].sum(), atol=1e-6)
    usrnet = load_kernels(data_dir / "kernels" / "kernels_12.mat")  # MATLAB v5 cell array
    assert len(usrnet) == 12 and usrnet[0].shape == (25, 25)
    large = load_kernel(data_dir / "kernels" / "k_large_1.png")
    assert large.shape == (67, 67) and abs(large.sum() - 1) < 1e-9


@pytest.mark.parametrize(
    ("kernel", "message"),
    [
        (np.zeros((0, 0)), "empty"),
        (np.ones((4, 5)), "even"),
        (np.full((3, 3), np.nan), "NaN"),
        (-np.ones((3, 3)), "positive sum"),
        (np.ones((3, 3, 3)), "2-D"),
    ],
)
def test_validate_kernel_rejects_bad_kernels_clearly(kernel, message):
    with pytest.raises(ValueError, match=message):
        validate_kernel(kernel)


def test_validate_kernel_keeps_deltas_and_lines_and_drops_extra_axes():
    np.testing.assert_array_equal(validate_kernel(np.full((1, 1), 3.0), warn=False), np.ones((1, 1)))
    assert validate_kernel(np.ones((1, 5)) / 5).shape == (1, 5)  # a horizontal line, not a 1-D array
    k = gaussian_kernel(1.0, 1.0, 0.0)
    np.testing.assert_array_equal(validate_kernel(k[None]), k)
    np.testing.assert_array_equal(validate_kernel(k[..., None]), k)


def test_load_kernel_errors(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not a readable kernel image"):
        load_kernel(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError):
        load_kernel(tmp_path / "missing.npy")


def test_kernel_to_image_is_readable():
    k = gaussian_kernel(4.0, 1.0, 0.0)
    img = kernel_to_image(k, size=255)
    assert img.mode == "RGB" and img.size == (255, 255)
    arr = np.asarray(img).astype(int)
    cell = 255 // 17
    centre = arr[8 * cell + cell // 2, 8 * cell + cell // 2]
    corner = arr[cell // 2, cell // 2]
    assert centre.sum() > corner.sum() + 300  # the peak is bright, empty taps dark
    assert tuple(arr[8 * cell, 8 * cell + cell // 2]) == (0, 220, 255)  # centre mark outline


def test_kernel_grid_image_lays_the_kernels_out_like_the_tiles():
    sharp, wide = gaussian_kernel(0.5, 0.5, 0), gaussian_kernel(4.0, 4.0, 0)
    img = np.asarray(kernel_grid_image(np.stack([sharp, wide, wide, wide, wide, sharp]), 2, 3, size=200)).astype(int)
    cell = (200 - 2 * 2) // 3
    assert img.shape == (2 * cell + 2, 3 * cell + 2 * 2, 3)  # 2-px gaps between cells
    # a sharp kernel is one bright tap: its picture is mostly dark; a wide one lights up much more of its cell
    lit = [
        (img[r * (cell + 2) : r * (cell + 2) + cell, c * (cell + 2) : c * (cell + 2) + cell].sum(-1) > 200).mean()
        for r in range(2)
        for c in range(3)
    ]
    assert lit[1] > 3 * lit[0] and lit[5] < lit[4] / 3
    with pytest.raises(ValueError, match="2×3 grid needs 6 kernels"):
        kernel_grid_image(np.stack([sharp] * 5), 2, 3)


def test_damaged_mat_files_give_value_errors(tmp_path, data_dir):
    (tmp_path / "junk.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    with pytest.raises(ValueError, match="not a readable .mat file"):
        load_kernels(tmp_path / "junk.mat")
    v73 = (data_dir / "kernels" / "Levin09.mat").read_bytes()
    (tmp_path / "cut.mat").write_bytes(v73[: len(v73) // 3])
    with pytest.raises(ValueError, match="not a readable .mat file"):
        load_kernels(tmp_path / "cut.mat")
