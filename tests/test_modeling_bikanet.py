import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from bikanet_hf import BikanetConfig, BikanetForImageDeblurring, BikanetImageProcessor
from bikanet_hf.kernels import bank16, blur, gaussian_kernel
from bikanet_hf.modeling_bikanet import (
    JPEG_BLOCKINESS_THRESHOLD,
    NOISE_LEVEL_UNIT,
    add_pixel_shuffled,
    estimate_noise_level,
    jpeg_blockiness,
    shows_jpeg_blocks,
    tile_windows,
    wiener_deconvolution,
)
from tests.conftest import REPO_ROOT

TINY = dict(hidden_size=8, block_hidden_size=16, num_blocks=2, mapping_hidden_size=16, mapping_num_layers=1)


def tiny_model(**overrides) -> BikanetForImageDeblurring:
    torch.manual_seed(0)
    model = BikanetForImageDeblurring(BikanetConfig(**(TINY | overrides))).eval()
    # Zero-initialised parts would hide whether the kernel reaches the blocks: give them random values.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "heads" in name or "residual_scale" in name or "tail" in name:
                p.normal_(0, 0.1)
    return model


def smooth_image(h=48, w=40, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.mark.parametrize("size", [(48, 40), (37, 51), (9, 12), (1, 1)])
def test_forward_any_size_returns_input_size_in_unit_range(size):
    model = tiny_model()
    x = torch.rand(2, 3, *size)
    k = torch.from_numpy(bank16()[[3, 9]]).float()
    out = model(pixel_values=x, kernel=k, labels=x)
    assert out.reconstruction.shape == x.shape
    assert out.reconstruction.min() >= 0 and out.reconstruction.max() <= 1
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    out.loss.backward()


def test_kernel_shape_is_checked():
    model = tiny_model()
    with pytest.raises(ValueError, match="17×17"):
        model(pixel_values=torch.rand(1, 3, 16, 16), kernel=torch.rand(1, 15, 15))
    with pytest.raises(ValueError, match="one"):
        model(pixel_values=torch.rand(2, 3, 16, 16), kernel=torch.rand(1, 17, 17))


def test_wiener_front_end_undoes_blur():
    x = smooth_image(64, 64)
    k = torch.from_numpy(gaussian_kernel(2.0, 1.0, 0.0)).float()[None]
    y = blur(x.double(), k.double()).float()
    restored = wiener_deconvolution(y, k, [1e-5])
    assert restored.shape == x.shape
    assert (restored - x).abs().mean() < 0.05 * (y - x).abs().mean()
    # A rotated kernel is not mirror-symmetric, so the mirror extension is exact only away from the borders.
    k30 = torch.from_numpy(gaussian_kernel(2.0, 1.0, 30.0)).float()[None]
    y30 = blur(x.double(), k30.double()).float()
    inner = (slice(None), slice(None), slice(16, -16), slice(16, -16))
    assert (wiener_deconvolution(y30, k30, [1e-5]) - x)[inner].abs().mean() < 0.05 * (y30 - x)[inner].abs().mean()
    two = wiener_deconvolution(y, k, [1e-5, 1e-1])
    assert two.shape == (1, 6, 64, 64)
    torch.testing.assert_close(two[:, :3], restored)


def test_wiener_with_a_margin_matches_the_mirror_extension_inside():
    x = smooth_image(64, 52)
    k = torch.from_numpy(gaussian_kernel(2.0, 1.0, 30.0)).float()[None]
    y = blur(x.double(), k.double()).float()
    whole, margin = wiener_deconvolution(y, k, [1e-3]), wiener_deconvolution(y, k, [1e-3], margin=17)
    assert margin.shape == whole.shape
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    torch.testing.assert_close(margin[inner], whole[inner], atol=2e-3, rtol=0)
    # per-channel balances: a larger one smooths more
    per_channel = wiener_deconvolution(y, k, torch.tensor([[1e-4, 1e-4, 1e-1]]), margin=17)
    assert per_channel.shape == y.shape
    torch.testing.assert_close(per_channel[:, :2], wiener_deconvolution(y, k, [1e-4], margin=17)[:, :2])
    assert (per_channel[:, 2] - x[:, 2]).abs().mean() > (per_channel[:, 1] - x[:, 1]).abs().mean()


def test_feature_wiener_channels_learn_their_features_and_balances():
    model = tiny_model(wiener_feature_channels=4)
    assert model.head.in_channels == tiny_model().head.in_channels + 4
    with torch.no_grad():  # the head's new inputs start at zero only when grown from a checkpoint
        model.head.weight.normal_(0, 0.1)
    x = smooth_image(24, 20)
    k = torch.from_numpy(bank16()[[5]]).float()
    model(x, k, labels=x).loss.backward()
    branch = model.feature_wiener
    assert branch.log_balances.grad.abs().min() > 0 and branch.features[0].weight.grad.abs().sum() > 0
    assert model(torch.rand(1, 3, 1, 1), k).reconstruction.shape == (1, 3, 1, 1)
    with pytest.raises(ValueError, match="wiener_feature_channels"):
        BikanetConfig(wiener_feature_channels=-1)


def test_kernel_reaches_the_blocks_only_with_kernel_adaptation():
    x = torch.rand(1, 3, 32, 32)
    k1, k2 = (torch.from_numpy(bank16()[[i]]).float() for i in (0, 15))
    adaptive = tiny_model(use_wiener_prior=False)
    assert not torch.allclose(adaptive(x, k1).reconstruction, adaptive(x, k2).reconstruction)
    plain = tiny_model(use_wiener_prior=False, use_kernel_adaptation=False)
    assert plain.mapping is None
    torch.testing.assert_close(plain(x, k1).reconstruction, plain(x, k2).reconstruction)


def test_long_term_skip_switch():
    with_skip, without = tiny_model(), tiny_model(use_long_term_skip=False)
    assert with_skip.long_term_skip is not None and without.long_term_skip is None
    assert sum(p.numel() for p in without.parameters()) < sum(p.numel() for p in with_skip.parameters())


def test_untrained_model_starts_at_the_wiener_estimate():
    model = BikanetForImageDeblurring(BikanetConfig(**TINY)).eval()  # zero-initialised residual scales
    x = smooth_image()
    k = torch.from_numpy(gaussian_kernel(1.6, 1.6, 0)).float()[None]
    expected = wiener_deconvolution(x, k, model.config.wiener_balances[:1]).clamp(0, 1)
    torch.testing.assert_close(model(x, k).reconstruction, expected, atol=1e-3, rtol=0)


def test_save_and_load_round_trip(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path)
    BikanetImageProcessor().save_pretrained(tmp_path)
    loaded = BikanetForImageDeblurring.from_pretrained(tmp_path).eval()
    assert (tmp_path / "model.safetensors").exists()
    x, k = torch.rand(1, 3, 20, 24), torch.from_numpy(bank16()[[5]]).float()
    torch.testing.assert_close(model(x, k).reconstruction, loaded(x, k).reconstruction)
    assert BikanetImageProcessor.from_pretrained(tmp_path).rescale_factor == pytest.approx(1 / 255)


def test_loading_into_more_blocks_keeps_the_function(tmp_path):
    """How a later session grows the shipped model (``--init_from`` with ``--num_blocks``): the added blocks start as
    the identity, so training continues from what the checkpoint computed."""
    model = tiny_model()
    model.save_pretrained(tmp_path)
    deeper = BikanetConfig(**(TINY | {"num_blocks": 3}))
    grown = BikanetForImageDeblurring.from_pretrained(tmp_path, config=deeper, ignore_mismatched_sizes=True).eval()
    assert len(grown.blocks) == 3
    x, k = torch.rand(1, 3, 20, 24), torch.from_numpy(bank16()[[5]]).float()
    torch.testing.assert_close(model(x, k).reconstruction, grown(x, k).reconstruction)


def test_for_inference_uses_channels_last_on_cpu_and_keeps_the_output():
    model = tiny_model()
    x, k = smooth_image(), torch.from_numpy(bank16()[[4]]).float()
    expected = model(x, k).reconstruction
    model.train()
    assert model.for_inference() is model and not model.training
    assert model.head.weight.is_contiguous(memory_format=torch.channels_last)
    assert not model.head.weight.is_contiguous()
    torch.testing.assert_close(model(x, k).reconstruction, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels_last", [False, True])
def test_add_pixel_shuffled_is_the_sum_with_a_pixel_shuffle(channels_last):
    g = torch.Generator().manual_seed(0)
    hidden, values = torch.randn(2, 3, 10, 14, generator=g), torch.randn(2, 12, 5, 7, generator=g)
    if channels_last:
        hidden, values = (t.contiguous(memory_format=torch.channels_last) for t in (hidden, values))
    out = add_pixel_shuffled(hidden, values)
    torch.testing.assert_close(out, hidden + torch.nn.functional.pixel_shuffle(values, 2), atol=0, rtol=0)
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_block_scales_its_decoder_by_the_residual_scale_and_shuffles_it_to_full_size():
    block = tiny_model().blocks[0]
    hidden = torch.rand(1, 8, 12, 16)
    expected = hidden + block.residual_scale * torch.nn.functional.pixel_shuffle(
        block.decoder(block.encoder(hidden)), 2
    )
    torch.testing.assert_close(block(hidden, None, None), expected)
    hidden.requires_grad_(True)
    block(hidden, None, None).sum().backward()
    assert block.residual_scale.grad.abs().sum() > 0 and block.decoder[-1].weight.grad.abs().sum() > 0


def test_bf16_autocast_on_cpu():
    model = tiny_model()
    x, k = torch.rand(1, 3, 32, 32), torch.from_numpy(bank16()[[2]]).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, k).reconstruction
    torch.testing.assert_close(out.float(), model(x, k).reconstruction, atol=0.05, rtol=0)


def test_return_dict_false_gives_tuple():
    model = tiny_model()
    x, k = torch.rand(1, 3, 16, 16), torch.from_numpy(bank16()[[1]]).float()
    (rec,) = model(x, k, return_dict=False)
    assert rec.shape == x.shape


def test_image_processor_inputs_and_round_trip():
    proc = BikanetImageProcessor()
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    rgba = Image.fromarray(np.dstack([rgb, np.full((20, 30), 7, np.uint8)]), "RGBA")
    gray = Image.fromarray(rgb[..., 0], "L")
    batch = proc([rgb, rgba, gray, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255])
    assert batch["pixel_values"].shape == (4, 3, 20, 30) and batch["pixel_values"].dtype == torch.float32
    torch.testing.assert_close(batch["pixel_values"][0], batch["pixel_values"][1])
    torch.testing.assert_close(batch["pixel_values"][0], batch["pixel_values"][3])
    assert torch.equal(batch["pixel_values"][2][0], batch["pixel_values"][2][2])
    images = proc.postprocess(batch["pixel_values"], batch["original_sizes"])
    np.testing.assert_array_equal(np.asarray(images[0]), rgb)


def test_image_processor_pads_mixed_sizes_and_crops_back():
    proc = BikanetImageProcessor()
    a = np.zeros((10, 12, 3), np.uint8)
    b = np.full((14, 9, 3), 200, np.uint8)
    batch = proc([a, b])
    assert batch["pixel_values"].shape == (2, 3, 14, 12)
    out = proc.postprocess(batch["pixel_values"], batch["original_sizes"])
    assert [im.size for im in out] == [(12, 10), (9, 14)]
    np.testing.assert_array_equal(np.asarray(out[1]), b)
    with pytest.raises(ValueError, match="H×W"):
        proc(np.zeros((2, 2, 2, 2)))


def test_kernel_estimate_input_flag():
    """``kernel_estimate_input`` adds one input channel: 1 for a blind estimate, 0 for a known kernel; per image in a
    batch; models without it deblur the same whatever the flag."""
    model = tiny_model(kernel_estimate_input=True)
    assert model.head.in_channels == tiny_model().head.in_channels + 1
    x, k = torch.rand(2, 3, 20, 24), torch.from_numpy(bank16()[[5, 9]]).float()
    known, estimate = model(x, k).reconstruction, model(x, k, kernel_is_estimate=True).reconstruction
    assert (known - estimate).abs().max() > 1e-4
    mixed = model(x, k, kernel_is_estimate=torch.tensor([0.0, 1.0])).reconstruction
    torch.testing.assert_close(mixed, torch.cat([known[:1], estimate[1:]]))
    tiled = model.deblur_tiled(x, k, tile_size=16, tile_overlap=4, kernel_is_estimate=True)
    assert (tiled - model.deblur_tiled(x, k, tile_size=16, tile_overlap=4)).abs().max() > 1e-4
    plain = tiny_model()
    torch.testing.assert_close(plain(x, k).reconstruction, plain(x, k, kernel_is_estimate=True).reconstruction)


@pytest.mark.parametrize("new_inputs", [{"kernel_estimate_input": True}, {"wiener_feature_channels": 4}])
def test_adding_inputs_to_a_pretrained_model_keeps_its_function(tmp_path, new_inputs):
    """How the estimate flag or the feature-space Wiener channels are added to a shipped model (``train_bikanet.py
    --init_from … --kernel_estimate_input true`` or ``--wiener_feature_channels 16``): the head keeps its pretrained
    input channels and the new ones start at zero."""
    spec = importlib.util.spec_from_file_location("train_bikanet", REPO_ROOT / "train" / "train_bikanet.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    model = tiny_model()
    model.save_pretrained(tmp_path)
    config = BikanetConfig(**(TINY | new_inputs))
    flagged = BikanetForImageDeblurring.from_pretrained(tmp_path, config=config, ignore_mismatched_sizes=True).eval()
    x, k = torch.rand(1, 3, 20, 24), torch.from_numpy(bank16()[[5]]).float()
    assert (model(x, k).reconstruction - flagged(x, k).reconstruction).abs().max() > 1e-3  # head re-initialised
    script.keep_input_channels(flagged, str(tmp_path))
    for flag in (False, True):
        torch.testing.assert_close(model(x, k).reconstruction, flagged(x, k, kernel_is_estimate=flag).reconstruction)


@pytest.mark.parametrize("sigma", [1.0, 2.55, 5.0, 10.0])
def test_estimate_noise_level_reads_white_noise_through_blur_and_8_bits(sigma):
    """σ of white noise added to a blurred photo-like image (smooth shapes and fine texture), then rounded to 8 bits:
    read within 10%; the same image without noise reads well under one grey level."""
    g = torch.Generator().manual_seed(1)
    shapes = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 6, generator=g), size=(128, 96), mode="bicubic")
    blurred = blur(shapes + 0.05 * torch.rand(1, 3, 128, 96, generator=g), bank16()[7])
    noisy = ((blurred + torch.randn(blurred.shape, generator=g) * sigma / 255) * 255).round().clamp(0, 255) / 255
    clean = (blurred * 255).round() / 255
    assert abs(estimate_noise_level(noisy).item() * 255 - sigma) < 0.1 * sigma
    assert estimate_noise_level(clean).item() * 255 < 0.6
    assert estimate_noise_level(torch.rand(2, 3, 1, 5)).tolist() == [0.0, 0.0]  # too small to measure


