"""``bikanet push`` against a fake Hub (tests/fake_hub.py): what is pushed loads back with transformers, datasets and
huggingface_hub, private repositories and branches behave, and token problems give one clear line."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, ModelCard, constants
from huggingface_hub.errors import RepositoryNotFoundError
from PIL import Image

from bikanet_hf import (
    BikanetConfig,
    BikanetForImageDeblurring,
    BikanetImageProcessor,
    BikanetKernelEstimator,
    BikanetKernelEstimatorConfig,
    cli,
)
from bikanet_hf.hub import write_model_card

from .fake_hub import fake_hub_fixture  # noqa: F401  (registers the `fake_hub` fixture)

REPO_ROOT = Path(__file__).resolve().parents[1]
VALIDATION = {
    "psnr": 27.654,
    "ssim": 0.81,
    "blurred_psnr": 24.3,
    "blurred_ssim": 0.66,
    "delta_psnr": 3.354,
    "num_pairs": 16,
}
TRAINING = {
    "steps": 10,
    "best_step": 10,
    "train_minutes": 0.1,
    "hardware": "CPU, 1 thread",
    "batch_size": 2,
    "crop_size": 16,
    "learning_rate": 1e-3,
    "loss": "l1",
    "ema_decay": 0.0,
    "bank16_fraction": 0.5,
    "context_probability": 0.1,
    "noise_sigma": 0.0,
    "seed": 0,
    "train_sources": ["train"],
    "num_parameters": 1000,
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A saved tiny BIKAnet with processor and model card: ``(folder, model)``."""
    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    config = BikanetConfig(
        hidden_size=4, block_hidden_size=8, num_blocks=1, mapping_hidden_size=8, mapping_num_layers=1
    )
    model = BikanetForImageDeblurring(config).eval()
    with torch.no_grad():  # a non-zero tail, so that the output depends on every weight
        model.tail.weight.data.normal_(0, 0.1)
    model.save_pretrained(folder)
    BikanetImageProcessor().save_pretrained(folder)
    estimator = BikanetKernelEstimator(BikanetKernelEstimatorConfig(head_hidden_size=8, head_layers=1))
    estimator.save_pretrained(folder / "kernel_estimator")  # a whole blind deblurrer in one repository
    write_model_card(folder, {"validation_quick": VALIDATION, "training": TRAINING}, name="tiny")
    return folder, model


def deblur(model):
    """The output on a fixed random picture and kernel (self-contained: a subprocess runs it too)."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand(1, 3, 20, 26, generator=generator)
    kernel = torch.rand(1, 17, 17, generator=generator) ** 8
    kernel = kernel / kernel.sum()
    with torch.no_grad():
        return model(pixels, kernel).reconstruction


def push(*args: str) -> int:
    return cli.main(["push", *map(str, args)])


def test_push_model_loads_back_with_transformers_and_its_card(fake_hub, tiny_model, capsys, tmp_path):
    from transformers import AutoModel

    folder, model = tiny_model
    assert push("model", folder, "user/tiny") == 0
    assert f"{fake_hub.url}/user/tiny" in capsys.readouterr().out
    pushed = set(fake_hub.files("user/tiny"))
    assert {"config.json", "model.safetensors", "README.md", "modeling_bikanet.py", "pipeline_bikanet.py"} <= pushed
    assert "kernel_estimator/model.safetensors" in pushed
    assert fake_hub.repo("user/tiny").private is False

    expected = deblur(model)
    loaded = BikanetForImageDeblurring.from_pretrained("user/tiny").eval()
    torch.testing.assert_close(deblur(loaded), expected, rtol=0, atol=0)
    assert type(AutoModel.from_pretrained("user/tiny")) is BikanetForImageDeblurring
    processor, default = (
        BikanetImageProcessor.from_pretrained("user/tiny").to_dict(),
        BikanetImageProcessor().to_dict(),
    )
    assert {key: processor.get(key) for key in default} == default

    card = ModelCard.load("user/tiny")
    metrics = card.data.to_dict()["model-index"][0]["results"][0]["metrics"]
    assert {"type": "psnr", "name": "PSNR (dB)", "value": 27.654} in metrics

    # Remote code: in this process the installed package's registration wins over auto_map, so load in a process
    # where bikanet_hf cannot be imported; it reaches the fake Hub through HF_ENDPOINT and HF_HOME set by the fixture.
    torch.save(expected, tmp_path / "expected.pt")
    script = f"""
