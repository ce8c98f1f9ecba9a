"""The motion-blur extension: camera-shake kernels, the motion-flow model, the motion track, and blur_type."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import bikanet_hf
from bikanet_hf import BikanetConfig, BikanetForImageDeblurring, corpus, kernels
from bikanet_hf.deblurring import is_defocus_kernel, is_motion_kernel, resolve_blur_type
from bikanet_hf.modeling_bikanet import motion_flow_from_kernel
from bikanet_hf.motion import (
    camera_shake_kernel,
    kernel_at,
    levin_kernels,
    linear_motion_kernel,
    rotating_shake_kernels,
    spatially_varying_degrade,
)
from bikanet_hf.protocol import protocol_pairs
from bikanet_hf.shake_estimation import align_kernel
from tests.conftest import REPO_ROOT, script_command


def centre_of_mass(k: np.ndarray) -> tuple[float, float]:
    y, x = np.mgrid[: k.shape[0], : k.shape[1]] - k.shape[0] // 2
    return float((k * x).sum()), float((k * y).sum())


def test_camera_shake_kernels_are_valid_centred_and_reproducible():
    for seed in range(20):
        k = camera_shake_kernel(np.random.default_rng(seed))
        assert k.shape == (31, 31) and k.min() >= 0 and k.sum() == pytest.approx(1.0)
        assert np.allclose(centre_of_mass(k), 0.0, atol=1e-9)
        np.testing.assert_array_equal(k, camera_shake_kernel(np.random.default_rng(seed)))
        # a shake, not a dot or a Gaussian: weight spread along a path
        assert is_motion_kernel(k) or kernels.kernel_spread(k)[0] < 2.0
    a, b = (camera_shake_kernel(np.random.default_rng(s)) for s in (1, 2))
    assert np.abs(a - b).sum() > 0.5


def test_a_turning_camera_blurs_each_part_of_the_photo_differently():
    shape = (400, 600)
    field = rotating_shake_kernels(np.random.default_rng(0), shape, grid=(3, 4), length=6.0, rotation_deg=1.0)
    assert field.shape == (3, 4, 31, 31) and field.min() >= 0
    np.testing.assert_allclose(field.sum(axis=(2, 3)), 1.0)
    for k in field.reshape(-1, 31, 31):
        assert np.allclose(centre_of_mass(k), 0.0, atol=1e-9)
    assert np.abs(field[0, 0] - field[2, 3]).sum() > 0.5  # opposite corners: different kernels
    # a pure turn blurs nothing at the centre and more the farther out, across the radius (tangentially)
    turn = rotating_shake_kernels(np.random.default_rng(0), shape, grid=(3, 3), length=1e-3, rotation_deg=1.0)
    spreads = np.array([[kernels.kernel_spread(k)[0] for k in row] for row in turn])
    assert spreads[1, 1] < 0.3 and spreads[[0, 0, 2, 2], [0, 2, 0, 2]].min() > 1.2
    assert spreads[1, 1] < spreads[[0, 1, 1, 2], [1, 0, 2, 1]].min() < spreads[0, 0]
    assert abs(kernels.kernel_spread(turn[1, 2])[2] % 180 - 90) < 10  # right of the centre: moves up and down
    still = rotating_shake_kernels(np.random.default_rng(0), shape, length=6.0, rotation_deg=0.0)
    np.testing.assert_allclose(still, np.broadcast_to(still[0, 0], still.shape), atol=1e-12)  # no turn: uniform
    # the kernel at a node is that node's; halfway between two nodes, their mean
    np.testing.assert_allclose(kernel_at(field, shape, 0, 0), field[0, 0])
    np.testing.assert_allclose(kernel_at(field, shape, 0, 299.5 / 3 * 1), field[0, 0] * 0.5 + field[0, 1] * 0.5)


def test_spatially_varying_blur_interpolates_the_kernels():
    sharp = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    k = kernels.gaussian_kernel(2.0, 1.0, 30)
    # the same kernel at every node is the protocol's uniform blur (the weights sum to 1 everywhere)
    uniform = spatially_varying_degrade(sharp, np.broadcast_to(k, (2, 3, 17, 17)))
    assert np.abs(uniform.astype(int) - kernels.degrade(sharp, k)).max() <= 1
    np.testing.assert_array_equal(spatially_varying_degrade(sharp, k[None, None]), kernels.degrade(sharp, k))
    # different kernels: each side of the photo is blurred by its own
    sides = np.stack([kernels.delta_kernel(17), k])[None]  # 1×2 nodes: sharp on the left, blurred on the right
    out = spatially_varying_degrade(sharp, sides).astype(int)
    blurred, sharp = kernels.degrade(sharp, k).astype(int), sharp.astype(int)
    for column, near, far in ((0, sharp, blurred), (-1, blurred, sharp)):
        assert np.abs(out[:, column] - near[:, column]).mean() < 0.2 * np.abs(out[:, column] - far[:, column]).mean()


def test_camera_shake_length_is_respected_and_checked():
    rng = np.random.default_rng(0)
    k = camera_shake_kernel(rng, length=8.0)
    rows, cols = np.nonzero(k > 1e-12)
    assert max(np.ptp(rows), np.ptp(cols)) <= 8 + 2  # bilinear splatting adds a pixel at each end
    with pytest.raises(ValueError, match="length must be in"):
        camera_shake_kernel(rng, length=40.0)
    with pytest.raises(ValueError, match="odd"):
        camera_shake_kernel(rng, size=30)


@pytest.mark.parametrize(("length", "angle"), [(10.0, 30.0), (16.0, 135.0), (6.0, 90.0), (12.0, 0.0)])
def test_motion_flow_of_a_straight_motion_is_its_half_vector(length, angle):
    k = linear_motion_kernel(length, angle)
    assert kernels.kernel_spread(k)[0] == pytest.approx(length / np.sqrt(12), rel=0.03)
    u, v = motion_flow_from_kernel(torch.from_numpy(k)[None])[0].tolist()
    expected = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))]) * length / 2
    assert np.allclose([u, v], expected, atol=0.15 + 0.02 * length)
    assert v >= 0
    # the reverse motion blurs alike and has the same flow (v ≥ 0 convention)
    reverse = motion_flow_from_kernel(torch.from_numpy(linear_motion_kernel(length, angle - 180))[None])[0]
    assert np.allclose(reverse.tolist(), [u, v], atol=1e-4)


def test_straight_motion_of_a_covariance_matches_its_spread():
    from bikanet_hf.modeling_kernel_estimator import kernel_covariance, straight_motion_kernels

    k = linear_motion_kernel(14.0, 60.0)
    covariance = kernel_covariance(torch.from_numpy(k)[None])
    assert bikanet_hf.kernel_l1(straight_motion_kernels(covariance, 31)[0].numpy(), k) < 0.05
    assert np.allclose(centre_of_mass(k), 0.0, atol=1e-9)
    # too long for the frame: clipped to size − 3
    longest = straight_motion_kernels(torch.diag(torch.tensor([100.0, 0.0]))[None].double(), 31)[0].numpy()
    assert kernels.kernel_spread(longest)[0] == pytest.approx(28 / np.sqrt(12), rel=0.03)


def test_levin_kernels_and_the_motion_track(data_dir):
    levin = levin_kernels(data_dir)
    assert levin.shape == (8, 31, 31) and np.allclose(levin.sum((1, 2)), 1.0)
    assert all(is_motion_kernel(k) for k in levin)
    assert not any(is_motion_kernel(k) for k in kernels.bank16())
    # defocus disks (the main model learnt them), also in a larger frame, are no motion; Gaussians and lines no disks
    disks = [kernels.defocus_kernel(r) for r in (1.0, 2.5, 4.0, 7.5)] + [
        kernels.pad_kernel(kernels.defocus_kernel(3.0), 31)
    ]
    assert all(is_defocus_kernel(k) and not is_motion_kernel(k) for k in disks)
    assert not any(is_defocus_kernel(k) for k in [*kernels.bank16(), *levin, linear_motion_kernel(6.0, 30.0, 31)])
    pairs = list(protocol_pairs(data_dir / "bsds500_val", "motion", limit=9))
    assert [p.kernel_id for p in pairs] == [0, 1, 2, 3, 4, 5, 6, 7, 0]
    np.testing.assert_array_equal(pairs[3].blurred, kernels.degrade(pairs[3].sharp, levin[3]))


def motion_model(**overrides) -> BikanetForImageDeblurring:
    config = dict(kernel_size=31, kernel_conditioning="motion_flow", hidden_size=8, block_hidden_size=8, num_blocks=1)
    return BikanetForImageDeblurring(BikanetConfig(**(config | overrides))).eval()


def test_motion_flow_model_concatenates_the_flow_instead_of_adain(tmp_path):
    torch.manual_seed(0)
    model = motion_model()
    assert model.mapping is None and model.head.in_channels == 3 * 3 + 2
    x = torch.rand(2, 3, 21, 26)
    k = torch.from_numpy(np.stack([linear_motion_kernel(9, 20), linear_motion_kernel(5, 100)])).float()
    with torch.no_grad():
        torch.nn.init.normal_(model.tail.weight, std=0.1)  # the tail starts at zero: make the network visible
        out = model(x, k).reconstruction
        assert out.shape == x.shape
        # the flow reaches the output, and a per-pixel flow can replace the kernel's own
        flow = motion_flow_from_kernel(k)[..., None, None].expand(-1, -1, 21, 26)
        assert torch.allclose(model(x, k, motion_flow=flow).reconstruction, out, atol=1e-6)
        assert not torch.allclose(model(x, k, motion_flow=torch.zeros_like(flow)).reconstruction, out)
        with pytest.raises(ValueError, match="motion_flow as B×2×H×W"):
            model(x, k, motion_flow=torch.zeros(2, 2, 20, 26))
    model.save_pretrained(tmp_path / "m")
    loaded = BikanetForImageDeblurring.from_pretrained(tmp_path / "m").eval()
    assert loaded.config.kernel_conditioning == "motion_flow"
    with torch.no_grad():
        assert torch.allclose(loaded(x, k).reconstruction, out, atol=1e-6)


def test_tiled_deblurring_cuts_the_motion_flow_into_the_tiles():
    torch.manual_seed(0)
    model = motion_model()
    with torch.no_grad():
        torch.nn.init.normal_(model.tail.weight, std=0.1)
        x = torch.rand(1, 3, 40, 70)
        k = torch.from_numpy(linear_motion_kernel(9, 20))[None].float()
        flow = torch.zeros(1, 2, 40, 70)
        flow[:, 0, :, 35:] = 4.0  # the right half moves, the left half does not
        tiled = model.deblur_tiled(x, k, tile_size=40, tile_overlap=16, motion_flow=flow)
        # tiles start at columns 0, 15 and 30; the outer columns come from one tile only, deblurred with its own
        # part of the flow
        left = model(x[..., :40], k, motion_flow=flow[..., :40]).reconstruction
        right = model(x[..., 30:], k, motion_flow=flow[..., 30:]).reconstruction
        torch.testing.assert_close(tiled[..., :15], left[..., :15])
        torch.testing.assert_close(tiled[..., 55:], right[..., 25:])
        assert not torch.allclose(tiled, model.deblur_tiled(x, k, tile_size=40, tile_overlap=16))


def test_adain_model_refuses_a_motion_flow_and_config_checks_the_choice():
    model = BikanetForImageDeblurring(BikanetConfig(hidden_size=4, block_hidden_size=4, num_blocks=1)).eval()
    with pytest.raises(ValueError, match="only used by models with kernel_conditioning='motion_flow'"):
        model(torch.rand(1, 3, 20, 20), torch.rand(1, 17, 17), motion_flow=torch.zeros(1, 2, 20, 20))
    with pytest.raises(ValueError, match="kernel_conditioning must be one of"):
        BikanetConfig(kernel_conditioning="flow")


def test_on_the_fly_motion_samples(data_dir):
    images = corpus.sharp_images([data_dir / "set5"])
    ds = corpus.on_the_fly(images, num_samples=3, crop_size=40, kernel_family="motion", context_probability=0.5)
    for sample in ds:
        assert sample["kernel"].shape == (31, 31) and sample["sharp"].shape == (3, 40, 40)
        assert sample["kernel_id"] == -1 and sample["sigma_major"] >= sample["sigma_minor"]
        assert torch.equal(sample["model_kernel"], sample["kernel"])
    with pytest.raises(ValueError, match="kernel_family must be one of"):
        corpus.on_the_fly(images, num_samples=1, kernel_family="shake")


def test_on_the_fly_can_give_the_model_the_blind_estimate(data_dir):
    images = corpus.sharp_images([data_dir / "set5"])
    options = {"num_samples": 3, "crop_size": 40, "kernel_family": "motion", "seed": 4}
    true, estimated = (
        corpus.on_the_fly(images, **options),
        corpus.on_the_fly(images, **options, estimated_kernel_probability=1.0),
    )
    for a, b in zip(true, estimated, strict=True):
        for key in ("sharp", "blurred", "kernel"):  # the option changes nothing else about the data
            assert torch.equal(a[key], b[key])
        k = b["model_kernel"].double()
        assert k.shape == (31, 31) and k.min() >= 0 and k.sum() == pytest.approx(1.0, abs=1e-5)
        assert (k - b["kernel"]).abs().sum() > 1e-3  # an estimate, not the truth
    assert torch.equal(estimated[1]["model_kernel"], estimated[1]["model_kernel"])  # the estimator is deterministic
    with pytest.raises(ValueError, match="Gaussian blur needs kernel_estimates"):
        corpus.on_the_fly(images, num_samples=1, estimated_kernel_probability=0.5)
    with pytest.raises(ValueError, match="crop_size ≥ 32"):
        corpus.on_the_fly(images, num_samples=1, crop_size=30, kernel_family="motion", estimated_kernel_probability=1)


def test_align_kernel_undoes_a_shift_and_keeps_the_shape():
    k = camera_shake_kernel(np.random.default_rng(3), length=12.0)
    shifted = np.roll(k, (2, -3), axis=(0, 1))  # a 12-px shake in a 31 frame: nothing wraps
    np.testing.assert_allclose(align_kernel(shifted, k), k, atol=1e-12)
    other = camera_shake_kernel(np.random.default_rng(4), length=12.0)
    aligned = align_kernel(other, k)
    assert aligned.sum() == pytest.approx(1.0) and (aligned * k).sum() >= (other * k).sum()
    with pytest.raises(ValueError, match="different shapes"):
        align_kernel(k, k[1:-1, 1:-1])
    corner, opposite = np.zeros((31, 31)), np.zeros((31, 31))
    corner[0, 0], opposite[-1, -1] = 2.0, 1.0  # no shift of up to 6 px makes them overlap
    np.testing.assert_array_equal(align_kernel(corner, opposite), corner / 2)


def test_precomputed_whole_photo_estimates_feed_the_corpus(data_dir, tmp_path):
    output = tmp_path / "estimates.npz"
    command = [sys.executable, str(REPO_ROOT / "train" / "precompute_kernel_estimates.py"), "--output", str(output)]
    options = ["--train_dirs", str(data_dir / "set5"), "--limit", "1", "--per_image", "1", "--workers", "1"]
    subprocess.run([*command, *options], check=True, capture_output=True, timeout=120)
    made = np.load(output)
    assert made["kernel"].shape == made["estimate"].shape == (1, 31, 31) and list(made["image_index"]) == [0]
    np.testing.assert_allclose(made["kernel"][0], camera_shake_kernel(np.random.default_rng([0, 0, 0])), atol=1e-6)
    assert np.abs(made["estimate"][0] - made["kernel"][0]).sum() > 1e-3  # estimated blind, not copied

    # An estimate that is the true kernel shifted: the corpus aligns it back; crops blur with the file's kernel
    images = corpus.sharp_images([data_dir / "set5"])
    kernel = camera_shake_kernel(np.random.default_rng(7), length=10.0)
    fake = tmp_path / "fake.npz"
    sources = dict(np.load(output))["sources"]
    np.savez(fake, sources=sources, image_index=[2], kernel=kernel[None], estimate=np.roll(kernel, 1, axis=1)[None])
    options = {"num_samples": 4, "crop_size": 40, "kernel_family": "motion", "estimated_kernel_probability": 1.0}
    dihedral = [np.rot90(k, t) for k in (kernel, kernel[:, ::-1]) for t in range(4)]
    for sample in corpus.on_the_fly(images, **options, kernel_estimates=fake):
        assert sample["kernel_is_estimate"] == 1
        np.testing.assert_allclose(sample["model_kernel"], sample["kernel"], atol=1e-6)
        assert any(np.allclose(sample["kernel"], k, atol=1e-6) for k in dihedral)
    np.savez(fake, sources=sources[::-1], image_index=[2], kernel=kernel[None], estimate=kernel[None])
    with pytest.raises(ValueError, match="made from other photos"):
        corpus.on_the_fly(images, **options, kernel_estimates=fake)
    with pytest.raises(ValueError, match="only used with estimated_kernel_probability > 0"):
        corpus.on_the_fly(images, **options | {"estimated_kernel_probability": 0.0}, kernel_estimates=output)


def test_blur_type_picks_the_model_and_the_kernel_frame(data_dir, rng):
    image = rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)
    levin = levin_kernels(data_dir)[0]
    result = bikanet_hf.deblur(image, levin[2:-2, 2:-2], blur_type="auto")
    assert result.kernel.shape == (31, 31) and result.image.size == (44, 40)
    assert bikanet_hf.deblur(image, kernels.gaussian_kernel(2.0, 1.0, 10), blur_type="auto").kernel.shape == (17, 17)
    blind = bikanet_hf.deblur(image, blur_type="motion", method="amortized")
    assert blind.kernel_estimated and blind.kernel.shape == (31, 31)
    with pytest.raises(ValueError, match="edges method needs at least 62×62"):  # the default for shake: too small here
        bikanet_hf.deblur(image, blur_type="motion")
    assert resolve_blur_type("auto", None, None, image) == "gaussian"  # blind: no camera shake without asking
    with pytest.raises(ValueError, match="Unknown blur_type"):
        bikanet_hf.deblur(image, blur_type="shake")
    with pytest.raises(ValueError, match="does not estimate motion blur"):
        bikanet_hf.estimate_kernel(image, method="gan", blur_type="motion")
    # the Gaussian model warns when a large motion kernel is cropped to its frame and advises the motion model
    with pytest.warns(UserWarning, match="blur_type='motion'"):
        bikanet_hf.deblur(image, levin_kernels(data_dir)[3], blur_type="gaussian")


@pytest.mark.slow
def test_training_script_trains_the_motion_variant(folders, tmp_path):
    tiny = ["--hidden_size", "4", "--block_hidden_size", "4", "--num_blocks", "1", "--max_train_steps", "1"]
    motion = ["--kernel_family", "motion", "--kernel_conditioning", "motion_flow", "--validation_limit", "1"]
    command = script_command("train_bikanet.py", folders, tmp_path / "m", *tiny, *motion, "--crop_size", "34")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "pass --kernel_size 31" in result.stderr
    # validation with blind estimates needs images that hold two kernel frames (62×62)
    (tmp_path / "val").mkdir()
    validation_image = np.random.default_rng(0).integers(0, 256, (64, 70, 3), dtype=np.uint8)
    Image.fromarray(validation_image).save(tmp_path / "val/0.png")
    blind = ["--kernel_size", "31", "--estimated_kernel_probability", "1", "--validation_dir", str(tmp_path / "val")]
    result = subprocess.run([*command, *blind], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    model = BikanetForImageDeblurring.from_pretrained(tmp_path / "m")
    assert model.config.kernel_conditioning == "motion_flow" and model.config.kernel_size == 31
    card = (tmp_path / "m" / "README.md").read_text()
    assert "motion track" in card and "camera-shake trajectory" in card
    assert "100% of the crops given the blind (edge-prediction) estimate" in card
    assert "kernel estimated blind" in card  # validated (and scored) with the estimated kernels too
    assert "the same, PSNR after the best shift of up to 6 px" in card and "estimated from each blurred crop" in card
    gaussian = script_command("train_bikanet.py", folders, tmp_path / "g", *tiny)
    result = subprocess.run([*gaussian, "--estimated_kernel_probability", "1"], capture_output=True, text=True)
    assert result.returncode != 0 and "with Gaussian blur needs --kernel_estimates" in result.stderr
    result = subprocess.run([*command, "--kernel_estimates", "x.npz"], capture_output=True, text=True)
    assert result.returncode != 0 and "--kernel_estimates needs --estimated_kernel_probability" in result.stderr


def test_motion_estimator_is_trained_on_the_spread_of_camera_shake():
    from bikanet_hf import BikanetKernelEstimator, BikanetKernelEstimatorConfig
    from bikanet_hf.modeling_kernel_estimator import kernel_covariance, spread_error

    line = torch.from_numpy(linear_motion_kernel(12.0, 30.0))[None].float()
    covariance = kernel_covariance(line)
    assert torch.allclose(torch.linalg.eigvalsh(covariance)[0, 1], torch.tensor(144 / 12), rtol=0.05)
    assert spread_error(covariance, covariance, 31)[0] < 1e-6
    config = BikanetKernelEstimatorConfig(kernel_family="motion", kernel_size=31, sigma_max=8.0, head_hidden_size=8)
    model = BikanetKernelEstimator(config)
    out = model(torch.rand(2, 3, 32, 32), labels=line.expand(2, -1, -1))
    expected = spread_error(out.covariance, covariance.expand(2, -1, -1), 31).mean()
    assert out.kernel.shape == (2, 31, 31) and torch.allclose(out.loss, expected)
    with pytest.raises(ValueError, match="kernel_family must be"):
        BikanetKernelEstimatorConfig(kernel_family="shake")


def test_pipeline_on_the_motion_folder_matches_deblur(rng):
    from transformers import pipeline

    from bikanet_hf.deblurring import DEFAULT_MOTION_MODEL

    image = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    pipe = pipeline("image-deblurring", model=str(DEFAULT_MOTION_MODEL), device="cpu")
    blind = pipe(image)
    expected = bikanet_hf.deblur(image, blur_type="motion", method="amortized")  # the pipeline's estimator
    assert blind["kernel"].shape == (31, 31)
    np.testing.assert_allclose(blind["kernel"], expected.kernel, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(blind["image"]), np.asarray(expected.image))