def test_estimate_noise_level_does_not_read_fine_texture_as_noise():
    """A sharp image mostly fine texture (as foliage or an engraving's hatching) with a smooth quarter, 8-bit: the
    texture is not read as noise (the median of the diagonal details over the whole image, the earlier estimate, read
    it as 8 grey levels), and white noise added to it is still read within 10%."""
    g = torch.Generator().manual_seed(2)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 2, generator=g), size=(128, 32), mode="bicubic")
    texture = 0.35 + 0.3 * torch.rand(1, 3, 128, 96, generator=g)
    sharp = torch.cat([smooth.clamp(0, 1), texture], dim=-1)
    clean = (sharp * 255).round() / 255
    noisy = ((sharp + torch.randn(sharp.shape, generator=g) * 5 / 255) * 255).round().clamp(0, 255) / 255
    assert estimate_noise_level(clean).item() * 255 < 1.0
    assert abs(estimate_noise_level(noisy).item() * 255 - 5) < 0.5


def test_a_jpeg_s_blocks_show_in_its_pixels_and_upscaling_or_blur_does_not_fake_them():
    """A blurred photo (256×256, 8-bit) saved as JPEG q90 shows its 8×8 block edges; lossless, upscaled 2× (bicubic or
    nearest), or JPEG'd then cropped by half a block, it does not; images under 16×16 read 1."""
    from skimage import data as skdata

    from bikanet_hf.image_io import jpeg_roundtrip, to_tensor

    photo = skdata.astronaut()[:256, 200:456]
    blurred = (blur(to_tensor(photo)[None], gaussian_kernel(2.0, 1.2, 30.0)) * 255).round().clamp(0, 255)
    rgb = blurred[0].permute(1, 2, 0).to(torch.uint8).numpy()
    jpeg = jpeg_roundtrip(rgb, 90)
    images = [rgb, jpeg, jpeg[4:, 4:], np.asarray(Image.fromarray(rgb).resize((512, 512), Image.Resampling.BICUBIC))]
    images.append(rgb.repeat(2, axis=0).repeat(2, axis=1))
    flagged = [bool(shows_jpeg_blocks(to_tensor(np.ascontiguousarray(image))[None])[0]) for image in images]
    assert flagged == [False, True, False, False, False]
    readings = [jpeg_blockiness(to_tensor(np.ascontiguousarray(image))[None]).item() for image in images[:2]]
    assert readings[0] < JPEG_BLOCKINESS_THRESHOLD < readings[1]
    assert jpeg_blockiness(torch.rand(2, 3, 15, 40)).tolist() == [1.0, 1.0]


