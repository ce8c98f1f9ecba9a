import json
import subprocess
import warnings

import numpy as np
import pytest
import torch

from bikanet_hf.configuration_kernel_estimator import BikanetKernelEstimatorConfig
from bikanet_hf.estimation import FlatImageWarning, SlightBlurWarning, estimate_kernel, narrow_kernel
from bikanet_hf.image_io import load_rgb
from bikanet_hf.kernels import bank16, degrade, gaussian_kernel
from bikanet_hf.metrics import kernel_l1
from bikanet_hf.modeling_kernel_estimator import BikanetKernelEstimator, covariance_from_parameters, gaussian_kernels
from tests.conftest import script_command

TINY = BikanetKernelEstimatorConfig(head_hidden_size=8, head_layers=1, crop_size=32, max_crops=4)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("estimator")
    BikanetKernelEstimator(TINY).save_pretrained(folder)
    return folder


@pytest.mark.parametrize(("s1", "s2", "theta"), [(1.0, 1.0, 0.0), (2.5, 1.0, 30.0), (4.0, 1.5, 150.0), (3.0, 0.6, 95)])
def test_rendered_gaussians_equal_the_protocol_kernels(s1, s2, theta):
    cov = covariance_from_parameters(
        torch.tensor([s1], dtype=torch.float64),
        torch.tensor([s2], dtype=torch.float64),
        torch.deg2rad(torch.tensor([theta], dtype=torch.float64)),
    )
    np.testing.assert_allclose(gaussian_kernels(cov, 17)[0].numpy(), gaussian_kernel(s1, s2, theta), atol=1e-12)
    major, minor, angle = BikanetKernelEstimator.covariance_to_parameters(cov)
    assert major.item() == pytest.approx(s1) and minor.item() == pytest.approx(s2)
    if s1 != s2:
        assert angle.item() == pytest.approx(theta % 180, abs=1e-6)


def test_forward_gives_valid_kernels_and_the_protocol_loss():
    model = BikanetKernelEstimator(TINY)
    x = torch.rand(3, 3, 40, 36)
    labels = torch.from_numpy(bank16()[[0, 7, 15]]).float()
    out = model(pixel_values=x, labels=labels)
    assert out.kernel.shape == (3, 17, 17) and (out.kernel >= 0).all()
    torch.testing.assert_close(out.kernel.sum(dim=(-2, -1)), torch.ones(3))
    expected = np.mean(
        [kernel_l1(k.detach().double().numpy(), t.double().numpy()) for k, t in zip(out.kernel, labels, strict=True)]
    )
    assert out.loss.item() == pytest.approx(expected, abs=1e-5)
    out.loss.backward()
    assert (out.sigma_major >= out.sigma_minor).all() and ((0 <= out.theta) & (out.theta < 180)).all()


def test_estimate_uses_the_most_textured_crops_of_any_size():
    model = BikanetKernelEstimator(TINY).eval()
    image = torch.full((3, 70, 100), 0.5)
    image[:, :32, -32:] = torch.rand(3, 32, 32)  # only the top-right corner has texture
    crops, texture = model.select_crops(image)
    assert crops.shape == (4, 3, 32, 32) and texture[0] > 0 and torch.all(texture[1:] <= texture[0])
    torch.testing.assert_close(crops[0], image[:, :32, -32:])
    for shape in ((3, 20, 25), (3, 33, 200)):
        out = model.estimate(torch.rand(shape))
        assert out.kernel.shape == (1, 17, 17)


