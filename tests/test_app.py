"""The Gradio app (``app.py``): its helpers directly, then every endpoint through ``gradio_client`` against a server
on loopback. Tiny random BIKAnets stand in for the shipped checkpoints (``BIKANET_MODEL``,
``BIKANET_MOTION_MODEL``)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import os
import re
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bikanet_hf import (
    BikanetConfig,
    BikanetForImageDeblurring,
    BikanetImageProcessor,
    BikanetKernelEstimator,
    BikanetKernelEstimatorConfig,
    kernels,
    spatially_varying_degrade,
)
from bikanet_hf.estimation import DEFAULT_ESTIMATOR, KNOWN_BLUR_OFFSET_FLOOR
from bikanet_hf.image_io import load_rgb

REPO_ROOT = Path(__file__).resolve().parents[1]
# gradio 6.31 calls pandas APIs that pandas 3 deprecates, in its queue; not this app's concern.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")
MAX_PIXELS_IN_TESTS = 300_000  # above every bundled example (≤ 512×512), so a 600×600 upload is refused


# ---------------------------------------------------------------------------------------------------------------
# Helpers shared with test_app_browser.py
# ---------------------------------------------------------------------------------------------------------------
def load_app(tmp_root: Path):
    """Import ``app`` with tiny random models and kernel estimator, gradio's temp files under ``tmp_root``
    and a small pixel limit.

    The app reads its settings at import, so they are set first; a second call returns the module already loaded.
    Gradio's own variables stay set for the session: gradio reads GRADIO_TEMP_DIR again at launch and per request.
    """
    if "app" in sys.modules:
        return sys.modules["app"]
    model_dir = tmp_root / "tiny-bikanet"
    config = BikanetConfig(  # reads the noise level, as the shipped model does
        hidden_size=4,
        block_hidden_size=8,
        num_blocks=1,
        mapping_hidden_size=8,
        mapping_num_layers=1,
        noise_level_input=True,
    )
    BikanetForImageDeblurring(config).save_pretrained(model_dir)
    BikanetImageProcessor().save_pretrained(model_dir)
    motion_dir = tmp_root / "tiny-bikanet-motion"
    motion_config = BikanetConfig(
        hidden_size=4, block_hidden_size=8, num_blocks=1, kernel_size=31, kernel_conditioning="motion_flow"
    )
    BikanetForImageDeblurring(motion_config).save_pretrained(motion_dir)
    BikanetImageProcessor().save_pretrained(motion_dir)
    motion_estimator = BikanetKernelEstimatorConfig(
        head_hidden_size=8, head_layers=1, kernel_family="motion", kernel_size=31, sigma_max=8.0
    )
    BikanetKernelEstimator(motion_estimator).save_pretrained(motion_dir / "kernel_estimator")
    estimator_dir = tmp_root / "tiny-estimator"
    BikanetKernelEstimator(BikanetKernelEstimatorConfig(head_hidden_size=8, head_layers=1)).save_pretrained(
        estimator_dir
    )
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("GRADIO_TEMP_DIR", str(tmp_root / "gradio"))
    with pytest.MonkeyPatch.context() as mp:  # only while importing: the rest of the suite keeps its environment
        mp.setenv("BIKANET_MODEL", str(model_dir))
        mp.setenv("BIKANET_MOTION_MODEL", str(motion_dir))
        mp.setenv("BIKANET_ESTIMATOR", str(estimator_dir))
        mp.setenv("BIKANET_MAX_PIXELS", str(MAX_PIXELS_IN_TESTS))
        mp.syspath_prepend(str(REPO_ROOT))
        app = importlib.import_module("app")
    app.OUTPUT_ROOT = tmp_root / "outputs"  # downloads go to the test's folder, not the system temp folder
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(tmp_root: Path):
    """Launch the app's ``demo`` on a free loopback port in a background thread; yields ``(app module, url)``."""
    app = load_app(tmp_root)
    _, url, _ = app.demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, **app.LAUNCH_OPTIONS
    )
    try:
        yield app, url
    finally:
        app.demo.close()