def test_noise_level_input_channel():
    """``noise_level_input`` adds one input channel that the model fills itself with the image's measured noise level
    (in units of ``NOISE_LEVEL_UNIT``), per image of a batch."""
    model = tiny_model(noise_level_input=True)
    assert model.head.in_channels == tiny_model().head.in_channels + 1
    seen = []
    model.head.register_forward_pre_hook(lambda module, args: seen.append(args[0][:, -1]))
    g = torch.Generator().manual_seed(0)
    clean = (smooth_image(32, 40) * 255).round() / 255
    noisy = ((clean + torch.randn(clean.shape, generator=g) * 10 / 255) * 255).round().clamp(0, 255) / 255
    x, k = torch.cat([clean, noisy]), torch.from_numpy(bank16()[[3, 3]]).float()
    model(x, k)
    levels = estimate_noise_level(x) / NOISE_LEVEL_UNIT
    assert levels[1] > levels[0] + 0.5
    torch.testing.assert_close(seen[0], levels[:, None, None].expand_as(seen[0]))


def test_deblur_tiled_measures_the_noise_level_once_for_all_tiles():
    """Tiles of one image are all given the whole image's noise level (not each its own), or the one passed in."""
    model = tiny_model(noise_level_input=True)
    seen = []
    model.head.register_forward_pre_hook(lambda module, args: seen.append(args[0][0, -1, 0, 0].item()))
    x = torch.cat([smooth_image(48, 24), torch.rand(1, 3, 48, 24)], dim=-1)  # a smooth half and a rough half
    k = torch.from_numpy(gaussian_kernel(1.5, 1.0, 20)).float()[None]
    model.deblur_tiled(x, k, tile_size=24, tile_overlap=8)
    assert len(seen) == len(tile_windows(48, 48, 24, 8)) and max(seen) - min(seen) < 1e-6
    assert seen[0] == pytest.approx(estimate_noise_level(x).item() / NOISE_LEVEL_UNIT, rel=1e-5)
    seen.clear()
    model.deblur_tiled(x, k, tile_size=24, tile_overlap=8, noise_level=2 * NOISE_LEVEL_UNIT)
    assert seen == pytest.approx([2.0] * len(tile_windows(48, 48, 24, 8)))