def test_statistics_measure_blur_width_and_direction(rng):
    """The parameter-free statistics alone already tell blur apart: more blur, weaker derivatives; blur along x
    weakens x-derivatives more than y-derivatives."""
    statistics = BikanetKernelEstimator(TINY).statistics
    sharp = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)

    def moments(kernel):
        image = torch.from_numpy(degrade(sharp, kernel)).permute(2, 0, 1).float().div(255)[None]
        return statistics(image)[0, : TINY.num_directions]  # p = 1, no re-blur: one value per direction

    light, heavy = moments(gaussian_kernel(0.8, 0.8, 0)), moments(gaussian_kernel(3.0, 3.0, 0))
    assert torch.all(heavy < 0.6 * light)
    along_x = moments(gaussian_kernel(3.0, 0.8, 0))
    quarter = TINY.num_directions // 2  # the direction at 90°
    assert along_x[0] < 0.6 * along_x[quarter]
    # Log-features do not depend on contrast: a dimmer copy of the image has the same ones.
    image = torch.from_numpy(degrade(sharp, gaussian_kernel(2.0, 1.0, 45))).permute(2, 0, 1).float().div(255)[None]
    a, b = (statistics.log_features(statistics(x)) for x in (image, 0.5 * image))
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_statistics_equal_the_moments_computed_directly(rng):
    """The fast paths (chunked products for odd powers, Gram matrices for even ones) give the moments of the
    definition, ``mean(|cos φ ∂x I + sin φ ∂y I|^p)`` per direction, on images larger than one pixel chunk."""
    config = BikanetKernelEstimatorConfig(moments=[1, 2, 3, 4], reblur_sigmas=[0.0], num_directions=6)
    statistics = BikanetKernelEstimator(config).statistics
    image = torch.from_numpy(rng.random((2, 3, 100, 120)))
    gray = (image * torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype).view(1, 3, 1, 1)).sum(1)
    gx = (gray[:, 1:-1, 2:] - gray[:, 1:-1, :-2]).flatten(1) / 2
    gy = (gray[:, 2:, 1:-1] - gray[:, :-2, 1:-1]).flatten(1) / 2
    angles = torch.arange(6, dtype=image.dtype) * torch.pi / 6
    expected = [(torch.cos(a) * gx + torch.sin(a) * gy).abs().pow(p).mean(-1) for p in (1, 2, 3, 4) for a in angles]
    torch.testing.assert_close(statistics(image)[:, :-1], torch.stack(expected, 1))


def test_calibration_is_saved_and_reloaded(tmp_path):
    model = BikanetKernelEstimator(TINY)
    crops = torch.rand(6, 3, 32, 32)
    model.calibrate(crops)
    features = (model.statistics.log_features(model.statistics(crops)) - model.feature_mean) / model.feature_std
    torch.testing.assert_close(features.mean(0), torch.zeros_like(features[0]), atol=1e-4, rtol=0)
    model.save_pretrained(tmp_path)
    loaded = BikanetKernelEstimator.from_pretrained(tmp_path)
    image = torch.rand(3, 50, 60)
    torch.testing.assert_close(loaded.estimate(image).kernel, model.eval().estimate(image).kernel)


def test_estimate_kernel_api(tiny_folder, rng):
    sharp = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    blurred = degrade(sharp, gaussian_kernel(2.0, 1.0, 45))
    kernel = estimate_kernel(blurred, estimator=tiny_folder)
    assert kernel.shape == (17, 17) and kernel.dtype == np.float64 and kernel.min() >= 0
    assert kernel.sum() == pytest.approx(1.0)
    assert kernel_l1(kernel, kernel[::-1, ::-1]) < 1e-6  # a Gaussian is point-symmetric about the centre
    np.testing.assert_array_equal(estimate_kernel(blurred[..., 0], estimator=tiny_folder).shape, (17, 17))
    with pytest.raises(ValueError, match="at least 16×16"):
        estimate_kernel(blurred[:10, :10], estimator=tiny_folder)
    with pytest.raises(ValueError, match="Unknown method"):
        estimate_kernel(blurred, method="magic", estimator=tiny_folder)
    with pytest.warns(FlatImageWarning, match="almost flat"):
        estimate_kernel(np.full((40, 40, 3), 128, np.uint8), estimator=tiny_folder)


def test_symmetries_permute_the_statistics_and_averaging_makes_the_estimate_equivariant():
    torch.manual_seed(0)
    image = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 30, 38), 3, 1, 1)
    mirror, rotation, transpose = (
        torch.tensor([[-1.0, 0], [0, 1]]),
        torch.tensor([[0.0, -1], [1, 0]]),
        torch.eye(2)[[1, 0]],
    )
    transformed = [(image.flip(-1), mirror), (torch.rot90(image, 1, (-2, -1)), rotation), (image.mT, transpose)]
    for average in (False, True):
        model = BikanetKernelEstimator(
            BikanetKernelEstimatorConfig(**TINY.to_dict() | {"average_symmetries": average})
        )
        moments = model.statistics(image.double())
        symmetries = model.statistics.symmetries()
        assert len(symmetries) == 4 and torch.equal(symmetries[0][0], torch.arange(moments.shape[1]))
        covariance = model.estimate(image[0]).covariance[0]
        for (other, transform), (permutation, expected) in zip(transformed, symmetries[1:], strict=True):
            torch.testing.assert_close(model.statistics(other.double()), moments[:, permutation])
            mapped = transform @ covariance @ transform.T
            # expected M Σ Mᵀ of the model's own map equals the image-space one (±90° rotations agree on covariances)
            torch.testing.assert_close(expected @ covariance @ expected.T, mapped)
            error = (model.estimate(other[0]).covariance[0] - mapped).abs().max().item()
            assert (error < 1e-5) == average, (average, error)


