"""Blind defocus: the disk's radius from the photo's spectrum, and whether the photo is out of focus at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bikanet_hf import (
    DefocusEstimate,
    deblur,
    deblurring,
    defocus_estimation,
    defocus_kernel,
    degrade,
    estimate_defocus,
    gaussian_kernel,
    psnr,
)
from bikanet_hf.deblurring import resolve_blur_type
from bikanet_hf.defocus_estimation import REGION_MISFIT_LIMIT
from bikanet_hf.estimation import estimate_kernel
from bikanet_hf.image_io import jpeg_roundtrip, load_rgb
from bikanet_hf.kernels import defocus_radius
from bikanet_hf.modeling_bikanet import tile_windows

EXAMPLES = Path(__file__).resolve().parents[1] / "bikanet_hf" / "examples"


measure = defocus_estimation._measure


@pytest.fixture(scope="module")
def sharp() -> np.ndarray:
    return load_rgb(EXAMPLES / "chelsea_sharp.png")  # 451×300


@pytest.mark.parametrize("radius", [1.5, 2.0, 3.5, 6.0, 7.5])
def test_the_radius_of_a_disk_blur_is_found(sharp, radius):
    estimate = estimate_defocus(degrade(sharp, defocus_kernel(radius)))
    assert estimate.is_defocus
    assert estimate.radius == pytest.approx(radius, abs=0.06)  # a step of the 0.05-px grid
    np.testing.assert_allclose(estimate.kernel(), defocus_kernel(estimate.radius))


def test_a_disk_is_found_through_jpeg_artefacts(sharp):
    estimate = estimate_defocus(jpeg_roundtrip(degrade(sharp, defocus_kernel(3.5)), 90))
    assert estimate.is_defocus and estimate.radius == pytest.approx(3.5, rel=0.03)


def test_a_large_disk_is_found_through_noise(sharp):
    noisy = degrade(sharp, defocus_kernel(6.0), noise_sigma=2.55, generator=torch.Generator().manual_seed(0))
    estimate = estimate_defocus(noisy)
    assert estimate.is_defocus and estimate.radius == pytest.approx(6.0, rel=0.03)


@pytest.mark.parametrize("kernel", [(1.0, 1.0, 0.0), (2.5, 1.0, 30.0), (4.0, 1.5, 60.0), (2.2, 2.2, 0.0), None])
def test_gaussian_blur_and_sharp_photos_are_not_called_out_of_focus(sharp, kernel):
    photo = sharp if kernel is None else degrade(sharp, gaussian_kernel(*kernel))
    estimate = estimate_defocus(photo)
    assert not estimate.is_defocus
    assert estimate.misfit > 0.5 * estimate.gaussian_misfit  # the Gaussians fit as well or better


def test_small_and_flat_photos(sharp):
    crop = degrade(sharp, defocus_kernel(3.0))[:100, :130]  # a 64-px tile instead of 256
    assert estimate_defocus(crop).radius == pytest.approx(3.0, rel=0.03)
    with pytest.raises(ValueError, match="at least 64×64"):
        estimate_defocus(crop[:63])
    grey = crop.mean(axis=2).round().astype(np.uint8)  # any image deblur() takes: here grey, replicated to RGB
    assert estimate_defocus(grey).radius == pytest.approx(3.0, abs=0.06)
    flat = estimate_defocus(np.full((80, 80, 3), 128, np.uint8))  # nothing to measure: no evidence either way
    assert flat == DefocusEstimate(1.0, float("inf"), float("inf"), False, 0.0) and not flat.is_defocus


def test_estimate_kernel_and_blur_type_routing(sharp):
    blurred = degrade(sharp, defocus_kernel(4.0))
    kernel = estimate_kernel(blurred, blur_type="defocus")
    assert kernel.shape == (17, 17) and defocus_radius(kernel) == pytest.approx(4.0, rel=0.03)
    with pytest.raises(ValueError, match="does not estimate gaussian blur"):
        estimate_kernel(blurred, method="spectral")
    with pytest.raises(ValueError, match="at least 64×64"):
        estimate_kernel(blurred[:40, :40], blur_type="defocus")
    assert resolve_blur_type("auto", None, None, blurred) == "defocus"
    assert resolve_blur_type("auto", None, None, degrade(sharp, gaussian_kernel(2.0, 2.0, 0.0))) == "gaussian"
    assert resolve_blur_type("auto", None, None) == "auto"  # blind, nothing to look at yet
    assert resolve_blur_type("auto", None, None, blurred[:40, :40]) == "gaussian"  # too small to measure


def test_deblur_auto_uses_the_measured_disk(sharp, monkeypatch):
    blurred = degrade(sharp, defocus_kernel(3.5))
    measured = []
    monkeypatch.setattr(defocus_estimation, "_last_estimate", None)
    monkeypatch.setattr(defocus_estimation, "_measure", lambda image: measured.append(1) or measure(image))
    auto = deblur(blurred, precision="float32")  # blur_type="auto", the default
    assert len(measured) == 1  # looking for a disk and measuring its kernel: one measurement
    assert any("lens out of focus: a disk of radius ≈ 3.5 px" in note for note in auto.notes)
    assert defocus_radius(auto.kernel) == pytest.approx(3.5, rel=0.03) and auto.kernel_estimated
    gaussian = deblur(blurred, blur_type="gaussian", precision="float32")  # a Gaussian estimate
    assert not any("out of focus" in note for note in gaussian.notes)
    assert psnr(sharp, np.asarray(auto.image)) > psnr(sharp, np.asarray(gaussian.image)) + 2.0
    for gaussian_only in ({"spatially_varying": True}, {"method": "amortized"}):  # auto then looks for no disk
        assert not any("out of focus" in note for note in deblur(blurred, **gaussian_only).notes)


def test_a_photo_partly_in_focus_is_not_one_disk(data_dir):
    sharp = load_rgb(data_dir / "bsds500_val" / "101087.jpg")
    blurred = degrade(sharp, defocus_kernel(5.0))
    partly = sharp.copy()
    partly[:, : 3 * sharp.shape[1] // 4] = blurred[:, : 3 * sharp.shape[1] // 4]  # the right quarter in focus
    estimate = estimate_defocus(partly)
    assert estimate.misfit < 0.5 * estimate.gaussian_misfit and estimate.zero_measured  # the whole photo: a disk
    assert estimate.worst_quarter > REGION_MISFIT_LIMIT and not estimate.is_defocus  # but not its right quarters
    assert estimate_defocus(blurred).worst_quarter <= REGION_MISFIT_LIMIT and estimate_defocus(blurred).is_defocus


def test_a_photo_partly_in_focus_gets_a_disk_per_tile(data_dir, monkeypatch):
    sharp = load_rgb(data_dir / "bsds500_val" / "101087.jpg")  # 481 × 321, portrait
    partly = sharp.copy()
    partly[:320] = degrade(sharp, defocus_kernel(5.0))[:320]  # the bottom third in focus
    options = {"blur_type": "defocus", "tile_size": 160, "tile_overlap": 40, "precision": "float32"}
    per_tile = deblur(partly, spatially_varying=True, **options)
    windows = tile_windows(*sharp.shape[:2], 160, 40)
    blurred_tiles = [k for k, (_, bottom, _, _) in zip(per_tile.tile_kernels, windows, strict=True) if bottom <= 320]
    in_focus = [k for k, (top, _, _, _) in zip(per_tile.tile_kernels, windows, strict=True) if top >= 320]
    assert blurred_tiles and in_focus
    found = [k for k in blurred_tiles if k.max() < 1.0]  # the others show no disk: a delta
    assert found and all(defocus_radius(k) == pytest.approx(5.0, rel=0.05) for k in found)  # a flat sky shows none
    assert all(k.max() == 1.0 for k in in_focus)  # a delta: the part in focus left about as it is
    assert any(f"found in {len(found)} (radius 5.0 px)" in note for note in per_tile.notes) and not any(
        "lens out of focus" in n for n in per_tile.notes
    )
    one_disk = deblur(partly, **options)  # the whole photo's disk over-sharpens the part in focus
    assert psnr(sharp, np.asarray(per_tile.image)) > max(psnr(sharp, partly), psnr(sharp, np.asarray(one_disk.image)))
    # blur_type="auto": the same disks where tiles show one, the others their Gaussian estimate (the flat sky too),
    # and the model told which kernels are estimates
    told, original = [], deblurring.restore  # the kernel_is_estimate that reaches the model

    def restore(*args, kernel_is_estimate=False, **kwargs):
        told.append(kernel_is_estimate)
        return original(*args, kernel_is_estimate=kernel_is_estimate, **kwargs)

    monkeypatch.setattr(deblurring, "restore", restore)
    auto = deblur(partly, spatially_varying=True, **(options | {"blur_type": "auto"}))
    is_disk = per_tile.tile_kernels.max(axis=(1, 2)) < 1.0
    np.testing.assert_array_equal(auto.tile_kernels[is_disk], per_tile.tile_kernels[is_disk])
    np.testing.assert_array_equal(told[-1], ~is_disk)
    gaussian = deblur(partly, spatially_varying=True, **(options | {"blur_type": "gaussian"}))
    np.testing.assert_allclose(auto.tile_kernels[~is_disk], gaussian.tile_kernels[~is_disk])
    assert any(f"found in {len(found)} (radius 5.0 px); the others took a Gaussian" in n for n in auto.notes)
    assert psnr(sharp, np.asarray(auto.image)) > psnr(sharp, np.asarray(gaussian.image)) + 0.5


def test_blind_auto_says_when_parts_of_a_photo_show_a_lens_out_of_focus(data_dir):
    sharp = load_rgb(data_dir / "bsds500_val" / "101087.jpg")  # 481 × 321: 6 tiles of 256 px
    partly = sharp.copy()
    partly[:320] = degrade(sharp, defocus_kernel(5.0))[:320]
    found, looked = deblurring.defocused_tiles(partly)
    assert looked == 6 and 0 < found < looked
    for other in (sharp, degrade(sharp, gaussian_kernel(2.0, 1.5, 30.0)), degrade(sharp, defocus_kernel(5.0))):
        assert deblurring.defocused_tiles(other)[0] in (0, 6)  # none, or all: one disk for the whole photo
    one_kernel = deblur(partly, precision="float32")
    hint = f"{found} of 6 256-px tiles looked at show a lens out of focus"
    assert any(hint in note and "a kernel per tile (spatially_varying=True" in note for note in one_kernel.notes)
    # the advice pays, in the tiles a kernel per tile takes by default: those the hint looked at (512-px ones, as for
    # one kernel, would leave this 481×321 photo in one)
    per_tile = deblur(partly, spatially_varying=True, precision="float32")
    assert per_tile.num_tiles == 6
    assert psnr(sharp, np.asarray(per_tile.image)) > psnr(sharp, np.asarray(one_kernel.image)) + 0.5
    assert not any("tiles looked at" in n for n in deblur(partly, method="amortized", precision="float32").notes)
    assert deblurring.defocused_tiles(sharp[:200, :200]) == (0, 0)  # one tile: the whole-photo test says it all


def test_a_jpeg_file_is_told_at_least_the_jpeg_noise_level(sharp, tmp_path):
    from PIL import Image

    from bikanet_hf.deblurring import JPEG_NOISE_LEVEL
    from bikanet_hf.image_io import is_jpeg

    blurred = degrade(sharp, gaussian_kernel(2.0, 1.0, 30.0))
    Image.fromarray(blurred).save(tmp_path / "b.jpg", quality=90)
    Image.fromarray(blurred).save(tmp_path / "b.png")
    assert is_jpeg(tmp_path / "b.jpg") and is_jpeg(Image.open(tmp_path / "b.jpg"))
    assert not is_jpeg(tmp_path / "b.png") and not is_jpeg(blurred) and not is_jpeg(tmp_path / "missing.jpg")
    jpeg = deblur(tmp_path / "b.jpg", tile_size=None)
    assert jpeg.noise_level == pytest.approx(JPEG_NOISE_LEVEL) and any("is a JPEG" in n for n in jpeg.notes)
    lossless = deblur(tmp_path / "b.png", tile_size=None)
    assert lossless.noise_level < 1.0 and not any("JPEG" in n for n in lossless.notes)  # measured: clean
    asked = deblur(tmp_path / "b.jpg", tile_size=None, noise_level=0.5)  # the user's level wins
    assert asked.noise_level == pytest.approx(0.5) and not any("JPEG" in n for n in asked.notes)
