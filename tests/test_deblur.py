"""The public deblurring API: ``deblur``, the ``image-deblurring`` pipeline, tiling, and the CLI commands."""

import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata
from transformers import pipeline

from bikanet_hf import (
    BikanetConfig,
    BikanetForImageDeblurring,
    DeblurResult,
    SlightBlurWarning,
    deblur,
    linear_motion_kernel,
    modeling_bikanet,
    spatially_varying_degrade,
)
from bikanet_hf.cli import main
from bikanet_hf.configuration_kernel_estimator import BikanetKernelEstimatorConfig
from bikanet_hf.deblurring import (
    DEFAULT_MODEL,
    JPEG_NOISE_LEVEL,
    load_model,
    prepare_kernel,
    restore,
    tile_context_for,
    tile_overlap_for,
    varying_tiles,
)
from bikanet_hf.estimation import LARGE_MODEL
from bikanet_hf.image_io import read_image
from bikanet_hf.kernels import defocus_kernel, degrade, delta_kernel, gaussian_kernel, kernel_spread
from bikanet_hf.metrics import psnr
from bikanet_hf.modeling_kernel_estimator import BikanetKernelEstimator
from bikanet_hf.pipeline_bikanet import kernel_for_model

KERNEL = gaussian_kernel(2.5, 1.0, 30)


@pytest.fixture(scope="module")
def sharp():
    return skdata.astronaut()[40:136, 180:308].copy()  # 96×128, a face and its edges


@pytest.fixture(scope="module")
def blurred(sharp):
    return degrade(sharp, KERNEL)