@pytest.mark.slow
def test_training_script_runs_resumes_and_saves(folders, tmp_path):
    schedule = [
        "--max_train_steps",
        "3",
        "--checkpointing_steps",
        "1",
        "--validation_steps",
        "2",
        "--lr_warmup_steps",
        "1",
        "--head_hidden_size",
        "8",
        "--head_layers",
        "1",
        "--calibration_samples",
        "4",
    ]
    out = tmp_path / "run"
    for extra in (["--stop_after_steps", "2"], []):
        cmd = script_command(
            "train_kernel_estimator.py", folders, out, *schedule, "--resume_from_checkpoint", "latest", *extra
        )
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
    assert "Resumed from" in result.stderr
    results = json.loads((out / "eval_results.json").read_text())
    assert 0 <= results["validation_quick"]["kernel_l1"] <= 2 and results["training"]["steps"] == 3
    trained = BikanetKernelEstimator.from_pretrained(out)
    assert trained.config.head_layers == 1 and bool(torch.any(trained.feature_std != 1))  # calibrated
    assert "kernel error" in (out / "README.md").read_text()


def test_estimate_kernel_gan_and_refine_methods(tiny_folder, rng):
    sharp = rng.integers(0, 256, (72, 80, 3), dtype=np.uint8)
    blurred = degrade(sharp, gaussian_kernel(2.0, 1.0, 45))
    steps = []
    for method in ("gan", "refine"):
        kernel = estimate_kernel(
            blurred, method, estimator=tiny_folder, steps=3, progress=lambda s, t: steps.append(t)
        )
        assert kernel.shape == (17, 17) and kernel.min() >= 0 and kernel.sum() == pytest.approx(1.0)
    assert steps == [3] * 6
    # refine with no training steps is the amortized estimate, re-rendered through the GAN's calibration round trip
    amortized = estimate_kernel(blurred, estimator=tiny_folder)
    assert kernel_l1(estimate_kernel(blurred, "refine", estimator=tiny_folder, steps=0), amortized) < 0.15
    with pytest.raises(ValueError, match="at least 64×64"):
        estimate_kernel(blurred[:40], "gan", estimator=tiny_folder)


def test_deblurring_uses_the_calibrated_narrower_kernel(tmp_path, rng):
    config = BikanetKernelEstimatorConfig(
        head_hidden_size=8, head_layers=1, deblur_covariance_scale=0.81, deblur_sigma_offset=0.2
    )
    BikanetKernelEstimator(config).save_pretrained(tmp_path)
    model = BikanetKernelEstimator.from_pretrained(tmp_path)
    # one factor: the major axis 0.9 σ − 0.2 px, the same shape; never below sigma_min (0.3) through the offset
    theta = torch.tensor([0.5, 0.0, 0.0])
    covariance = covariance_from_parameters(torch.tensor([2.0, 0.35, 0.3]), torch.tensor([1.0, 0.35, 0.3]), theta)
    narrowed = covariance_from_parameters(torch.tensor([1.6, 0.3, 0.27]), torch.tensor([0.8, 0.3, 0.27]), theta)
    torch.testing.assert_close(model.deblur_covariance(covariance), narrowed)
    identity = BikanetKernelEstimator(BikanetKernelEstimatorConfig(head_hidden_size=8, head_layers=1))
    torch.testing.assert_close(identity.deblur_covariance(covariance), covariance)
    # with a floor of 1 px the offset narrows 2 px to 1.6 as before, 1.2 px (0.9 × 1.2 = 1.08) only to the floor,
    # and 0.9 px not at all (only scaled: 0.81)
    config.deblur_offset_floor = 1.0
    floored = BikanetKernelEstimator(config)
    covariance = covariance_from_parameters(torch.tensor([2.0, 1.2, 0.9]), torch.tensor([1.0, 0.6, 0.9]), theta)
    narrowed = covariance_from_parameters(torch.tensor([1.6, 1.0, 0.81]), torch.tensor([0.8, 0.5, 0.81]), theta)
    torch.testing.assert_close(floored.deblur_covariance(covariance), narrowed)
    with pytest.raises(ValueError, match="deblur_sigma_offset >= 0"):
        BikanetKernelEstimatorConfig(deblur_sigma_offset=-0.1)
    with pytest.raises(ValueError, match="deblur_offset_floor >= 0"):
        BikanetKernelEstimatorConfig(deblur_offset_floor=-1.0)
    image = torch.rand(3, 40, 40)
    used = model.estimate(image, for_deblurring=True).covariance
    torch.testing.assert_close(used, model.deblur_covariance(model.estimate(image).covariance))
    blurred = degrade(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), gaussian_kernel(2.0, 2.0, 0))
    measured = estimate_kernel(blurred, estimator=tmp_path)
    used = estimate_kernel(blurred, estimator=tmp_path, for_deblurring=True)
    assert used.max() > measured.max()  # narrower: more of its mass at the centre
    np.testing.assert_allclose(narrow_kernel(measured, model), used, atol=1e-6)  # the same narrowing, from the kernel
    # KernelGAN's answer is narrowed alike (it was not: refine deblurred with a wider kernel than the amortized one)
    sized = np.kron(blurred, np.ones((2, 2, 1), dtype=np.uint8))  # KernelGAN needs 64×64
    for method in ("gan", "refine"):
        gan = estimate_kernel(sized, method, estimator=tmp_path, steps=2)
        gan_used = estimate_kernel(sized, method, estimator=tmp_path, steps=2, for_deblurring=True)
        np.testing.assert_allclose(gan_used, narrow_kernel(gan, model), atol=1e-9)
        assert gan_used.max() > gan.max()