def write_photo(path: Path, height: int = 48, width: int = 64, seed: int = 0) -> Path:
    """A small smooth colour picture (random blobs), saved as PNG."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC).save(path)
    return path


# ---------------------------------------------------------------------------------------------------------------
# Pure functions, no server
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return load_app(tmp_path_factory.mktemp("app"))


def error_message(excinfo) -> str:
    return excinfo.value.message


def test_kernel_from_sliders_is_the_library_gaussian(app):
    kernel, text = app.kernel_from_sliders(3.0, 1.0, 45)
    np.testing.assert_allclose(kernel, kernels.gaussian_kernel(3.0, 1.0, 45.0))
    assert kernel.shape == (17, 17)
    assert text == "Gaussian, σ 3 × 1 px at 45°"
    assert app.kernel_from_sliders(2.0, 2.0, 30)[1] == "Gaussian, σ 2 px (round)"


def test_kernel_from_sliders_swaps_a_larger_minor_width(app):
    kernel, text = app.kernel_from_sliders(1.0, 3.0, 45)
    np.testing.assert_allclose(kernel, kernels.gaussian_kernel(3.0, 1.0, 45.0))
    assert "σ 3 × 1" in text


@pytest.mark.parametrize(
    ("major", "minor", "angle", "expected"),
    [(5.0, 1.0, 0, "σ major must be between 0.6 and 4.0"), (2.0, 0.1, 0, "σ minor must be between 0.6 and 4.0"),
     (2.0, 1.0, 200, "angle must be between 0 and 180"), ("wide", 1.0, 0, "must be numbers")],
)  # fmt: skip
def test_kernel_from_sliders_refuses_values_out_of_range(app, major, minor, angle, expected):
    with pytest.raises(app.gr.Error) as excinfo:
        app.kernel_from_sliders(major, minor, angle)
    assert expected in error_message(excinfo)


@pytest.mark.parametrize(
    ("make_kernel", "model_name", "frame"),
    [
        (lambda data: kernels.gaussian_kernel(1.2, 0.8, 30.0, size=7), "MODEL", 17),
        (lambda data: kernels.load_kernels(data / "kernels" / "Levin09.mat")[3], "MOTION_MODEL", 31),  # 27×27 shake
    ],
)
def test_kernel_files_go_to_the_model_that_fits_centred_in_its_frame(app, data_dir, tmp_path, make_kernel, model_name,
                                                                     frame):  # fmt: skip
    given = make_kernel(data_dir)
    np.save(tmp_path / "k.npy", given)
    kernel, text = app.kernel_from_file(str(tmp_path / "k.npy"))
    assert text == f"{given.shape[0]}×{given.shape[1]} kernel from k.npy"
    model, framed = app.model_for(kernel)
    assert model is getattr(app, model_name) and framed.shape == (frame, frame)
    margin = (frame - given.shape[0]) // 2
    np.testing.assert_allclose(framed[margin:-margin, margin:-margin], given / given.sum())


def test_motion_sliders_make_a_straight_motion_and_refuse_bad_values(app):
    kernel, text = app.kernel_from_motion(12, 30)
    assert kernel.shape == (31, 31) and text == "straight motion, 12 px at 30°"
    assert app.model_for(kernel)[0] is app.MOTION_MODEL
    for length, angle, expected in ((0.5, 0, "between 1 and 25 pixels"), (10, 200, "between 0 and 180"),
                                    ("long", 0, "must be numbers")):  # fmt: skip
        with pytest.raises(app.gr.Error) as excinfo:
            app.kernel_from_motion(length, angle)
        assert expected in error_message(excinfo)


def test_kernel_file_accepts_an_uploaded_file_dict(app, tmp_path):
    np.save(tmp_path / "abc123.npy", kernels.gaussian_kernel(2.0, 2.0, 0.0))
    upload = {"path": str(tmp_path / "abc123.npy"), "orig_name": "my kernel.npy", "meta": {"_type": "gradio.FileData"}}
    kernel, text = app.kernel_from_file(upload)
    np.testing.assert_allclose(kernel, kernels.gaussian_kernel(2.0, 2.0, 0.0))
    assert text == "17×17 kernel from my kernel.npy"


def test_kernel_larger_than_31_is_refused_with_the_reason(app, tmp_path):
    np.save(tmp_path / "big.npy", kernels.gaussian_kernel(4.0, 4.0, 0.0, size=33))
    with pytest.raises(app.gr.Error) as excinfo:
        app.kernel_from_file(str(tmp_path / "big.npy"))
    message = error_message(excinfo)
    assert "33×33" in message and "up to 31×31" in message and "25 px" in message


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.npy", b"not numpy at all", "Could not use “bad.npy” as a blur kernel"),
        ("even.npy", None, "even size 4×4"),
        ("bad.mat", b"MATLAB 5.0 MAT-file garbage", "“bad.mat”"),
        ("bad.png", b"\x89PNG\r\n\x1a\n truncated", "Could not use “bad.png” as a blur kernel"),
    ],
)
def test_bad_kernel_files_give_a_sentence_without_server_paths(app, tmp_path, name, content, expected):
    path = tmp_path / name
    if content is None:
        np.save(path, np.ones((4, 4)))
    else:
        path.write_bytes(content)
    with pytest.raises(app.gr.Error) as excinfo:
        app.kernel_from_file(str(path))
    message = error_message(excinfo)
    assert expected in message
    assert str(tmp_path) not in message


def test_choose_kernel_needs_a_file_when_the_file_source_is_chosen(app):
    with pytest.raises(app.gr.Error) as excinfo:
        app.choose_kernel(app.KERNEL_FROM_FILE, 2.0, 2.0, 0, None)
    assert "Please upload a kernel file" in error_message(excinfo)
    with pytest.raises(app.gr.Error):
        app.choose_kernel("blind", 2.0, 2.0, 0, None)  # no blind mode yet: an unknown source is refused


def test_read_photo_accepts_paths_and_uploads_and_makes_rgb(app, tmp_path):
    Image.fromarray(np.full((20, 30), 128, dtype=np.uint8), mode="L").save(tmp_path / "grey.png")
    rgb, stem = app.read_photo(str(tmp_path / "grey.png"))
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8 and stem == "grey"
    _, stem = app.read_photo({"path": str(tmp_path / "grey.png"), "orig_name": "My Holiday (1).png"})
    assert stem == "My_Holiday_1"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.write_bytes(b""), "the file is empty"),
        (lambda p: p.write_text("hello, not a picture"), "not an image file"),
        (lambda p: p.write_bytes(write_photo(p, 64, 64).read_bytes()[:300]), "corrupt or truncated"),
        (lambda p: write_photo(p, 8, 40), "only 40×8 pixels"),
        (lambda p: write_photo(p, 600, 600), "600×600 pixels (0.4 megapixels); this demo handles up to 0.3"),
    ],
    ids=["empty", "not-an-image", "truncated", "tiny", "too-large"],
)
def test_read_photo_errors_are_sentences(app, tmp_path, make, expected):
    path = tmp_path / "upload.png"
    make(path)
    with pytest.raises(app.gr.Error) as excinfo:
        app.read_photo({"path": str(path), "orig_name": "holiday.png"})
    message = error_message(excinfo)
    assert expected in message and "“holiday.png”" in message
    assert str(tmp_path) not in message
    with pytest.raises(app.gr.Error, match="Please upload a blurred photo first"):
        app.read_photo(None, "blurred photo")


def test_file_names_in_errors_are_escaped(app, tmp_path):
    (tmp_path / "x.png").write_text("nope")
    with pytest.raises(app.gr.Error) as excinfo:
        app.read_photo({"path": str(tmp_path / "x.png"), "orig_name": "<img src=x onerror=alert(1)>.png"})
    assert "<img" not in error_message(excinfo) and "&lt;img" in error_message(excinfo)


def test_deblur_keeps_size_and_returns_8_bit(app, tmp_path):
    photo = np.asarray(Image.open(write_photo(tmp_path / "p.png", 33, 47)))
    restored, _, _ = app.deblur(photo, kernels.gaussian_kernel(2.0, 1.0, 30.0))
    assert restored.shape == (33, 47, 3) and restored.dtype == np.uint8


def test_blind_estimate_says_when_the_photo_may_be_sharp_already(app, data_dir, monkeypatch):
    monkeypatch.setattr(app, "ESTIMATOR", DEFAULT_ESTIMATOR)  # the trained estimator: the tiny one reads noise
    sharp = load_rgb(data_dir / "set14" / "baboon.png")
    _, text, _ = app.estimate(sharp)
    assert "very little blur" in text
    _, text, _ = app.estimate(kernels.degrade(sharp, kernels.gaussian_kernel(2.0, 1.5, 30.0)))
    assert text.startswith("estimated, σ_major") and "very little blur" not in text
    # per tile, the whole photo's kernel only stands in for flat tiles: the tiles that show little blur are counted
    _, text, _ = app.estimate(sharp, per_tile=True)
    assert "very little blur" not in text
    _, _, _, text = app.estimate_per_tile(sharp, app.estimate(sharp)[0], app.BLUR_SOFT)
    assert "tiles show very little blur" in text


def test_handlers_return_slider_pair_kernel_picture_report_and_download(app, tmp_path):
    photo = write_photo(tmp_path / "my photo.png")
    pair, picture, report, download = app.run_known_kernel(str(photo), app.KERNEL_FROM_SLIDERS, 2.0, 1.0, 30, None)
    assert pair[0].shape == pair[1].shape == (48, 64, 3)
    assert picture.size[0] > 100
    assert "Deblurred in" in report and "σ 2 × 1 px at 30°" in report
    assert "noise: σ ≈ " in report and "grey levels, measured" in report  # the default model reads it
    assert Path(download).name == "my_photo_deblurred.png"
    np.testing.assert_array_equal(np.asarray(Image.open(download)), pair[1])

    true_kernel = app.kernel_from_sliders(2, 1, 30)[0]
    for deblur_with in (app.DEBLUR_TRUE, app.DEBLUR_BLIND):
        pair, picture, report, _ = app.run_sharp_photo(
            str(photo), app.KERNEL_FROM_SLIDERS, 2.0, 1.0, 30, None, deblur_with
        )
        np.testing.assert_array_equal(pair[0], kernels.degrade(np.array(Image.open(photo)), true_kernel))
        assert "| Blurred |" in report and "| Restored |" in report and "**Gain:" in report
    # Blind: the estimated kernel is shown beside the true one, and the report gives its error.
    assert picture.size[0] > 2 * picture.size[1] * 0.9 and "error Σ|k̂ − k| = " in report

    pair, picture, report, download = app.run_blind(str(photo))
    assert pair[1].shape == (48, 64, 3) and "kernel: estimated, σ_major" in report
    assert Path(download).name == "my_photo_deblurred.png"
    with pytest.raises(app.gr.Error, match="at least 64×64"):
        app.run_blind(str(photo), app.ESTIMATE_REFINE, 50)
    steps = []
    larger = write_photo(tmp_path / "larger.png", 72, 80)
    _, _, report, _ = app.run_blind(str(larger), app.ESTIMATE_REFINE, 50, progress=lambda f, desc: steps.append(desc))
    assert "estimated by KernelGAN refine" in report and "KernelGAN, step 50 of 50" in steps


def test_noise_level_can_be_set_instead_of_measured(app, tmp_path, monkeypatch):
    given = []  # noise levels (grey levels) the model's deblur_tiled receives; under autocast it calls itself
    deblur_tiled = app.MODEL.deblur_tiled

    def spy(*args, noise_level=None, **kwargs):
        given.append(float(noise_level) * 255)
        return deblur_tiled(*args, noise_level=noise_level, **kwargs)

    monkeypatch.setattr(app.MODEL, "deblur_tiled", spy)
    photo = write_photo(tmp_path / "p.png")
    rgb, kernel = np.asarray(Image.open(photo)), kernels.gaussian_kernel(2.0, 1.0, 30.0)
    measured_result, measured, _ = app.deblur(rgb, kernel)
    same_result, same, _ = app.deblur(rgb, kernel, noise_level=measured)  # setting what it measured changes nothing
    assert same == pytest.approx(measured, abs=1e-4) and given == pytest.approx([measured] * len(given), abs=1e-4)
    np.testing.assert_allclose(same_result.astype(int), measured_result.astype(int), atol=1)

    pair, _, report, _ = app.run_known_kernel(
        str(photo), app.KERNEL_FROM_SLIDERS, 2.0, 1.0, 30, None, noise_level=15.0
    )
    assert given[-1] == pytest.approx(15.0) and "noise: σ = 15.0 grey levels, as you set it" in report
    _, _, report, _ = app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT, False, 100, 0)
    assert given[-1] == 0 and "noise: σ = 0.0 grey levels, as you set it" in report
    _, _, report, _ = app.run_known_kernel(str(photo), app.KERNEL_FROM_MOTION, 2.0, 2.0, 45, None, 9, noise_level=3.0)
    assert "noise level not used: the camera-shake model does not read one" in report
    _, _, report, _ = app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT, False, 100, " 2,5 ")
    assert given[-1] == pytest.approx(2.5) and "σ = 2.5 grey levels, as you set it" in report  # typed in the box
    _, _, report, _ = app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT, False, 100, "")
    assert "grey levels, measured" in report  # the box left empty
    for bad in (-1, 25, "nan", "grainy"):
        with pytest.raises(app.gr.Error, match="from 0 to 20"):
            app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT, False, 100, bad)


def test_defocus_disk_from_the_slider_runs_through_the_main_model(app, tmp_path):
    kernel, text = app.kernel_from_defocus(3.5)
    np.testing.assert_allclose(kernel, kernels.defocus_kernel(3.5))
    assert text == "defocus disk, radius 3.5 px" and app.model_for(kernel)[0] is app.MODEL  # not camera shake
    for bad in (0.5, 9, "wide"):
        with pytest.raises(app.gr.Error, match="defocus radius"):
            app.kernel_from_defocus(bad)
    photo = write_photo(tmp_path / "soft.png")
    pair, picture, report, _ = app.run_known_kernel(
        str(photo), app.KERNEL_FROM_DEFOCUS, 2.0, 2.0, 0, None, defocus_radius=3.5
    )
    assert pair[1].shape == (48, 64, 3) and "kernel: defocus disk, radius 3.5 px" in report
    _, _, report, _ = app.run_sharp_photo(
        str(photo), app.KERNEL_FROM_DEFOCUS, 2.0, 2.0, 0, None, app.DEBLUR_TRUE, defocus_radius=2.0
    )
    assert "true kernel: defocus disk, radius 2 px" in report
    assert app.kernel_preview(app.KERNEL_FROM_DEFOCUS, 2.0, 2.0, 0, None, 10.0, 5.0).size[0] > 100


def test_blind_soft_blur_detects_a_lens_out_of_focus(app, tmp_path):
    sharp = load_rgb(app.EXAMPLES_DIR / "chelsea_sharp.png")
    photo = tmp_path / "out_of_focus.png"
    Image.fromarray(kernels.degrade(sharp, kernels.defocus_kernel(3.5))).save(photo)
    _, picture, report, _ = app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT)
    assert "a lens out of focus: a disk of radius ≈ 3.5 px" in report and "(detected" in report
    _, _, report, _ = app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_DEFOCUS)
    assert "disk of radius ≈ 3.5 px" in report and "(detected" not in report  # asked for, not detected
    partly = load_rgb(app.EXAMPLES_DIR / "chelsea_sharp.png")
    partly[:, :300] = kernels.degrade(partly, kernels.defocus_kernel(3.5))[:, :300]  # the right third in focus
    _, text, _ = app.estimate(partly)
    assert "of its tiles show a lens out of focus" in text and "tick “blur changes across the photo”" in text
    assert "of its tiles show" not in app.estimate(partly, per_tile=True)[1]
    # 451×300: a lens's disk per tile takes 256-px tiles (2×3), not 384-px ones (1×2, which split it where its focus
    # does not change)
    _, _, report, _ = app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT, True)
    assert "2×3 tiles of 256 px" in report
    assert "a defocus disk measured per tile (6 tiles): found in 6 (radius 3.5 px), every one" in report
    assert "out of focus" not in report  # the whole photo's kernel is a Gaussian estimate (for flat tiles)
    _, _, report, _ = app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_DEFOCUS, True)
    assert "a defocus disk measured per tile (6 tiles): found in 6 (radius 3.5 px), every one" in report
    # the photo partly in focus, as the hint suggests: its 256-px tiles tell the parts apart (with the shipped model,
    # one kernel 28.8 dB, per 384-px tile 29.0, per 256-px tile 31.7; these tests run a tiny random model)
    Image.fromarray(partly).save(tmp_path / "partly.png")
    _, _, report, _ = app.run_blind(str(tmp_path / "partly.png"), app.ESTIMATE_FAST, 300, app.BLUR_SOFT, True)
    found = re.search(
        r"2×3 tiles of 256 px.*per tile \(6 tiles\): found in (\d) \(radius 3\.5 px\); the others", report
    )
    assert found and 0 < int(found.group(1)) < 6
    with pytest.raises(app.gr.Error, match="use the fast estimator for a photo out of focus"):
        app.run_blind(str(photo), app.ESTIMATE_REFINE, 50, app.BLUR_DEFOCUS)
    with pytest.raises(app.gr.Error, match="at least 64×64 pixels"):
        app.run_blind(str(write_photo(tmp_path / "small.png")), app.ESTIMATE_FAST, 300, app.BLUR_DEFOCUS)
    _, _, report, _ = app.run_sharp_photo(
        str(app.EXAMPLES_DIR / "chelsea_sharp.png"),
        app.KERNEL_FROM_DEFOCUS,
        2.0,
        2.0,
        0,
        None,
        app.DEBLUR_BLIND,
        defocus_radius=5.0,
    )
    assert "a lens out of focus: a disk of radius ≈ 5.0 px" in report


def test_a_jpeg_upload_is_told_the_jpeg_noise_level(app, tmp_path):
    photo = tmp_path / "soft.jpg"
    Image.open(write_photo(tmp_path / "soft.png", 64, 64)).save(photo, quality=90)
    _, _, report, _ = app.run_known_kernel(str(photo), app.KERNEL_FROM_SLIDERS, 2.0, 1.0, 30, None)
    assert "σ = 2.0 grey levels, raised for a JPEG" in report
    _, _, report, _ = app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT, False, 100, 0.5)
    assert "σ = 0.5 grey levels, as you set it" in report  # a level the person sets wins


def test_the_jpeg_check_is_asked_only_when_the_model_would_be_told_its_floor(app, tmp_path):
    rgb, asked = np.asarray(Image.open(write_photo(tmp_path / "p.png"))), []

    def shows_jpeg():
        asked.append(True)
        return True

    soft, shake = kernels.gaussian_kernel(2.0, 1.0, 30.0), app.kernel_from_motion(9, 30)[0]
    _, level, jpeg = app.deblur(rgb, soft, shows_jpeg=shows_jpeg)
    assert len(asked) == 1 and jpeg and level >= app.JPEG_NOISE_LEVEL - 1e-3
    _, level, jpeg = app.deblur(rgb, soft, noise_level=0.5, shows_jpeg=shows_jpeg)
    assert len(asked) == 1 and not jpeg and level == pytest.approx(0.5, abs=1e-3)  # a level set: not asked
    _, level, jpeg = app.deblur(rgb, shake, shows_jpeg=shows_jpeg)
    assert len(asked) == 1 and not jpeg and level is None  # the camera-shake model reads no noise level


def test_a_png_of_a_jpeg_s_pixels_is_told_the_jpeg_noise_level_and_a_lossless_one_is_not(app, tmp_path):
    from skimage import data as skdata

    from bikanet_hf.corpus import degrade
    from bikanet_hf.image_io import jpeg_roundtrip
    from bikanet_hf.kernels import gaussian_kernel

    blurred = degrade(skdata.astronaut()[:128, 200:328], gaussian_kernel(2.0, 1.2, 30.0))
    Image.fromarray(blurred).save(tmp_path / "lossless.png")
    Image.fromarray(jpeg_roundtrip(blurred, 90)).save(tmp_path / "was_jpeg.png")
    reports = [
        app.run_known_kernel(str(tmp_path / name), app.KERNEL_FROM_SLIDERS, 2.0, 1.2, 30, None)[2]
        for name in ("lossless.png", "was_jpeg.png")
    ]
    assert "grey levels, measured" in reports[0] and "σ = 2.0 grey levels, raised for a JPEG" in reports[1]


def test_camera_shake_runs_through_the_motion_model(app, tmp_path):
    photo = write_photo(tmp_path / "shaky.png")
    pair, picture, report, _ = app.run_known_kernel(
        str(photo), app.KERNEL_FROM_MOTION, 2.0, 2.0, 45, None, motion_length=9
    )
    assert pair[1].shape == (48, 64, 3) and "straight motion, 9 px at 45°" in report
    with pytest.raises(app.gr.Error, match="at least 62×62 pixels"):
        app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SHAKE)
    larger = write_photo(tmp_path / "larger.png", 72, 80)
    _, _, report, _ = app.run_blind(str(larger), app.ESTIMATE_FAST, 300, app.BLUR_SHAKE)
    assert "kernel: estimated camera shake, spread like a" in report and "noise:" not in report  # motion model
    with pytest.raises(app.gr.Error, match="KernelGAN estimates Gaussian-like blur only"):
        app.run_blind(str(photo), app.ESTIMATE_REFINE, 50, app.BLUR_SHAKE)
    _, picture, report, _ = app.run_sharp_photo(
        str(larger), app.KERNEL_FROM_MOTION, 2.0, 2.0, 0, None, app.DEBLUR_BLIND, motion_length=11
    )
    assert "estimated camera shake" in report and "error Σ|k̂ − k| = " in report


def test_blur_that_changes_across_the_photo_gets_a_kernel_per_tile(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.VARYING_TILE_SIZE, "gaussian", 32)  # soft blur's tiles (overlapping by a quarter)
    sharp = np.asarray(Image.open(write_photo(tmp_path / "sharp.png", 48, 64)))
    kernels_ = np.stack([kernels.gaussian_kernel(0.8, 0.8, 0), kernels.gaussian_kernel(3.0, 2.0, 0)])[None]
    photo = tmp_path / "varying.png"
    Image.fromarray(spatially_varying_degrade(sharp, kernels_)).save(photo)
    stages = []
    pair, picture, report, _ = app.run_blind(
        str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT, True, progress=lambda f, desc: stages.append(desc)
    )
    assert pair[1].shape == (48, 64, 3) and "one kernel per tile (2×3 tiles of 32 px" in report
    assert "Estimating the blur of each tile (6 of 6)" in stages
    assert "whole photo: estimated, σ_major" in report
    assert picture.size[0] > picture.size[1] > 100  # a 2×3 grid of kernel pictures
    one_kernel = app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT)[0][1]
    assert not np.array_equal(pair[1], one_kernel)
    with pytest.raises(app.gr.Error, match="uses the fast estimator"):
        app.run_blind(str(photo), app.ESTIMATE_REFINE, 50, app.BLUR_SOFT, True)
    # the strength slider keeps part of the correction: none at 0 %
    pair, _, report, _ = app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT, False, 0)
    np.testing.assert_array_equal(pair[1], pair[0])
    assert "deblurred at 0% strength in" in report
    with pytest.raises(app.gr.Error, match="percentage from 0 to 100"):
        app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT, False, 150)
    # a lens's disk (soft blur, out of focus) and camera shake take the tiles bikanet_hf.deblur takes by default
    monkeypatch.setitem(app.VARYING_TILE_SIZE, "gaussian", 64)
    _, _, report, _ = app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT, True)
    assert "fits in one 64-px tile, so one kernel was used" in report
    assert [app.varying_tiles(blur) for blur in (app.BLUR_SOFT, app.BLUR_DEFOCUS, app.BLUR_SHAKE)] == [
        (64, 16),
        (256, 64),
        (384, 96),
    ]


def test_a_surely_blurred_photo_is_estimated_with_the_offset_floor(app, tmp_path, monkeypatch):
    floors = []  # the deblur_offset_floor of the estimator each estimate was made with

    def spy(function):
        def recorded(*args, estimator=None, **kwargs):
            floors.append(estimator.config.deblur_offset_floor)
            return function(*args, estimator=estimator, **kwargs)

        return recorded

    monkeypatch.setattr(app, "estimate_kernel", spy(app.estimate_kernel))
    monkeypatch.setattr(app, "estimate_tile_kernels", spy(app.estimate_tile_kernels))
    photo = write_photo(tmp_path / "p.png")
    _, _, report, _ = app.run_blind(str(photo))
    assert floors == [0.0] and "surely blurred" not in report
    _, _, report, _ = app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT, False, 100, None, True)
    assert floors[-1] == KNOWN_BLUR_OFFSET_FLOOR and "the photo is surely blurred" in report
    app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SOFT, True, 100, None, True)  # and a kernel per tile
    assert floors[-2:] == [KNOWN_BLUR_OFFSET_FLOOR] * 2
    assert app.ESTIMATOR.config.deblur_offset_floor == 0.0  # the default estimator is left as it was
    with pytest.raises(app.gr.Error, match="Surely blurred"):
        app.run_blind(str(photo), app.ESTIMATE_FAST, 300, app.BLUR_SHAKE, False, 100, None, True)


def test_large_photos_are_deblurred_in_tiles_with_progress(app, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "TILE_SIZE", 32)
    monkeypatch.setattr(app, "TILE_OVERLAP", 8)
    photo = np.asarray(Image.open(write_photo(tmp_path / "p.png", 70, 90)))
    calls = []
    restored, _, _ = app.deblur(photo, kernels.gaussian_kernel(2.0, 1.0, 30.0), lambda f, desc: calls.append(desc))
    assert restored.shape == (70, 90, 3) and calls[-1] == "Deblurring, tile 12 of 12"


def test_metrics_table_reports_gain(app):
    sharp = np.zeros((16, 16, 3), dtype=np.uint8)
    sharp[4:12, 4:12] = 200
    blurred = kernels.degrade(sharp, kernels.gaussian_kernel(2.0, 2.0, 0.0))
    table = app.metrics_table(sharp, blurred, sharp)
    assert "| Restored | ∞ |" in table and "**Gain: —**" in table


def test_missing_checkpoint_is_a_clear_start_up_error(app, tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere"))):
        app.load_model(tmp_path / "nowhere")


def test_bundled_examples_are_small_and_match_their_kernels(app):
    for name, params in app.EXAMPLE_KERNELS.items():
        path = app.EXAMPLES_DIR / name
        assert path.stat().st_size < 300_000, name
        with Image.open(path) as im:
            assert max(im.size) <= 512, name
        assert params in kernels.BANK16_PARAMS, name
    # The sharp example blurred with the blurred example's kernel is exactly the blurred example.
    sharp = np.array(Image.open(app.EXAMPLES_DIR / "chelsea_sharp.png").convert("RGB"))
    blurred = np.asarray(Image.open(app.EXAMPLES_DIR / "chelsea_blurred.png").convert("RGB"))
    np.testing.assert_array_equal(
        kernels.degrade(sharp, kernels.gaussian_kernel(*app.EXAMPLE_KERNELS["chelsea_blurred.png"])), blurred
    )


# ---------------------------------------------------------------------------------------------------------------
# Through the server, as an API user
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from gradio_client import Client

    tmp_root = tmp_path_factory.mktemp("server")
    with serve_app(tmp_root) as (app, url):
        yield Client(url, verbose=False, download_files=str(tmp_root / "downloads"))


def _deblur_outputs_ok(result, size: tuple[int, int], stem: str) -> str:
    (before, after), picture, report, download = result
    for path in (before, after):
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size == size
    with Image.open(picture) as im:
        assert im.size[0] > 100
    assert Path(download).name == f"{stem}_deblurred.png"
    with Image.open(download) as im:
        assert im.size == size
    return report


@pytest.mark.slow
def test_server_known_kernel_from_sliders(client, tmp_path):
    from gradio_client import handle_file

    photo = write_photo(tmp_path / "street.png", 40, 56)
    result = client.predict(
        handle_file(photo), "Gaussian (sliders)", 2.5, 1.0, 30, None, api_name="/deblur_known_kernel"
    )
    report = _deblur_outputs_ok(result, (56, 40), "street")
    assert "Deblurred in" in report and "σ 2.5 × 1 px at 30°" in report
    result = client.predict(
        handle_file(photo), "Straight motion (sliders)", 2.0, 2.0, 30, None, 12, api_name="/deblur_known_kernel"
    )
    assert "straight motion, 12 px at 30°" in _deblur_outputs_ok(result, (56, 40), "street")
    result = client.predict(handle_file(photo), api_name="/deblur_blind")  # the kind of blur defaults to soft blur
    assert "kernel: estimated, σ_major" in _deblur_outputs_ok(result, (56, 40), "street")


@pytest.mark.slow
def test_server_known_kernel_from_a_npy_file(client, tmp_path):
    from gradio_client import handle_file

    photo = write_photo(tmp_path / "leaf.png")
    np.save(tmp_path / "k9.npy", kernels.gaussian_kernel(1.5, 1.0, 60.0, size=9))
    result = client.predict(
        handle_file(photo),
        "Kernel file",
        2.0,
        2.0,
        0,
        handle_file(tmp_path / "k9.npy"),
        api_name="/deblur_known_kernel",
    )
    report = _deblur_outputs_ok(result, (64, 48), "leaf")
    assert "9×9 kernel from k9.npy" in report


@pytest.mark.slow
def test_server_sharp_photo_reports_finite_psnr_and_ssim(client, tmp_path):
    from gradio_client import handle_file

    photo = write_photo(tmp_path / "sharp.png", 48, 48, seed=3)
    result = client.predict(
        handle_file(photo), "Gaussian (sliders)", 3.0, 3.0, 0, None, "True kernel", api_name="/try_on_sharp_photo"
    )
    report = _deblur_outputs_ok(result, (48, 48), "sharp")
    rows = dict(re.findall(r"\| (Blurred|Restored) \| ([^|]+\|[^|]+)\|", report))
    assert set(rows) == {"Blurred", "Restored"}
    for cells in rows.values():
        psnr, ssim = (float(c) for c in cells.split("|"))
        assert math.isfinite(psnr) and 0 < psnr < 100 and -1 <= ssim <= 1
    assert re.search(r"\*\*Gain: [+-]\d+\.\d\d dB\*\*", report)


@pytest.mark.slow
def test_server_runs_a_bundled_example(client):
    from gradio_client import handle_file

    app = sys.modules["app"]
    name, (major, minor, angle) = next(iter(app.EXAMPLE_KERNELS.items()))
    result = client.predict(
        handle_file(app.EXAMPLES_DIR / name),
        "Gaussian (sliders)",
        major,
        minor,
        angle,
        None,
        api_name="/deblur_known_kernel",
    )
    with Image.open(app.EXAMPLES_DIR / name) as im:
        size = im.size
    _deblur_outputs_ok(result, size, Path(name).stem)


@pytest.mark.slow
def test_server_blind_mode_estimates_then_deblurs(client):
    from gradio_client import handle_file

    app = sys.modules["app"]
    name = next(iter(app.EXAMPLE_KERNELS))
    result = client.predict(handle_file(app.EXAMPLES_DIR / name), api_name="/deblur_blind")
    with Image.open(app.EXAMPLES_DIR / name) as im:
        size = im.size
    assert "kernel: estimated, σ_major" in _deblur_outputs_ok(result, size, Path(name).stem)


@pytest.mark.slow
def test_server_kernel_preview(client):
    picture = client.predict("Gaussian (sliders)", 3.0, 1.0, 45, None, api_name="/known_kernel_preview")
    with Image.open(picture) as im:
        assert im.size[0] > 100


@pytest.mark.slow
def test_server_corrupt_upload_gives_the_sentence_then_keeps_working(client, tmp_path):
    from gradio_client import handle_file

    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a picture")
    with pytest.raises(Exception, match="Could not read “broken.png” as a picture") as excinfo:
        client.predict(handle_file(corrupt), "Gaussian (sliders)", 2.0, 2.0, 0, None, api_name="/deblur_known_kernel")
    assert "Traceback" not in str(excinfo.value)
    big = write_photo(tmp_path / "big.png", 600, 600)
    with pytest.raises(Exception, match="this demo handles up to 0.3 megapixels"):
        client.predict(handle_file(big), api_name="/deblur_blind")
    with pytest.raises(Exception, match="up to 31×31"):
        np.save(tmp_path / "k33.npy", kernels.gaussian_kernel(2.0, 2.0, 0.0, size=33))
        client.predict(
            handle_file(write_photo(tmp_path / "ok.png")), "Kernel file", 2.0, 2.0, 0,
            handle_file(tmp_path / "k33.npy"), api_name="/deblur_known_kernel",
        )  # fmt: skip
    good = write_photo(tmp_path / "good.png")
    result = client.predict(
        handle_file(good), "Gaussian (sliders)", 2.0, 2.0, 0, None, api_name="/deblur_known_kernel"
    )
    _deblur_outputs_ok(result, (64, 48), "good")


# ---------------------------------------------------------------------------------------------------------------
# The Space folder
# ---------------------------------------------------------------------------------------------------------------
def load_space_build():
    spec = importlib.util.spec_from_file_location("space_build", REPO_ROOT / "space" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_space_card_header_is_valid():
    import gradio
    import yaml

    text = (REPO_ROOT / "space" / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    card = yaml.safe_load(text.split("---\n")[1])
    assert card["sdk"] == "gradio" and card["sdk_version"] == gradio.__version__ and card["app_file"] == "app.py"
    assert card["license"] == "other" and len(card["short_description"]) <= 60
    assert {"image-deblurring", "image-restoration", "computer-vision"} <= set(card["tags"])
    lines = (REPO_ROOT / "space" / "requirements.txt").read_text().splitlines()
    requirements = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert f"gradio=={gradio.__version__}" in requirements
    assert not any("bikanet" in r.replace("_", "-").lower() for r in requirements), (
        "the package is copied, not installed"
    )


def test_space_build_assembles_a_deployable_folder(tmp_path):
    build = load_space_build()
    files = {str(p) for p in build.build(tmp_path / "space", allow_missing_checkpoint=True, model_id="me/bikanet")}
    assert {"README.md", "requirements.txt", "app.py", "bikanet_hf/__init__.py", "bikanet_hf/kernels.py"} <= files
    assert {"bikanet_hf/examples/coffee_blurred.png", "bikanet_hf/examples/README.md"} <= files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    assert "bikanet_hf/checkpoints/bikanet/config.json" in files  # the app's checkpoints travel; the opt-in one not
    assert not any(f.startswith("bikanet_hf/checkpoints/bikanet-large") for f in files)
    assert (tmp_path / "space" / "app.py").read_bytes() == (REPO_ROOT / "app.py").read_bytes()
    import yaml

    card = yaml.safe_load((tmp_path / "space" / "README.md").read_text(encoding="utf-8").split("---\n")[1])
    assert card["models"] == ["me/bikanet"] and card["sdk"] == "gradio"
    with pytest.raises(FileExistsError):
        build.build(tmp_path / "space", allow_missing_checkpoint=True)
    with pytest.raises(ValueError, match="overwrite the repository"):
        build.build(REPO_ROOT, overwrite=True, allow_missing_checkpoint=True)