@pytest.fixture(scope="module")
def tiny_estimator(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("estimator")
    BikanetKernelEstimator(BikanetKernelEstimatorConfig(head_hidden_size=8, head_layers=1)).save_pretrained(folder)
    return folder


def test_non_blind_deblur_restores_detail(sharp, blurred):
    result = deblur(blurred, KERNEL)
    assert isinstance(result, DeblurResult) and not result.kernel_estimated
    restored = np.asarray(result.image)
    assert result.image.mode == "RGB" and restored.shape == sharp.shape
    assert psnr(sharp, restored) > psnr(sharp, blurred) + 3.0
    np.testing.assert_allclose(result.kernel, KERNEL)
    assert result.num_tiles == 1 and result.seconds["total"] >= result.seconds["deblur"] > 0


def test_tiles_blend_without_visible_seams(sharp, blurred):
    calls = []
    whole = np.asarray(deblur(blurred, KERNEL, tile_size=None).image)
    tiled = deblur(blurred, KERNEL, tile_size=64, tile_overlap=24, progress=lambda f, stage: calls.append(f))
    assert tiled.num_tiles == 6  # 2 rows × 3 columns of 64-pixel tiles
    assert calls[-1] == 1.0 and calls == sorted(calls)
    # Equal to one pass up to the tiles' own border effects, which the blending keeps out of the result.
    assert psnr(whole, np.asarray(tiled.image)) > 40
    assert abs(psnr(sharp, whole) - psnr(sharp, np.asarray(tiled.image))) < 0.1


def test_self_ensemble_averages_eight_flips_and_turns(sharp, blurred):
    # The Wiener front-end alone (an untrained model) treats a flipped or turned image with its kernel flipped or
    # turned alike, so its ensemble is its single pass; a trained network is not exactly equivariant.
    untrained = BikanetForImageDeblurring(BikanetConfig(hidden_size=4, block_hidden_size=8, num_blocks=1)).eval()
    x = torch.from_numpy(blurred).permute(2, 0, 1)[None].float() / 255
    k = torch.from_numpy(KERNEL).float()[None]
    single = untrained.deblur_tiled(x, k, None)
    torch.testing.assert_close(untrained.deblur_tiled(x, k, None, self_ensemble=True), single, atol=1e-5, rtol=0)
    calls = []
    options = {"tile_size": 64, "tile_overlap": 24}
    result = deblur(blurred, KERNEL, **options, self_ensemble=True, progress=lambda f, stage: calls.append(f))
    plain = np.asarray(deblur(blurred, KERNEL, **options).image)
    assert result.num_tiles == 6 and calls[-1] == 1.0 and calls == sorted(calls) and len(calls) == 8 * 6 + 1
    assert any("self-ensemble" in note for note in result.notes)
    ensembled = np.asarray(result.image)
    assert np.abs(ensembled.astype(int) - plain).max() > 0  # not the single pass
    assert psnr(sharp, ensembled) > psnr(sharp, blurred) + 3.0
    # the pipeline passes it through and gives the same pixels
    pipe = pipeline("image-deblurring", model=str(DEFAULT_MODEL), device="cpu")
    out = pipe(Image.fromarray(blurred), kernel=KERNEL, **options, self_ensemble=True)
    np.testing.assert_array_equal(np.asarray(out["image"]), ensembled)
    with pytest.raises(ValueError, match="takes no motion_flow or tile kernel"):
        untrained.deblur_tiled(x, k, None, motion_flow=torch.zeros(1, 2, *x.shape[-2:]), self_ensemble=True)


def test_precision_auto_follows_the_device_and_bf16_stays_close(sharp, blurred, monkeypatch):
    # A small crop: where bf16 is not native (AVX2-only CPUs), PyTorch emulates it about 100× slower.
    sharp, blurred = sharp[:48, :64], blurred[:48, :64]
    exact = np.asarray(deblur(blurred, KERNEL, precision="float32").image)
    monkeypatch.setattr(modeling_bikanet, "native_bf16", lambda device: False)
    np.testing.assert_array_equal(np.asarray(deblur(blurred, KERNEL).image), exact)
    monkeypatch.setattr(modeling_bikanet, "native_bf16", lambda device: True)
    auto = np.asarray(deblur(blurred, KERNEL).image)
    np.testing.assert_array_equal(np.asarray(deblur(blurred, KERNEL, precision="bfloat16").image), auto)
    assert np.abs(auto.astype(int) - exact).max() > 0  # bf16 really ran
    assert psnr(exact, auto) > 40 and abs(psnr(sharp, auto) - psnr(sharp, exact)) < 0.1
    pipe = pipeline("image-deblurring", model=str(DEFAULT_MODEL), device="cpu")
    np.testing.assert_array_equal(np.asarray(pipe(Image.fromarray(blurred), kernel=KERNEL)["image"]), auto)
    with pytest.raises(ValueError, match="precision must be one of auto, float32, bfloat16; got 'fp16'"):
        deblur(blurred, KERNEL, precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        pipe(Image.fromarray(blurred), kernel=KERNEL, precision="half")


def test_pipeline_tells_a_jpeg_file_or_its_pixels_the_jpeg_noise_level_as_deblur(tmp_path, blurred):
    Image.fromarray(blurred).save(tmp_path / "b.jpg", quality=90)
    pipe = pipeline("image-deblurring", model=str(DEFAULT_MODEL), device="cpu")
    from_file = np.asarray(pipe(str(tmp_path / "b.jpg"), kernel=KERNEL)["image"])
    np.testing.assert_array_equal(from_file, np.asarray(deblur(tmp_path / "b.jpg", KERNEL).image))
    with Image.open(tmp_path / "b.jpg") as opened:
        np.testing.assert_array_equal(np.asarray(pipe(opened, kernel=KERNEL)["image"]), from_file)
        pixels = np.asarray(opened.convert("RGB"))
    # the same pixels as an array carry no format, but show the JPEG's 8×8 blocks: told the same level
    as_array = deblur(pixels, KERNEL)
    np.testing.assert_array_equal(np.asarray(as_array.image), from_file)
    np.testing.assert_array_equal(np.asarray(pipe(pixels, kernel=KERNEL)["image"]), from_file)
    assert as_array.noise_level == pytest.approx(JPEG_NOISE_LEVEL)
    assert any("shows a JPEG's 8×8 blocks" in note for note in as_array.notes)
    # cropped by half a block, the grid is not found: measured as they are, and the artefacts sharpened
    moved = pixels[4:, 4:]
    from_moved, moved_result = np.asarray(pipe(moved, kernel=KERNEL)["image"]), deblur(moved, KERNEL)
    np.testing.assert_array_equal(from_moved, np.asarray(moved_result.image))
    assert moved_result.noise_level < 1.0
    told = np.asarray(pipe(moved, kernel=KERNEL, noise_level=JPEG_NOISE_LEVEL)["image"])
    np.testing.assert_array_equal(told, np.asarray(deblur(moved, KERNEL, noise_level=JPEG_NOISE_LEVEL).image))
    assert np.abs(told.astype(int) - from_moved).max() > 0


def test_a_read_only_array_deblurs_without_a_warning():
    # np.asarray(PIL image) is read-only; torch warns (once per process, so in a fresh one) when it shares such memory
    code = (
        "import numpy as np, warnings; from PIL import Image; import bikanet_hf as bk;"
        "warnings.simplefilter('error', UserWarning);"
        "photo = np.asarray(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)));"
        "assert not photo.flags.writeable; bk.deblur(photo, bk.gaussian_kernel(1.5, 1.0, 0))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_images_as_users_have_them(tmp_path, sharp, blurred):
    rgba = np.dstack([blurred, np.tile(np.arange(128, dtype=np.uint8), (96, 1))])
    result = deblur(rgba, KERNEL)
    assert result.image.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(result.image)[..., 3], rgba[..., 3])

    gray = deblur(blurred[..., 0], KERNEL).image
    assert gray.mode == "RGB" and gray.size == (128, 96)
    wide = deblur((blurred.astype(np.uint16) * 257), KERNEL).image
    np.testing.assert_array_equal(np.asarray(wide), np.asarray(deblur(blurred, KERNEL).image))

    # A phone photo stored sideways with an EXIF orientation tag comes out upright.
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(blurred).save(path, exif=exif, quality=95)
    assert deblur(path, KERNEL).image.size == (96, 128)
    assert deblur(np.zeros((1, 1, 3), np.uint8), KERNEL).image.size == (1, 1)

    # A print-shop CMYK JPEG and a 16-bit greyscale PNG (a scanner's) come out as 8-bit RGB of the same size.
    Image.fromarray(blurred).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    cmyk = deblur(tmp_path / "cmyk.jpg", KERNEL).image
    assert cmyk.mode == "RGB" and cmyk.size == (128, 96)
    assert np.abs(np.asarray(cmyk, float) - np.asarray(deblur(blurred, KERNEL).image, float)).mean() < 8
    Image.fromarray(blurred[..., 1].astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    gray16 = deblur(tmp_path / "gray16.png", KERNEL).image
    np.testing.assert_array_equal(np.asarray(gray16), np.asarray(deblur(blurred[..., 1], KERNEL).image))
    # a dark 16-bit scan (every value under 256 of 65535) stays dark: it is not taken for 8-bit data
    Image.fromarray((blurred[..., 1] // 2).astype(np.uint16)).save(tmp_path / "dark16.png")
    assert np.asarray(read_image(tmp_path / "dark16.png")[0]).max() <= 1


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"not an image at all", "not an image"), (None, "corrupt or truncated")],
)
def test_bad_files_give_clear_errors(tmp_path, blurred, content, message):
    path = tmp_path / "bad.png"
    if content is None:
        Image.fromarray(blurred).save(path)
        content = path.read_bytes()[:300]  # truncated PNG
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        deblur(path, KERNEL)


def test_kernels_are_checked_and_fitted_to_the_model(blurred):
    with pytest.raises(ValueError, match="even size"):
        deblur(blurred, np.ones((4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        deblur(blurred, np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="positive sum"):
        deblur(blurred, -np.ones((3, 3)))
    with pytest.raises(ValueError, match="empty"):
        deblur(blurred, np.zeros((0, 0)))
    delta = np.zeros((17, 17))
    delta[8, 8] = 1
    np.testing.assert_array_equal(deblur(blurred[:48, :48], np.ones((1, 1))).kernel, delta)  # "no blur", 1×1
    np.testing.assert_array_equal(kernel_for_model(np.ones((1, 1, 1)), 17), delta)  # the pipeline's reading
    kernel, notes = prepare_kernel(2 * gaussian_kernel(1.0, 1.0, 0, size=5), size=17)
    assert kernel.shape == (17, 17) and kernel.sum() == pytest.approx(1) and "normalised" in notes[0]
    np.testing.assert_allclose(kernel[6:11, 6:11], gaussian_kernel(1.0, 1.0, 0, size=5))
    _, notes = prepare_kernel(gaussian_kernel(1.5, 1.5, 0, size=31), size=17)  # all its mass fits: no warning
    assert "0.0%" in notes[0]
    with pytest.warns(UserWarning, match="blur_type='motion'"):
        kernel, notes = prepare_kernel(np.ones((31, 31)), size=17)
    assert kernel.shape == (17, 17) and "69.9%" in notes[-1]  # 1 − 17²/31² ≈ 70% lost


def test_tiles_default_to_those_measured_for_each_mode(sharp, tiny_estimator):
    # one kernel: tiles only bound memory (512 px, overlapping by a quarter up to 64); a kernel per tile: the tiles
    # the per-tile benchmarks measured best, 384 px for camera shake and 256 px for the rest, overlapping by a quarter
    assert [varying_tiles(kind) for kind in ("motion", "gaussian", "defocus")] == [(384, 96), (256, 64), (256, 64)]
    sizes = ((384, True), (384, False), (128, False), (None, False))
    assert [tile_overlap_for(size, varying) for size, varying in sizes] == [96, 64, 32, 0]
    photo = degrade(np.tile(sharp, (4, 3, 1)), KERNEL)  # 384×384
    assert deblur(photo, estimator=tiny_estimator).num_tiles == 1
    per_tile = deblur(photo, estimator=tiny_estimator, spatially_varying=True)
    windows = modeling_bikanet.tile_windows(384, 384, 256, 64)
    assert per_tile.num_tiles == len(per_tile.tile_kernels) == len(windows) > 1
    for wrong in ("large", 0, -5, 2.5, True):
        with pytest.raises(ValueError, match=re.escape(f'None (one pass) or "auto", got {wrong!r}')):
            deblur(photo, estimator=tiny_estimator, tile_size=wrong)
    with pytest.raises(ValueError, match=re.escape("tile_overlap (-3) must be 0 or more and less than half")):
        deblur(photo, KERNEL, tile_size=64, tile_overlap=-3)


def test_only_tiles_given_a_disk_are_deblurred_with_context():
    # a lens's disk is undone from beyond a tile's overlap; camera shake, Gaussians and the sharp tiles' delta are
    # not (benchmarks/results/tile_context.md, motion_varying.md), so they save the time; one kernel: memory tiles
    tiles = np.stack([defocus_kernel(3.5), gaussian_kernel(2.0, 1.0, 30), delta_kernel(), defocus_kernel(1.5)])
    assert tile_context_for(64, tiles) == [32, 0, 0, 32]
    assert tile_context_for(64, defocus_kernel(3.5)) == 0
    # restore (and so deblur and the app) takes that rule unless told otherwise
    model, photo = load_model(DEFAULT_MODEL), np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    assert len(modeling_bikanet.tile_windows(48, 48, 32, 8)) == len(tiles)
    tiling = {"tile_size": 32, "tile_overlap": 8}
    by_rule = restore(model, photo, tiles, **tiling)[0]
    np.testing.assert_array_equal(by_rule, restore(model, photo, tiles, **tiling, tile_context=[4, 0, 0, 4])[0])
    assert (by_rule != restore(model, photo, tiles, **tiling, tile_context=0)[0]).any()


def test_blind_deblur_estimates_once_and_pipeline_gives_the_same_pixels(blurred, tiny_estimator):
    result = deblur(blurred, estimator=tiny_estimator, tile_size=64, tile_overlap=16)
    assert result.kernel_estimated and result.kernel.shape == (17, 17) and result.kernel.sum() == pytest.approx(1)
    assert result.seconds["estimate"] > 0 and result.num_tiles > 1

    pipe = pipeline("image-deblurring", model=str(DEFAULT_MODEL), estimator=str(tiny_estimator), device="cpu")
    out = pipe(blurred, tile_size=64, tile_overlap=16)
    np.testing.assert_array_equal(np.asarray(out["image"]), np.asarray(result.image))
    np.testing.assert_allclose(out["kernel"], result.kernel, atol=1e-6)

    known = pipe([blurred, blurred[:50]], kernel=KERNEL)  # a batch: one result per image, each its own size
    assert [o["image"].size for o in known] == [(128, 96), (128, 50)]
    np.testing.assert_array_equal(np.asarray(known[0]["image"]), np.asarray(deblur(blurred, KERNEL).image))


def test_model_argument_accepts_a_loaded_model_or_folder(blurred):
    model = load_model(DEFAULT_MODEL)
    assert load_model(str(DEFAULT_MODEL)) is model  # loaded once, cached
    a = deblur(blurred, KERNEL, model=model).image
    b = deblur(blurred, KERNEL, model=DEFAULT_MODEL, device="cpu").image
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_bundled_large_model_by_name(sharp, blurred):
    # The opt-in checkpoint, named as the CLI's --model and the app's BIKANET_MODEL name it: the bundled folder,
    # a bigger network than the default, and trained: it gains +6.0 dB here, where the same network untrained
    # (its Wiener front-end alone) gains +4.1.
    large = load_model("bikanet-large")
    assert large is load_model(LARGE_MODEL)
    assert large.num_parameters() > 2 * load_model(DEFAULT_MODEL).num_parameters()
    result = deblur(blurred, KERNEL, model="bikanet-large")
    assert psnr(sharp, np.asarray(result.image)) > psnr(sharp, blurred) + 5.0


def test_cli_deblur_folders_globs_failures(tmp_path, blurred, tiny_estimator, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(blurred).save(inputs / "a.png")
    Image.fromarray(blurred[:64, :64]).save(inputs / "b.jpg")
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "out"
    code = main(["deblur", str(inputs), str(tmp_path / "missing*.png"), "-o", str(out), "--sigma", "2.5", "1", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "broken.png" in err and "missing" in err and "2 of 4 inputs failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert Image.open(out / "a.png").size == (128, 96)

    # Blind, with the kernel saved; an existing output is not replaced without --force; inputs never.
    blind = ["deblur", str(inputs / "a.png"), "-o", str(out), "--estimator", str(tiny_estimator), "--save-kernel"]
    assert main(blind) == 1 and "already exists" in capsys.readouterr().err
    code = main([*blind, "--force"])
    assert code == 0 and "estimated kernel: σ_major" in capsys.readouterr().out
    assert np.load(out / "a_kernel.npy").shape == (17, 17) and (out / "a_kernel.png").is_file()
    single = np.asarray(Image.open(out / "a.png"))
    assert main([*blind, "--force", "--self-ensemble", "-q"]) == 0
    assert not np.array_equal(np.asarray(Image.open(out / "a.png")), single)  # the 8-way average
    assert main([*blind, "--force", "--spatially-varying", "--tile-size", "64"]) == 0
    report = capsys.readouterr()
    assert (
        "One kernel estimated per tile (6 tiles)" in report.err and "estimated kernels: one per tile (6)" in report.out
    )
    assert main(["deblur", str(inputs / "a.png"), "-o", str(out), "--sigma", "1", "--force", "--strength", "0"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out / "a.png")), blurred)
    assert main(["deblur", str(inputs / "a.png"), "-o", str(out), "--sigma", "1", "--force", "--strength", "2"]) != 0
    assert "--strength must be between 0 and 1, got 2" in capsys.readouterr().err
    assert main(["deblur", str(inputs / "a.png"), "-o", str(out), "--sigma", "1", "--tile-size", "-1"]) != 0
    assert "--tile-size is a number of pixels, or 0 for one pass; got -1" in capsys.readouterr().err
    assert main(["deblur", str(inputs / "a.png"), "-o", str(out), "--sigma", "1", "--spatially-varying"]) != 0
    assert "takes no --kernel" in capsys.readouterr().err
    before = (inputs / "a.png").read_bytes()
    assert main(["deblur", str(inputs / "a.png"), "-o", str(inputs), "--sigma", "1", "--force", "-q"]) == 1
    assert "input file" in capsys.readouterr().err and (inputs / "a.png").read_bytes() == before


def test_cli_estimate_kernel(tmp_path, blurred, tiny_estimator, capsys):
    path = tmp_path / "photo.png"
    Image.fromarray(blurred).save(path)
    assert main(["estimate-kernel", str(path), "--estimator", str(tiny_estimator), "-o", str(tmp_path / "k.npy")]) == 0
    assert "σ_major" in capsys.readouterr().out
    kernel = np.load(tmp_path / "k.npy")
    assert kernel.shape == (17, 17) and kernel.sum() == pytest.approx(1) and (tmp_path / "k.png").is_file()
    assert main(["estimate-kernel", str(tmp_path / "nope.png"), "--estimator", str(tiny_estimator)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_model_with_the_estimate_flag_is_told_when_the_kernel_is_estimated(tmp_path, blurred, tiny_estimator):
    """Blind (deblur, the pipeline) the model is told its kernel is an estimate; given a kernel, that it is known."""
    torch.manual_seed(0)
    config = BikanetConfig(hidden_size=8, block_hidden_size=8, num_blocks=1, kernel_estimate_input=True)
    model = BikanetForImageDeblurring(config)
    with torch.no_grad():
        model.tail.weight.normal_(0, 0.1)
    model.save_pretrained(tmp_path)
    blind = deblur(blurred, model=str(tmp_path), estimator=tiny_estimator)
    given = deblur(blurred, blind.kernel, model=str(tmp_path))
    assert blind.kernel_estimated and not given.kernel_estimated
    assert np.abs(np.asarray(blind.image, float) - np.asarray(given.image, float)).max() > 0
    pipe = pipeline(
        "image-deblurring", model=str(tmp_path), estimator=str(tiny_estimator), device="cpu", trust_remote_code=True
    )
    np.testing.assert_array_equal(np.asarray(pipe(blurred)["image"]), np.asarray(blind.image))
    np.testing.assert_array_equal(np.asarray(pipe(blurred, kernel=blind.kernel)["image"]), np.asarray(given.image))


def test_spatially_varying_deblur_gives_each_tile_its_own_kernel():
    # Blur that grows from left to right (σ 0.8 → 3 × 2 px): one kernel per tile follows it, and beats one kernel.
    photo = skdata.astronaut()[40:168, 100:356].copy()
    kernels = np.stack([gaussian_kernel(0.8, 0.8, 0), gaussian_kernel(3.0, 2.0, 0)])[None]  # 1×2 nodes
    blurred = spatially_varying_degrade(photo, kernels)
    options = {"tile_size": 128, "tile_overlap": 32}
    one = deblur(blurred, **options)
    stages = []
    per_tile = deblur(blurred, spatially_varying=True, **options, progress=lambda f, stage: stages.append(stage))
    assert "estimating the blur of each tile (3 of 3)" in stages and stages[-1].startswith("deblurring")
    assert one.tile_kernels is None and per_tile.num_tiles == 3 and per_tile.tile_kernels.shape == (3, 17, 17)
    widths = [kernel_spread(k)[0] for k in per_tile.tile_kernels]
    assert widths == sorted(widths) and widths[-1] > widths[0] + 0.2
    np.testing.assert_allclose(per_tile.tile_kernels.sum(axis=(1, 2)), 1.0)
    assert psnr(photo, np.asarray(per_tile.image)) > psnr(photo, np.asarray(one.image)) + 0.3
    assert any("per tile (3 tiles)" in note for note in per_tile.notes)
    # a tile with nothing to measure takes the whole image's kernel, and says so
    half_flat = blurred.copy()
    half_flat[:, :128] = 128
    result = deblur(half_flat, spatially_varying=True, **options)
    np.testing.assert_array_equal(result.tile_kernels[0], result.kernel)
    assert any("1 tile(s) too flat or small" in note for note in result.notes)
    with pytest.raises(ValueError, match="takes no kernel"):
        deblur(blurred, KERNEL, spatially_varying=True)


def test_tile_kernels_mix_a_traced_shake_with_the_photos(monkeypatch):
    # A shake traced from one tile is noisy: each tile's motion kernel is half its own and half the photo's; a
    # Gaussian estimate is used as it is. (The estimator is replaced by one that answers a kernel per tile position.)
    from bikanet_hf import deblurring

    own = {0: linear_motion_kernel(8, 0), 40: linear_motion_kernel(8, 90)}
    monkeypatch.setattr(deblurring, "estimate_kernel", lambda tile, **options: own[int(tile[0, 0, 0])])
    rgb = np.zeros((40, 80, 3), dtype=np.uint8)
    rgb[:, 40:] = 40
    windows = [(0, 40, 0, 40), (0, 40, 40, 80)]
    photo = linear_motion_kernel(8, 45)
    kernels, estimates, notes = deblurring.estimate_tile_kernels(rgb, windows, photo, blur_type="motion")
    np.testing.assert_allclose(kernels, [0.5 * own[0] + 0.5 * photo, 0.5 * own[40] + 0.5 * photo])
    assert "each 50% its own estimate and 50% the photo's" in notes[0]
    small = {0: gaussian_kernel(1.0, 1.0, 0), 40: gaussian_kernel(3.0, 1.0, 0)}
    monkeypatch.setattr(deblurring, "estimate_kernel", lambda tile, **options: small[int(tile[0, 0, 0])])
    kernels, estimates, notes = deblurring.estimate_tile_kernels(rgb, windows, gaussian_kernel(2.0, 2.0, 0))
    np.testing.assert_allclose(kernels, [small[0], small[40]])
    assert estimates.tolist() == [True, True]  # told to the model as estimates
    assert notes == ["One kernel estimated per tile (2 tiles)."]


def test_strength_tones_the_correction_down(blurred):
    full = np.asarray(deblur(blurred, KERNEL).image).astype(int)
    np.testing.assert_array_equal(np.asarray(deblur(blurred, KERNEL, strength=0.0).image), blurred)
    half = deblur(blurred, KERNEL, strength=0.5)
    assert np.abs(np.asarray(half.image).astype(int) - (blurred.astype(int) + full) / 2).max() <= 0.5
    assert "Applied at 50% strength." in half.notes
    with pytest.raises(ValueError, match="strength must be between 0 and 1, got 1.5"):
        deblur(blurred, KERNEL, strength=1.5)


def test_noise_level_is_measured_once_reported_and_can_be_given(tmp_path, sharp, blurred, capsys):
    """The default model reads the photo's noise level: deblur() measures it on the whole photo and reports it, or
    takes the user's (the pipeline and the CLI too); told the photo is clean, the model amplifies its noise."""
    noisy = degrade(sharp, KERNEL, noise_sigma=5.0, generator=torch.Generator().manual_seed(0))
    assert deblur(blurred, KERNEL).noise_level < 1.0
    measured = deblur(noisy, KERNEL)
    assert measured.noise_level == pytest.approx(5.0, rel=0.15)
    told_clean = deblur(noisy, KERNEL, noise_level=0)
    assert told_clean.noise_level == 0
    assert psnr(sharp, np.asarray(measured.image)) > psnr(sharp, np.asarray(told_clean.image)) + 1.0
    pipe = pipeline("image-deblurring", model=str(DEFAULT_MODEL), device="cpu")
    np.testing.assert_array_equal(np.asarray(pipe(noisy, kernel=KERNEL, noise_level=0)["image"]), told_clean.image)
    for bad in (-1, float("nan"), "loud", True):
        with pytest.raises(ValueError, match="noise σ in grey levels"):
            deblur(noisy, KERNEL, noise_level=bad)
    without_input = BikanetForImageDeblurring(BikanetConfig(hidden_size=4, block_hidden_size=8, num_blocks=1))
    with pytest.raises(ValueError, match="does not read a noise level"):
        deblur(noisy, KERNEL, model=without_input.eval(), noise_level=2)
    Image.fromarray(noisy).save(tmp_path / "noisy.png")
    command = ["deblur", str(tmp_path / "noisy.png"), "-o", str(tmp_path / "out"), "--sigma", "2.5", "1", "--angle"]
    assert main([*command, "30", "--noise-level", "0"]) == 0
    assert "noise σ 0.0 grey levels" in capsys.readouterr().out
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "noisy.png")), told_clean.image)
    assert main([*command, "30", "--noise-level", "-2", "--force"]) != 0
    assert "0 or more; got -2.0" in capsys.readouterr().err


@pytest.mark.parametrize("photo", [skdata.chelsea(), skdata.astronaut()[:256, 128:384]], ids=["chelsea", "astronaut"])
def test_a_sharp_photo_comes_back_nearly_unchanged(photo):
    # The bundled estimator answers a sharp photo with a near-delta kernel (before its fine-tuning on nearly sharp
    # photos it read 0.65-0.9 px of blur here, and the results were over-sharpened: 25.6 and 31.5 dB against
    # themselves); BIKAnet then hands the photo back almost as it was.
    with pytest.warns(SlightBlurWarning):
        result = deblur(np.ascontiguousarray(photo))
    assert result.kernel.max() > 0.7
    assert psnr(photo, np.asarray(result.image)) > 35
    # per tile, the photo's kernel only stands in for flat tiles: no warning about it, a note on the slight tiles
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlightBlurWarning)
        per_tile = deblur(np.ascontiguousarray(photo), spatially_varying=True, tile_size=128, tile_overlap=32)
    tiles = len(per_tile.tile_kernels)
    assert any(f"of {tiles} tiles show very little blur" in note for note in per_tile.notes)