import sys
sys.modules["bikanet_hf"] = None  # as if the package were not installed
import torch
from transformers import AutoModel
{inspect.getsource(deblur)}
model = AutoModel.from_pretrained("user/tiny", trust_remote_code=True).eval()
assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
torch.testing.assert_close(deblur(model), torch.load({str(tmp_path / "expected.pt")!r}), rtol=0, atol=0)
# The image-deblurring pipeline from the Hub id, blind: its estimator comes from the repository's kernel_estimator/.
import numpy as np
from transformers import pipeline
pipe = pipeline("image-deblurring", model="user/tiny", trust_remote_code=True, device="cpu")
out = pipe(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8))
assert out["image"].size == (40, 30) and out["kernel"].shape == (17, 17), out
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_push_to_a_private_branch(fake_hub, tiny_model):
    folder, model = tiny_model
    assert push("model", folder, "user/tiny-dev", "--revision", "dev", "--private") == 0
    repo = fake_hub.repo("user/tiny-dev")
    assert repo.private is True and set(repo.branches) == {"main", "dev"}
    assert fake_hub.file("user/tiny-dev", "model.safetensors", revision="dev") is not None
    assert fake_hub.files("user/tiny-dev", revision="main") == [".gitattributes"]

    loaded = BikanetForImageDeblurring.from_pretrained("user/tiny-dev", revision="dev").eval()
    torch.testing.assert_close(deblur(loaded), deblur(model), rtol=0, atol=0)
    with pytest.raises(OSError):  # main has no model
        BikanetForImageDeblurring.from_pretrained("user/tiny-dev")
    with pytest.raises(RepositoryNotFoundError):  # private: invisible without a token
        HfApi(token=False).model_info("user/tiny-dev")


def test_bad_or_missing_token_gives_one_clear_line(fake_hub, tiny_model, monkeypatch, tmp_path, capsys):
    folder, _ = tiny_model
    assert push("model", folder, "user/refused", "--token", "hf_not_the_right_one") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bikanet push: error:") and "token was refused" in err and "\n" not in err

    monkeypatch.setenv("HF_TOKEN", "hf_also_wrong")
    assert push("model", folder, "user/refused") == 2
    assert "token was refused" in capsys.readouterr().err

    monkeypatch.delenv("HF_TOKEN")
    empty_home = tmp_path / "empty_home"
    empty_home.mkdir()
    monkeypatch.setenv("HF_HOME", str(empty_home))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(empty_home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(empty_home / "stored_tokens"))
    assert push("model", folder, "user/refused") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bikanet push: error: No Hugging Face token") and "hf auth login" in err
    assert fake_hub.repos == {}  # nothing was created

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    assert push("model", folder, "user/unreachable", "--token", fake_hub.token) == 2
    assert "could not reach the Hub at http://127.0.0.1:9" in capsys.readouterr().err


