"""Tests of bikanet_hf.corpus (corpus, validation split, on-the-fly sampling) and train/build_corpus.py."""

from __future__ import annotations

import importlib.util
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from bikanet_hf import corpus, image_io, kernels
from bikanet_hf.protocol import protocol_pairs

REPO_ROOT = Path(__file__).resolve().parents[1]
CROP = 16  # window = crop + 2·8 = 32: a.png and b.jpg fit, c.png (30×30) does not
CROPS = 2


def _write_images(folder: Path, sizes: dict[str, tuple[int, int]], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, (h, w) in sizes.items():
        # Smooth random content: JPEG keeps it recognisable, and blur visibly changes it.
        small = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
        Image.fromarray(small).resize((w, h), Image.BICUBIC).save(folder / name, quality=95)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """Three small images, one corrupt ``.png`` and a text file."""
    folder = tmp_path_factory.mktemp("tiny") / "tiny"
    _write_images(folder, {"a.png": (40, 50), "b.jpg": (90, 70), "c.png": (30, 30)})
    (folder / "bad.png").write_bytes(np.random.default_rng(1).bytes(200))
    (folder / "notes.txt").write_text("not an image")
    return folder


def _build(folder, **kwargs) -> datasets.Dataset:
    """build_corpus on the tiny folder, with its expected warning about bad.png silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped 1 unreadable")
        return corpus.build_corpus(folder, **{"crop_size": CROP, "crops_per_image": CROPS, **kwargs})


@pytest.fixture(scope="module")
def tiny_corpus(tiny_folder) -> datasets.Dataset:
    return _build(tiny_folder)


def _raw(ds: datasets.Dataset) -> dict:
    """Every column as stored (image bytes instead of decoded images), for exact comparisons."""
    raw = ds.cast_column("sharp", datasets.Image(decode=False)).cast_column("blurred", datasets.Image(decode=False))
    return raw.to_dict()


def _data_dir_or_skip() -> Path:
    try:
        return corpus.default_data_dir()
    except FileNotFoundError as err:
        pytest.skip(f"shared data folder not available: {err}")


# ---------------------------------------------------------------------------------------------------------------
# build_corpus
# ---------------------------------------------------------------------------------------------------------------
def test_columns_and_types(tiny_corpus):
    assert tiny_corpus.features == corpus.FEATURES
    assert len(tiny_corpus) == 3 * CROPS
    row = tiny_corpus[0]
    for column in ("sharp", "blurred"):
        assert isinstance(row[column], Image.Image)
        assert row[column].size == (CROP, CROP) and row[column].mode == "RGB"
    assert sorted(set(tiny_corpus["source"])) == ["tiny/a.png", "tiny/b.jpg", "tiny/c.png"]

    as_numpy = tiny_corpus.with_format("numpy")
    for i in range(len(tiny_corpus)):
        example = as_numpy[i]
        kernel = example["kernel"]
        assert kernel.shape == (17, 17) and kernel.dtype == np.float32
        assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
        assert example["sigma_major"] >= example["sigma_minor"] > 0
        # The stored parameters describe the stored kernel.
        expected = kernels.gaussian_kernel(example["sigma_major"], example["sigma_minor"], example["theta"])
        np.testing.assert_allclose(kernel, expected, atol=1e-5)
        kernel_id = int(example["kernel_id"])
        assert -1 <= kernel_id < 16
        if kernel_id >= 0:
            np.testing.assert_allclose(kernel, kernels.bank16()[kernel_id], atol=1e-6)


def test_blurred_is_the_protocol_blur_of_the_sharp_crop(tiny_folder):
    # Crops of 40 with their 8-pixel margin: interior pixels depend only on the crop itself, so there
    # blurred = quantize(blur(sharp)) exactly, whatever the padding did at the borders.
    ds = _build(tiny_folder, crop_size=40, crops_per_image=1).with_format("numpy")
    for example in ds:
        sharp = torch.from_numpy(example["sharp"].astype(np.float64)).permute(2, 0, 1)[None]
        reblurred = kernels.blur(sharp, example["kernel"].astype(np.float64))[0].permute(1, 2, 0).numpy()
        interior = (slice(8, -8), slice(8, -8))
        assert np.abs(reblurred[interior] - example["blurred"][interior]).max() <= 0.5 + 1e-3
        assert not np.array_equal(example["blurred"], example["sharp"])


def test_corrupt_file_skipped_with_one_warning(tiny_folder):
    with pytest.warns(UserWarning, match=r"Skipped 1 unreadable.*bad\.png") as record:
        ds = corpus.build_corpus(tiny_folder, crop_size=CROP, crops_per_image=CROPS)
    assert len([w for w in record if "unreadable" in str(w.message)]) == 1
    assert len(ds) == 3 * CROPS
    assert "tiny/bad.png" not in ds["source"]


def test_deterministic_for_a_seed(tiny_folder, tiny_corpus):
    again = _build(tiny_folder)
    assert _raw(again) == _raw(tiny_corpus)
    other = _build(tiny_folder, seed=1)
    assert other["kernel"][:] != tiny_corpus["kernel"][:]


def test_independent_of_num_proc(tiny_folder, tiny_corpus):
    parallel = _build(tiny_folder, num_proc=2)
    assert _raw(parallel) == _raw(tiny_corpus)


def test_noise_changes_only_the_blurred_pixels(tiny_folder, tiny_corpus):
    noisy = _raw(_build(tiny_folder, noise_sigma=5.0))
    clean = _raw(tiny_corpus)
    assert noisy["kernel"] == clean["kernel"] and noisy["sharp"] == clean["sharp"]
    assert noisy["blurred"] != clean["blurred"]


def test_small_images_padded_or_skipped(tiny_folder, tiny_corpus):
    assert "tiny/c.png" in tiny_corpus["source"]  # 30×30 < 32: padded by default
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped 1 unreadable")
        with pytest.warns(UserWarning, match=r"Skipped 1 image\(s\) smaller than 32×32.*c\.png"):
            skipped = corpus.build_corpus(tiny_folder, crop_size=CROP, crops_per_image=CROPS, small_images="skip")
    assert len(skipped) == 2 * CROPS
    assert "tiny/c.png" not in skipped["source"]
    with pytest.raises(ValueError, match="small_images"):
        corpus.build_corpus(tiny_folder, small_images="crop")


def test_bad_sources_raise_clear_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no readable images in .*empty"):
        corpus.build_corpus(empty)
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "bad.jpg").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="no readable images in .*only_bad"):
        corpus.build_corpus(only_bad)
    with pytest.raises(FileNotFoundError, match="not an existing folder"):
        corpus.build_corpus(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="not an existing folder"):
        corpus.build_corpus(str(tmp_path / "missing"))


def test_hub_dataset_source(monkeypatch):
    loaded = []
    rng = np.random.default_rng(3)
    images = [Image.fromarray(rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)) for _ in range(2)]
    fake = datasets.Dataset.from_dict(
        {"label": [0, 1], "picture": images},
        features=datasets.Features({"label": datasets.Value("int64"), "picture": datasets.Image()}),
    )

    def fake_load_dataset(hub_id, split):
        loaded.append((hub_id, split))
        return fake

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = corpus.build_corpus(["someone/photos", "someone/photos:test"], crop_size=CROP, crops_per_image=1)
    assert loaded == [("someone/photos", "train"), ("someone/photos", "test")]
    assert ds["source"] == ["someone/photos:0", "someone/photos:1", "someone/photos:test:0", "someone/photos:test:1"]


# ---------------------------------------------------------------------------------------------------------------
# Validation split, DatasetDict, card
# ---------------------------------------------------------------------------------------------------------------
def test_validation_split_equals_protocol_pairs():
    folder = _data_dir_or_skip() / corpus.DEFAULT_VALIDATION_FOLDER
    if not folder.is_dir():
        pytest.skip(f"{folder} not available")
    split = corpus.validation_split(folder, limit=3)
    assert split.features == corpus.FEATURES
    rows = split.with_format("numpy")
    for i, pair in enumerate(protocol_pairs(folder, track="quick", limit=3)):
        assert rows[i]["source"] == f"{corpus.DEFAULT_VALIDATION_FOLDER}/{pair.name}"
        assert int(rows[i]["kernel_id"]) == i % 16
        np.testing.assert_array_equal(rows[i]["blurred"], pair.blurred)
        np.testing.assert_array_equal(rows[i]["sharp"], pair.sharp)
        np.testing.assert_allclose(rows[i]["kernel"], pair.kernel, atol=1e-7)


def test_build_corpus_dict_and_card(tiny_folder, tmp_path):
    validation = tmp_path / "val"
    _write_images(validation, {"x.png": (24, 24), "y.png": (20, 28)}, seed=5)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped 1 unreadable")
        dd = corpus.build_corpus_dict(tiny_folder, validation, crop_size=CROP, crops_per_image=1)
    assert {name: len(split) for name, split in dd.items()} == {"train": 3, "validation": 2}
    assert dd["validation"]["kernel_id"] == [0, 1]

    card = corpus.dataset_card(dd, [tiny_folder, "/data/bsds500_train", "someone/photos"], {"crop_size": CROP})
    _, header, body = card.split("---\n", 2)
    metadata = yaml.safe_load(header)
    assert metadata["license"] == "other"
    assert metadata["task_categories"] == ["image-to-image"]
    assert set(metadata["tags"]) == {"deblurring", "image-restoration", "blur-kernels"}
    assert metadata["size_categories"] == ["n<1K"]
    assert "non-commercial research" in body and "someone/photos" in body
    assert f"{CROP}×{CROP} crops" in body


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(corpus.DATA_DIR_ENV, str(tmp_path))
    assert corpus.default_data_dir() == tmp_path
    monkeypatch.setenv(corpus.DATA_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=corpus.DATA_DIR_ENV):
        corpus.default_data_dir()
    assert corpus.default_data_dir(must_exist=False) == tmp_path / "missing"


# ---------------------------------------------------------------------------------------------------------------
# On-the-fly sampling
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sharp(tiny_folder) -> datasets.Dataset:
    with pytest.warns(UserWarning, match="bad.png"):
        return corpus.sharp_images(tiny_folder)


def test_sharp_images(sharp):
    assert list(sharp.features) == ["sharp", "source"]
    assert sharp["source"] == ["tiny/a.png", "tiny/b.jpg", "tiny/c.png"]
    assert sharp[2]["sharp"].size == (30, 30)


def test_on_the_fly_samples(sharp):
    ds = corpus.on_the_fly(sharp, num_samples=8, crop_size=CROP, seed=0)
    assert len(ds) == 8
    sample = ds[0]
    for key in ("sharp", "blurred"):
        assert sample[key].shape == (3, CROP, CROP) and sample[key].dtype == torch.float32
        assert 0.0 <= sample[key].min() and sample[key].max() <= 1.0
    assert torch.equal(sample["blurred"] * 255, (sample["blurred"] * 255).round())  # 8-bit values
    assert sample["kernel"].shape == (17, 17) and sample["kernel"].dtype == torch.float32
    assert sample["kernel_id"].dtype == torch.int64
    for key in ("sigma_major", "sigma_minor", "theta"):
        assert sample[key].dtype == torch.float32 and sample[key].ndim == 0

    again = ds[0]
    assert all(torch.equal(sample[key], again[key]) for key in sample)
    kernels_drawn = torch.stack([ds[i]["kernel"] for i in range(8)])
    assert len({tuple(k.flatten().tolist()) for k in kernels_drawn}) > 4

    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["sharp"].shape == (4, 3, CROP, CROP) and batch["kernel_id"].shape == (4,)
    assert torch.equal(batch["kernel"][1], ds[1]["kernel"])


def test_on_the_fly_blur_semantics_and_noise(sharp):
    # With a 40-pixel crop the 24×24 interior depends only on the crop: blurred = quantize(blur(sharp)) there,
    # after the flip/rotation augmentation (the kernel blurs the augmented crop).
    clean = corpus.on_the_fly(sharp, num_samples=6, crop_size=40, seed=7)
    noisy = corpus.on_the_fly(sharp, num_samples=6, crop_size=40, seed=7, noise_sigma=10.0, noise_probability=1.0)
    for i in range(6):
        sample, noisy_sample = clean[i], noisy[i]
        reblurred = kernels.blur((sample["sharp"] * 255).round().double()[None], sample["kernel"].double())[0]
        difference = (reblurred - sample["blurred"].double() * 255)[:, 8:-8, 8:-8].abs().max()
        assert difference <= 0.5 + 1e-3
        # Noise changes the blurred pixels only: same crop, augmentation and kernel.
        assert torch.equal(noisy_sample["sharp"], sample["sharp"])
        assert torch.equal(noisy_sample["kernel"], sample["kernel"])
        assert not torch.equal(noisy_sample["blurred"], sample["blurred"])
        assert 0 < noisy_sample["noise_sigma"] <= 10.0 and sample["noise_sigma"] == 0


def test_on_the_fly_jpeg_share_changes_only_the_blurred_pixels(sharp):
    lossless = corpus.on_the_fly(sharp, num_samples=30, crop_size=CROP, seed=5)
    compressed = corpus.on_the_fly(sharp, num_samples=30, crop_size=CROP, seed=5, jpeg_probability=0.5)
    qualities = []
    for i in range(30):
        before, after = lossless[i], compressed[i]
        assert all(torch.equal(before[key], after[key]) for key in before if key not in ("blurred", "jpeg_quality"))
        assert before["jpeg_quality"] == 0
        quality = int(after["jpeg_quality"])
        if quality == 0:
            assert torch.equal(after["blurred"], before["blurred"])
            continue
        qualities.append(quality)
        low, high = corpus.JPEG_QUALITY_RANGE
        assert low <= quality <= high
        blurred = (before["blurred"] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        assert torch.equal(after["blurred"], image_io.to_tensor(image_io.jpeg_roundtrip(blurred, quality)))
    assert 5 < len(qualities) < 25 and len(set(qualities)) > 3
    with pytest.raises(ValueError, match="jpeg_probability"):
        corpus.on_the_fly(sharp, num_samples=1, crop_size=CROP, jpeg_probability=1.5)


def test_on_the_fly_without_context_is_the_protocol_blur_of_the_crop(sharp):
    ds = corpus.on_the_fly(sharp, num_samples=3, crop_size=CROP, seed=2, context_probability=0.0)
    for i in range(3):
        sample = ds[i]
        sharp_uint8 = (sample["sharp"] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        expected = kernels.degrade(sharp_uint8, sample["kernel"].double().numpy())
        np.testing.assert_array_equal((sample["blurred"] * 255).round().to(torch.uint8).permute(1, 2, 0), expected)


def test_on_the_fly_defocus_share(sharp):
    ds = corpus.on_the_fly(sharp, num_samples=40, crop_size=CROP, seed=4, defocus_fraction=0.5)
    disks = [s for s in (ds[i] for i in range(40)) if s["sigma_major"] == s["sigma_minor"] and s["theta"] == 0]
    assert 8 < len(disks) < 32
    for sample in disks[:3]:
        radius = 2 * float(sample["sigma_major"])
        np.testing.assert_allclose(sample["kernel"].numpy(), kernels.defocus_kernel(radius), atol=1e-6)
    with pytest.raises(ValueError, match="defocus_fraction"):
        corpus.on_the_fly(sharp, num_samples=1, crop_size=CROP, defocus_fraction=0.5, kernel_family="motion")


def test_on_the_fly_near_sharp_share(sharp):
    low, high = kernels.NEAR_SHARP_SIGMA_RANGE
    plain = corpus.on_the_fly(sharp, num_samples=40, crop_size=CROP, seed=4)
    ds = corpus.on_the_fly(sharp, num_samples=40, crop_size=CROP, seed=4, near_sharp_fraction=0.5)
    near = [s for s in (ds[i] for i in range(40)) if s["sigma_major"] <= high]
    assert 8 < len(near) < 32
    for sample in near:
        assert low <= float(sample["sigma_minor"]) <= float(sample["sigma_major"]) <= high
        widths = (float(sample["sigma_major"]), float(sample["sigma_minor"]), float(sample["theta"]))
        np.testing.assert_allclose(sample["kernel"].numpy(), kernels.gaussian_kernel(*widths), atol=1e-6)
    assert not any(plain[i]["sigma_major"] < high for i in range(40))  # without the option: σ ≥ 0.6
    with pytest.raises(ValueError, match="near_sharp_fraction"):
        corpus.on_the_fly(sharp, num_samples=1, crop_size=CROP, near_sharp_fraction=0.5, kernel_family="motion")


def test_on_the_fly_transform_pickles(sharp):
    ds = corpus.on_the_fly(sharp, num_samples=4, crop_size=CROP, seed=3)
    expected = ds[2]
    transform = pickle.loads(pickle.dumps(ds.format["format_kwargs"]["transform"]))
    result = transform({"sample_id": [2]})
    assert torch.equal(result["blurred"][0], expected["blurred"])


def test_gaussian_samples_take_whole_photo_estimates(tiny_folder, sharp, tmp_path):
    """train/precompute_kernel_estimates.py --kernel_family gaussian: each kernel estimated from its whole blurred
    photo as deblur() does; the corpus then gives those estimates, unaligned, with crops of the same photos."""
    from bikanet_hf.estimation import estimate_kernel

    output = tmp_path / "estimates.npz"
    script = REPO_ROOT / "train" / "precompute_kernel_estimates.py"
    options = ["--train_dirs", str(tiny_folder), "--per_image", "2", "--workers", "1", "--kernel_family", "gaussian"]
    options += ["--near_sharp_fraction", "0.5"]
    subprocess.run([sys.executable, str(script), "--output", str(output), *options], check=True, timeout=300)
    made = np.load(output)
    assert made["kernel"].shape == made["estimate"].shape == (6, 17, 17) and str(made["kernel_family"]) == "gaussian"
    photo = np.array(Image.open(tiny_folder / "b.jpg").convert("RGB"))
    entry = 3  # photo 1 (b.jpg), its second kernel
    drawn = kernels.sample_kernels(1, np.random.default_rng([0, 1, 1]), bank16_fraction=0.5, near_sharp_fraction=0.5)
    kernel = drawn.kernels[0]
    np.testing.assert_allclose(made["kernel"][entry], kernel, atol=1e-6)
    assert 0 < sum(kernels.kernel_spread(k)[0] < kernels.NEAR_SHARP_SIGMA_RANGE[1] + 0.01 for k in made["kernel"]) < 6
    expected = estimate_kernel(kernels.degrade(photo, kernel), method="amortized", for_deblurring=True)
    np.testing.assert_allclose(made["estimate"][entry], expected, atol=1e-6)

    ds = corpus.on_the_fly(
        sharp, num_samples=6, crop_size=CROP, estimated_kernel_probability=1.0, kernel_estimates=output
    )
    turned = [np.rot90(k, t) for e in made["estimate"] for k in (e, e[:, ::-1]) for t in range(4)]
    for i in range(6):
        sample = ds[i]
        assert sample["kernel_is_estimate"] == 1 and not torch.equal(sample["model_kernel"], sample["kernel"])
        assert any(np.allclose(sample["model_kernel"], k, atol=1e-6) for k in turned)
    with pytest.raises(ValueError, match="needs kernel_estimates"):
        corpus.on_the_fly(sharp, num_samples=1, crop_size=CROP, estimated_kernel_probability=0.5)
    with pytest.raises(ValueError, match="holds no 31×31 kernels"):
        corpus.on_the_fly(
            sharp, num_samples=1, crop_size=40, kernel_family="motion", estimated_kernel_probability=1.0,
            kernel_estimates=output,
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# train/build_corpus.py
# ---------------------------------------------------------------------------------------------------------------
def _load_script():
    spec = importlib.util.spec_from_file_location("build_corpus_script", REPO_ROOT / "train" / "build_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_corpus_script(tiny_folder, tmp_path, capsys):
    script = _load_script()
    validation = tmp_path / "val"
    _write_images(validation, {"x.png": (24, 24), "y.png": (20, 28)}, seed=5)
    output = tmp_path / "out"
    argv = ["--train-dirs", str(tiny_folder), "--validation-dir", str(validation), "--crop-size", str(CROP),
            "--crops-per-image", "1", "--output-dir", str(output)]  # fmt: skip
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped 1 unreadable")
        script.main(argv)
        printed = capsys.readouterr().out
        assert "train: 3 rows" in printed and "validation: 2 rows" in printed
        loaded = datasets.load_from_disk(str(output))
        assert {name: len(split) for name, split in loaded.items()} == {"train": 3, "validation": 2}
        assert loaded["train"].features == corpus.FEATURES
        assert (output / "README.md").read_text().startswith("---\n")

        with pytest.raises(SystemExit, match="--overwrite"):
            script.main(argv)
        script.main([*argv, "--seed", "1", "--overwrite"])
        assert datasets.load_from_disk(str(output))["train"]["kernel"][:] != loaded["train"]["kernel"][:]

    not_a_dataset = tmp_path / "precious"
    not_a_dataset.mkdir()
    (not_a_dataset / "keep.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="does not hold a saved dataset"):
        script.main([*argv[:-1], str(not_a_dataset), "--overwrite"])
    assert (not_a_dataset / "keep.txt").exists()
    shutil.rmtree(output)