def test_deblur_tiled_takes_one_kernel_per_tile():
    model = tiny_model()
    x, k = smooth_image(48, 40), torch.from_numpy(gaussian_kernel(1.5, 1.0, 20)).float()[None]
    windows = tile_windows(48, 40, 24, 8)
    assert len(windows) == 3 * 2 and windows[0] == (0, 24, 0, 24) and windows[-1] == (24, 48, 16, 40)
    assert tile_windows(48, 40, None, 8) == tile_windows(20, 20, 24, 8)[:0] + [(0, 48, 0, 40)]
    same = k[:, None].expand(1, len(windows), 17, 17)
    torch.testing.assert_close(model.deblur_tiled(x, same, 24, 8), model.deblur_tiled(x, k, 24, 8))
    # a different kernel in one tile changes that tile's part of the result, not the far corner
    other = same.clone()
    other[:, 0] = torch.from_numpy(gaussian_kernel(3.0, 3.0, 0)).float()
    changed = (model.deblur_tiled(x, other, 24, 8) - model.deblur_tiled(x, k, 24, 8)).abs()
    assert changed[..., :10, :10].max() > 1e-3 and changed[..., 30:, 30:].max() == 0
    with pytest.raises(ValueError, match="one kernel per tile"):
        model.deblur_tiled(x, same[:, :2], 24, 8)
    with pytest.raises(ValueError, match="tile kernel"):
        model.deblur_tiled(x, same, 24, 8, self_ensemble=True)