def test_a_photo_with_very_little_blur_is_flagged_as_possibly_sharp(data_dir):
    sharp = load_rgb(data_dir / "set14" / "baboon.png")
    with pytest.warns(SlightBlurWarning, match="very little blur"):
        estimate_kernel(sharp, for_deblurring=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clearly blurred photo raises no warning at all
        estimate_kernel(degrade(sharp, gaussian_kernel(1.5, 1.5, 0)), for_deblurring=True)


@pytest.mark.slow
def test_whole_photo_fine_tuning_learns_from_pooled_statistics_and_caches_them(folders, tiny_folder, tmp_path, capsys):
    import sys

    from bikanet_hf.protocol import protocol_pairs
    from tests.conftest import REPO_ROOT

    sys.path.insert(0, str(REPO_ROOT / "train"))
    import finetune_kernel_estimator as finetune

    cache, out = tmp_path / "moments.npz", tmp_path / "tuned"

    def run(per_image: int, output_dir, *extra: str) -> dict:
        finetune.main(
            ["--train_dirs", str(folders / "train"), "--validation_dir", str(folders / "val")]
            + ["--init_from", str(tiny_folder), "--moments_cache", str(cache), "--workers", "1"]
            + ["--per_image", str(per_image), "--output_dir", str(output_dir), *extra]
        )
        return json.loads((output_dir / "eval_results.json").read_text())

    results = run(4, out, "--epochs", "3", "--batch_size", "4", "--learning_rate", "1e-2")
    saved = np.load(cache)
    assert saved["moments"].shape == (12, BikanetKernelEstimator(TINY).statistics.num_features)
    assert [h["epoch"] for h in results["history"]] == [0, 1, 2, 3] and results["validation_quick"]["num_pairs"] == 2
    initial = BikanetKernelEstimator.from_pretrained(tiny_folder)
    tuned = BikanetKernelEstimator.from_pretrained(out)
    assert not torch.equal(tuned.head[0].weight, initial.head[0].weight)  # the last epoch is kept
    torch.testing.assert_close(tuned.feature_mean, initial.feature_mean)  # the standardisation is kept
    # The recorded validation error is what estimate() gives on the protocol's pairs with the saved estimator.
    pairs = list(protocol_pairs(folders / "val", track="quick"))
    images = [torch.from_numpy(p.blurred).permute(2, 0, 1).float() / 255 for p in pairs]
    errors = [kernel_l1(tuned.estimate(x).kernel[0].numpy(), p.kernel) for x, p in zip(images, pairs, strict=True)]
    assert np.mean(errors) == pytest.approx(results["validation_quick"]["kernel_l1"], abs=1e-5)
    assert "Fine-tuned on whole photos" in (out / "README.md").read_text()
    # The same flags read the cache (the photos are not blurred again); other flags recompute it.
    capsys.readouterr()
    run(4, tmp_path / "again", "--epochs", "1")
    assert f"Statistics of 12 blurred photos from {cache}" in capsys.readouterr().out
    run(2, tmp_path / "other", "--epochs", "1")
    assert "made with other flags" in capsys.readouterr().out and np.load(cache)["moments"].shape[0] == 6
    # Nearly sharp photos are another recipe; the card says what share of them the head saw.
    run(2, tmp_path / "near_sharp", "--epochs", "1", "--near_sharp_fraction", "0.5")
    assert "made with other flags" in capsys.readouterr().out
    centre = np.load(cache)["kernel"][:, 8, 8]
    assert (centre > 0.4).sum() >= 1  # σ ≤ 0.6: most weight on the centre tap (the random family's σ ≥ 0.6)
    card = (tmp_path / "near_sharp" / "README.md").read_text()
    assert "## Fine-tuned on whole photos, nearly sharp ones included" in card and "50% nearly sharp" in card
