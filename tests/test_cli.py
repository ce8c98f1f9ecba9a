import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from bikanet_hf.cli import main
from bikanet_hf.kernels import degrade, gaussian_kernel


@pytest.fixture
def photo(tmp_path, rng):
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(path)
    return path


def test_blur_command_matches_protocol(photo, tmp_path):
    out = tmp_path / "out" / "blurred.png"
    assert main(["blur", str(photo), "-o", str(out), "--sigma", "2.5", "1.0", "--angle", "30"]) == 0
    expected = degrade(np.asarray(Image.open(photo)), gaussian_kernel(2.5, 1.0, 30))
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)


def test_blur_refuses_to_overwrite(photo, tmp_path, capsys):
    assert main(["blur", str(photo), "-o", str(photo), "--sigma", "1"]) == 2
    assert "input file" in capsys.readouterr().err
    out = tmp_path / "b.png"
    out.write_bytes(b"keep me")
    assert main(["blur", str(photo), "-o", str(out), "--sigma", "1"]) == 2
    assert out.read_bytes() == b"keep me"
    assert main(["blur", str(photo), "-o", str(out), "--sigma", "1", "--force"]) == 0


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    assert main(["blur", str(bad), "-o", str(tmp_path / "x.png"), "--sigma", "1"]) == 2
    err = capsys.readouterr().err
    assert "bad.jpg" in err and "Traceback" not in err
    np.save(tmp_path / "even.npy", np.ones((4, 4)))
    assert main(["kernel", "--kernel", str(tmp_path / "even.npy"), "-o", str(tmp_path / "k.png")]) == 2
    assert "even size" in capsys.readouterr().err


def test_kernel_command_writes_picture_and_array(tmp_path):
    assert main(["kernel", "--sigma", "4", "1.5", "--angle", "60", "-o", str(tmp_path / "k.png")]) == 0
    assert Image.open(tmp_path / "k.png").size == (255, 255)
    assert main(["kernel", "--sigma", "2", "-o", str(tmp_path / "k.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "k.npy"), gaussian_kernel(2, 2, 0))


def test_console_script_help_runs():
    result = subprocess.run(
        [sys.executable, "-m", "bikanet_hf.cli", "blur", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "PROTOCOL" in result.stdout


def test_defocus_kernel_on_the_command_line(photo, tmp_path, capsys):
    from bikanet_hf.kernels import defocus_kernel

    assert main(["kernel", "--defocus", "3.5", "-o", str(tmp_path / "d.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "d.npy"), defocus_kernel(3.5))
    out = tmp_path / "out"
    args = ["deblur", str(photo), "-o", str(out), "--defocus", "3.5", "--blur-type", "auto", "--save-kernel", "-q"]
    assert main(args) == 0
    assert np.load(out / f"{photo.stem}_kernel.npy").shape == (17, 17)  # auto kept a disk on the main model
    capsys.readouterr()
    assert main(["kernel", "--defocus", "12", "-o", str(tmp_path / "x.npy")]) != 0
    assert "defocus radius" in capsys.readouterr().err


def test_motion_kernels_and_blur_type_on_the_command_line(photo, tmp_path, capsys):
    from bikanet_hf.motion import linear_motion_kernel

    assert main(["kernel", "--motion", "9", "--angle", "20", "-o", str(tmp_path / "m.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "m.npy"), linear_motion_kernel(9, 20))
    blurred = tmp_path / "shaky.png"
    assert main(["blur", str(photo), "-o", str(blurred), "--kernel", str(tmp_path / "m.npy")]) == 0
    out = tmp_path / "out"
    args = ["deblur", str(blurred), "-o", str(out), "--kernel", str(tmp_path / "m.npy"), "--blur-type", "auto"]
    assert main([*args, "--save-kernel"]) == 0
    assert np.load(out / "shaky_kernel.npy").shape == (31, 31)  # auto chose the motion model for a motion kernel
    motion_args = ["--blur-type", "motion", "--method", "amortized"]  # the photo is too small to trace a path
    assert main(["deblur", str(blurred), "-o", str(out), *motion_args, "--force", "-q"]) == 0
    assert main(["estimate-kernel", str(blurred), *motion_args, "-o", str(tmp_path / "e.npy")]) == 0
    assert np.load(tmp_path / "e.npy").shape == (31, 31)
    capsys.readouterr()
    assert main(["estimate-kernel", str(blurred), "--blur-type", "motion", "--method", "gan"]) == 2
    assert "does not estimate motion blur" in capsys.readouterr().err


def test_blind_defocus_on_the_command_line(tmp_path, capsys):
    from pathlib import Path

    from bikanet_hf.kernels import defocus_kernel, defocus_radius

    sharp = Path(__file__).resolve().parents[1] / "bikanet_hf" / "examples" / "chelsea_sharp.png"
    blurred = tmp_path / "soft.png"
    Image.fromarray(degrade(np.asarray(Image.open(sharp).convert("RGB")), defocus_kernel(4.0))).save(blurred)
    assert main(["estimate-kernel", str(blurred), "--blur-type", "defocus", "-o", str(tmp_path / "k.npy")]) == 0
    assert "defocus disk of radius ≈ 4.0 px" in capsys.readouterr().out
    assert defocus_radius(np.load(tmp_path / "k.npy")) == pytest.approx(4.0, rel=0.03)
    out = tmp_path / "out"
    assert main(["deblur", str(blurred), "-o", str(out), "--blur-type", "auto", "--save-kernel"]) == 0
    assert "lens out of focus: a disk of radius ≈ 4.0 px" in capsys.readouterr().err  # the note, per photo
    np.testing.assert_allclose(np.load(out / "soft_kernel.npy"), np.load(tmp_path / "k.npy"))


def test_known_blurred_narrows_mild_blur_less(tmp_path, capsys):
    from pathlib import Path

    from bikanet_hf.estimation import load_estimator

    sharp = Path(__file__).resolve().parents[1] / "bikanet_hf" / "examples" / "chelsea_sharp.png"
    blurred = tmp_path / "mild.png"
    Image.fromarray(degrade(np.asarray(Image.open(sharp).convert("RGB")), gaussian_kernel(0.6, 0.6, 0.0))).save(
        blurred
    )
    kernels = {}
    for flags in ([], ["--known-blurred"]):
        out = tmp_path / f"out{len(flags)}"
        assert main(["deblur", str(blurred), "-o", str(out), "--blur-type", "gaussian", "--save-kernel", *flags]) == 0
        kernels[len(flags)] = np.load(out / "mild_kernel.npy")
    # the same estimate, narrowed less: a lower peak, the same sum
    assert kernels[1].max() < kernels[0].max() - 0.01
    np.testing.assert_allclose(kernels[1].sum(), 1.0, rtol=1e-6)
    assert load_estimator().config.deblur_offset_floor == 0.0  # the shared default is left as it was
    capsys.readouterr()
    assert main(["deblur", str(blurred), "-o", str(tmp_path / "k"), "--sigma", "1", "--known-blurred"]) == 2
    assert "--known-blurred is for blind Gaussian deblurring" in capsys.readouterr().err
