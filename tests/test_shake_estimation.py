import numpy as np
import pytest
from PIL import Image

import bikanet_hf
from bikanet_hf import kernels
from bikanet_hf.motion import levin_kernels
from bikanet_hf.shake_estimation import _centre, estimate_shake_kernel


@pytest.fixture(scope="module")
def shaken(data_dir):
    """set5's butterfly blurred with Levin et al.'s kernel 2 (a small loop), and that kernel centred."""
    image = np.asarray(Image.open(data_dir / "set5" / "butterfly.png").convert("RGB"))
    kernel = levin_kernels(data_dir)[2]
    return kernels.degrade(image, kernel), _centre(kernel, 31)


def test_edge_prediction_traces_the_shake(shaken):
    blurred, truth = shaken
    estimate = estimate_shake_kernel(blurred)
    assert estimate.shape == (31, 31) and estimate.min() >= 0 and estimate.sum() == pytest.approx(1.0)
    rows, cols = np.indices(estimate.shape)
    assert (estimate * rows).sum() == pytest.approx(15, abs=0.05) and (estimate * cols).sum() == pytest.approx(
        15, abs=0.05
    )
    delta = np.zeros_like(truth)
    delta[15, 15] = 1.0
    assert np.abs(delta - truth).sum() > 1.9  # not blurring at all is almost as far off as can be …
    assert np.abs(estimate - truth).sum() < 0.8  # … the traced path is close (measured: 0.31)
    np.testing.assert_array_equal(estimate_shake_kernel(blurred), estimate)  # deterministic
    # float input in [0, 1] gives the same kernel as 8-bit input
    np.testing.assert_allclose(estimate_shake_kernel(blurred / 255.0), estimate, atol=1e-9)


def test_an_image_without_edges_gets_no_blur(rng):
    flat = np.full((80, 90, 3), 128, dtype=np.uint8)
    impulse = np.zeros((31, 31))
    impulse[15, 15] = 1.0
    np.testing.assert_array_equal(estimate_shake_kernel(flat), impulse)
    noise = rng.integers(0, 256, (72, 80, 3), dtype=np.uint8)
    kernel = estimate_shake_kernel(noise)
    assert np.isfinite(kernel).all() and kernel.sum() == pytest.approx(1.0)


def test_edge_prediction_refuses_what_it_cannot_do(rng):
    with pytest.raises(ValueError, match="at least 62 pixels"):
        estimate_shake_kernel(rng.integers(0, 256, (61, 100, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="odd"):
        estimate_shake_kernel(rng.integers(0, 256, (100, 100, 3), dtype=np.uint8), kernel_size=30)


def test_estimate_kernel_routes_the_methods_by_blur_type(shaken):
    blurred, _ = shaken
    # edges is the default for camera shake (the same kernel, up to float32 rounding of the image)
    default = bikanet_hf.estimate_kernel(blurred, blur_type="motion")
    assert np.abs(default - estimate_shake_kernel(blurred)).sum() < 0.1
    assert bikanet_hf.estimate_kernel(blurred, "amortized", blur_type="motion").shape == (31, 31)
    assert bikanet_hf.estimate_kernel(blurred).shape == (17, 17)
    with pytest.raises(ValueError, match="does not estimate gaussian blur"):
        bikanet_hf.estimate_kernel(blurred, "edges")
    with pytest.raises(ValueError, match="does not estimate motion blur"):
        bikanet_hf.estimate_kernel(blurred, "gan", blur_type="motion")
