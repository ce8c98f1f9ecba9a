import json
import shutil
import sys

import numpy as np
import pytest
import torch

from bikanet_hf import BikanetConfig, BikanetForImageDeblurring, BikanetKernelEstimator, BikanetKernelEstimatorConfig
from bikanet_hf.kernels import gaussian_kernel
from bikanet_hf.metrics import psnr
from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "train"))
import evaluate  # noqa: E402


def test_wiener_baseline_restores_and_is_tuned(data_dir):
    from bikanet_hf.protocol import protocol_pairs

    pairs = list(protocol_pairs(data_dir / "bsds500_val", "quick", limit=3))
    balance, sweep = evaluate.tune_wiener_balance(pairs, grid=(1e-4, 1e-3, 1e-1))
    assert sweep[balance] == max(sweep.values())
    blurred = np.mean([psnr(p.sharp, p.blurred) for p in pairs])
    assert sweep[balance] > blurred + 1.0  # Wiener with the true kernel clearly helps


def test_evaluate_writes_json_and_markdown(tmp_path, data_dir):
    images = tmp_path / "images"
    images.mkdir()
    for name in sorted(p.name for p in (data_dir / "bsds500_val").iterdir())[:2]:
        shutil.copy(data_dir / "bsds500_val" / name, images / name)
    torch.manual_seed(0)
    BikanetForImageDeblurring(BikanetConfig(hidden_size=4, block_hidden_size=8, num_blocks=1)).save_pretrained(
        tmp_path / "model"
    )
    BikanetKernelEstimator(BikanetKernelEstimatorConfig(head_hidden_size=8, head_layers=1)).save_pretrained(
        tmp_path / "estimator"
    )
    report = evaluate.main(
        [
            "--model",
            f"tiny={tmp_path / 'model'}",
            "--sets",
            str(images),
            "--tracks",
            "quick",
            "random",
            "--wiener_balance",
            "5e-4",
            "--threads",
            "1",
            "--estimator",
            str(tmp_path / "estimator"),
            "--self_ensemble",
            "--out",
            str(tmp_path / "table"),
        ]
    )
    saved = json.loads((tmp_path / "table.json").read_text())
    assert saved["results"] == report["results"]
    quick = saved["results"]["images"]["quick"]
    variants = {"tiny", "tiny+ensemble", "tiny+blind", "tiny+blind+ensemble"}
    assert set(quick) == {"blurred", "wiener", "wiener-frontend", "kernel_estimate"} | variants
    assert quick["tiny"]["num_pairs"] == quick["tiny+blind"]["num_pairs"] == 2
    assert 0 <= quick["kernel_estimate"]["kernel_l1"] <= 2
    # An untrained BIKAnet returns its Wiener front-end exactly.
    assert quick["tiny"]["psnr"] == pytest.approx(quick["wiener-frontend"]["psnr"], abs=1e-9)
    # ... which treats a flipped or turned image alike: its self-ensemble is the same up to rounding.
    assert quick["tiny+ensemble"]["psnr"] == pytest.approx(quick["tiny"]["psnr"], abs=0.01)
    assert quick["wiener"]["delta_psnr"] > 0
    table = (tmp_path / "table.md").read_text()
    assert "| images | random |" in table and "tiny+blind+ensemble" in table and "kernel L1 (estimate)" in table


def test_evaluate_without_wiener_still_writes_its_table(tmp_path, data_dir, monkeypatch):
    # Folders given as paths need no shared data folder (a GPU machine may carry only those folders).
    monkeypatch.setenv("BIKANET_DATA_DIR", str(tmp_path / "no-such-folder"))
    images = tmp_path / "images"
    images.mkdir()
    first = sorted(p.name for p in (data_dir / "bsds500_val").iterdir())[0]
    shutil.copy(data_dir / "bsds500_val" / first, images / first)
    BikanetForImageDeblurring(BikanetConfig(hidden_size=4, block_hidden_size=8, num_blocks=1)).save_pretrained(
        tmp_path / "model"
    )
    args = ["--model", f"tiny={tmp_path / 'model'}", "--sets", str(images), "--no_wiener", "--threads", "1"]
    evaluate.main([*args, "--out", str(tmp_path / "table")])  # the legend named the (untuned) balance and failed
    table = (tmp_path / "table.md").read_text()
    assert "| images | quick |" in table and "wiener" not in table


def test_gaussian_sanity_of_wiener_helper():
    rng = np.random.default_rng(0)
    sharp = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    k = gaussian_kernel(1.0, 1.0, 0)
    from bikanet_hf.kernels import degrade

    blurred = degrade(sharp, k)
    out = evaluate.wiener_deblur(blurred, k, 1e-3)
    assert out.shape == sharp.shape and out.dtype == np.uint8
