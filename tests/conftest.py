"""Shared fixtures: the protocol's data folder (``../shared/data``) and small deterministic images."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("BIKANET_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"the protocol's data folder is not at {path} (set BIKANET_DATA_DIR)")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    """``train/`` (3 images) and ``val/`` (2 images) of small random pictures, for running training scripts."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("images")
    for split, count in (("train", 3), ("val", 2)):
        (root / split).mkdir()
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / split / f"{i}.png")
    return root


def script_command(script: str, folders: Path, output_dir: Path, *extra: str) -> list[str]:
    """A small, fast command line of a training script in ``train/`` on the ``folders`` fixture's images."""
    data = ["--train_dirs", str(folders / "train"), "--validation_dir", str(folders / "val")]
    small = ["--train_batch_size", "2", "--crop_size", "16", "--threads", "1"]
    return [sys.executable, str(REPO_ROOT / "train" / script), "--output_dir", str(output_dir), *data, *small, *extra]