def test_deblur_tiled_gives_each_tile_the_context_asked_for():
    """``tile_context`` px of the image around each tile go in with it and are cut off after: with context enough for
    every tile to see the whole image, the tiles are the one-pass result; with a little, only the tiles' borders
    move."""
    model = tiny_model()
    x, k = torch.rand(1, 3, 48, 40), torch.from_numpy(gaussian_kernel(1.5, 1.0, 20)).float()[None]
    one_pass, plain = model.deblur_tiled(x, k, None), model.deblur_tiled(x, k, 24, 8)
    assert (plain - one_pass).abs().max() > 1e-3
    torch.testing.assert_close(model.deblur_tiled(x, k, 24, 8, tile_context=48), one_pass, atol=1e-5, rtol=0)
    some = model.deblur_tiled(x, k, 24, 8, tile_context=4)
    assert some.shape == x.shape and (some - plain).abs().max() > 1e-3
    # one context per tile (tile_windows: 3 rows × 2 columns here): only the first tile's own pixels move
    first = model.deblur_tiled(x, k, 24, 8, tile_context=[48, 0, 0, 0, 0, 0])
    moved = (first - plain).abs().amax(dim=(0, 1)) > 1e-6
    assert moved[:8, :8].any() and not moved[24:].any() and not moved[:, 24:].any()
    with pytest.raises(ValueError, match="one tile_context per tile"):
        model.deblur_tiled(x, k, 24, 8, tile_context=[48, 0])
    flow = torch.zeros(1, 2, 48, 40)  # a motion flow is cut with the same context
    motion = tiny_model(kernel_conditioning="motion_flow")
    torch.testing.assert_close(
        motion.deblur_tiled(x, k, 24, 8, motion_flow=flow, tile_context=48),
        motion.deblur_tiled(x, k, None, motion_flow=flow),
        atol=1e-5,
        rtol=0,
    )


def test_deblur_tiled_tells_each_tile_whether_its_kernel_is_an_estimate():
    """With tile kernels, ``kernel_is_estimate`` may be B×T: a photo may mix measured disks and Gaussian estimates."""
    model = tiny_model(kernel_estimate_input=True)
    x, k = smooth_image(48, 40), torch.from_numpy(gaussian_kernel(1.5, 1.0, 20)).float()[None]
    same = k[:, None].expand(1, len(tile_windows(48, 40, 24, 8)), 17, 17)
    flags = torch.ones(same.shape[:2], dtype=torch.bool)
    estimate = model.deblur_tiled(x, same, 24, 8, kernel_is_estimate=True)
    torch.testing.assert_close(model.deblur_tiled(x, same, 24, 8, kernel_is_estimate=flags), estimate)
    flags[:, 0] = False  # the first tile's kernel is known: only its part of the result changes
    changed = (model.deblur_tiled(x, same, 24, 8, kernel_is_estimate=flags) - estimate).abs()
    assert changed[..., :10, :10].max() > 1e-4 and changed[..., 30:, 30:].max() == 0
    with pytest.raises(ValueError, match="per tile"):
        model.deblur_tiled(x, k, 24, 8, kernel_is_estimate=flags)