def test_push_refuses_incomplete_folders(fake_hub, tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    assert push("model", tmp_path, "user/incomplete") == 2
    err = capsys.readouterr().err
    assert "model weights" in err and "config.json" not in err.split("lacks")[1]
    (tmp_path / "README.md").write_text("# no YAML header\n")
    assert push("space", tmp_path, "user/no-sdk") == 2
    assert "sdk:" in capsys.readouterr().err
    assert push("corpus", tmp_path, "user/not-a-dataset") == 2
    assert "save_to_disk" in capsys.readouterr().err
    assert push("model", tmp_path / "missing", "user/missing") == 2
    assert "does not exist" in capsys.readouterr().err
    assert fake_hub.repos == {}


def test_offline_load_from_cache_after_one_download(fake_hub, tiny_model, monkeypatch):
    folder, model = tiny_model
    assert push("model", folder, "user/tiny-offline") == 0
    BikanetForImageDeblurring.from_pretrained("user/tiny-offline")  # fills the cache
    served = len(fake_hub.requests)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    loaded = BikanetForImageDeblurring.from_pretrained("user/tiny-offline").eval()
    torch.testing.assert_close(deblur(loaded), deblur(model), rtol=0, atol=0)
    assert len(fake_hub.requests) == served  # not one request reached the Hub
    with pytest.raises(OSError):  # and what is not cached fails instead of reaching out
        BikanetForImageDeblurring.from_pretrained("user/never-downloaded")


def _images(folder: Path, count: int, seed: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_push_corpus_loads_back_with_datasets(fake_hub, tmp_path):
    import datasets

    from bikanet_hf.corpus import build_corpus_dict, dataset_card

    corpus = build_corpus_dict(
        train_sources=[_images(tmp_path / "train", 2, 0)],
        validation_folder=_images(tmp_path / "val", 2, 1),
        crop_size=16,
        crops_per_image=1,
    )
    corpus.save_to_disk(str(tmp_path / "saved"))
    assert push("corpus", tmp_path / "saved", "user/corpus") == 0

    readme = fake_hub.file("user/corpus", "README.md", repo_type="dataset")
    assert readme is not None and b"BIKAnet blurred-crop corpus" in readme and b"configs:" in readme
    assert b"| `train` | 2 |" in readme and b"16\xc3\x9716 crops" in readme  # settings read from the data
    shards = fake_hub.repo("user/corpus", "dataset").resolve("main").files
    assert [shards[p].lfs for p in shards if p.endswith(".parquet")] == [True, True]  # through the LFS endpoints

    loaded = datasets.load_dataset("user/corpus")
    assert {split: len(ds) for split, ds in loaded.items()} == {"train": 2, "validation": 2}
    assert "kernel" in loaded["train"].column_names
    np.testing.assert_array_equal(np.asarray(loaded["train"][0]["kernel"]), np.asarray(corpus["train"][0]["kernel"]))

    # A card saved beside the data (train/build_corpus.py writes one, with the exact settings) is the one pushed,
    # with the split metadata that push_to_hub wrote.
    card = dataset_card(corpus, [tmp_path / "train"], {"crop_size": 16, "noise_sigma": 1.5}, pretty_name="My corpus")
    (tmp_path / "saved" / "README.md").write_text(card, encoding="utf-8")
    assert push("corpus", tmp_path / "saved", "user/corpus-card", "--private") == 0
    readme = fake_hub.file("user/corpus-card", "README.md", repo_type="dataset").decode()
    assert "# My corpus" in readme and "σ = 1.5" in readme and "configs:" in readme and "dataset_info:" in readme
    assert fake_hub.repo("user/corpus-card", "dataset").private is True


def test_push_space_built_by_space_build(fake_hub, tmp_path):
    out = tmp_path / "space"
    build = [sys.executable, str(REPO_ROOT / "space" / "build.py"), str(out), "--allow-missing-checkpoint"]
    result = subprocess.run(build, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert push("space", out, "user/space") == 0

    files = fake_hub.files("user/space", repo_type="space")
    assert {"app.py", "README.md", "requirements.txt", "bikanet_hf/__init__.py"} <= set(files)
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    assert fake_hub.file("user/space", "app.py", repo_type="space") == (out / "app.py").read_bytes()
    assert fake_hub.repo("user/space", "space").sdk == "gradio"
