"""Runs the real training script: 2 steps, then a resume for 1 more, against 3 uninterrupted steps."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from bikanet_hf import BikanetConfig, BikanetForImageDeblurring, BikanetImageProcessor
from tests.conftest import REPO_ROOT, script_command

TINY = [
    "--hidden_size",
    "4",
    "--block_hidden_size",
    "8",
    "--num_blocks",
    "1",
    "--mapping_hidden_size",
    "8",
    "--mapping_num_layers",
    "1",
]


def training_command(folders, output_dir, *extra) -> list[str]:
    return script_command("train_bikanet.py", folders, output_dir, *extra)


def run_training(folders, output_dir, steps, *extra):
    schedule = [
        "--max_train_steps",
        str(steps),
        "--checkpointing_steps",
        "1",
        "--validation_steps",
        "2",
        "--checkpoints_total_limit",
        "2",
        "--lr_warmup_steps",
        "1",
        "--ema_decay",
        "0.9",
    ]
    result = subprocess.run(
        training_command(folders, output_dir, *schedule, *TINY, *extra), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_train_resume_and_load(folders, tmp_path):
    # A 3-step run stopped after 2 steps, then the same command resumes at step 2 and runs the last one.
    run_training(folders, tmp_path / "resumed", 3, "--resume_from_checkpoint", "latest", "--stop_after_steps", "2")
    assert sorted(p.name for p in (tmp_path / "resumed").glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    result = run_training(folders, tmp_path / "resumed", 3, "--resume_from_checkpoint", "latest")
    assert "Resumed from" in result.stderr
    # checkpoints_total_limit=2 pruned the oldest
    assert sorted(p.name for p in (tmp_path / "resumed").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    run_training(folders, tmp_path / "straight", 3)

    # Exact resume: the same weights, optimizer moments and EMA as an uninterrupted run.
    resumed = load_file(tmp_path / "resumed" / "checkpoint-3" / "model.safetensors")
    straight = load_file(tmp_path / "straight" / "checkpoint-3" / "model.safetensors")
    assert resumed.keys() == straight.keys()
    for key in resumed:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)

    state = json.loads((tmp_path / "resumed" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and [v["step"] for v in state["validation"]] == [2, 3]
    assert "psnr_without_ema" in state["validation"][0]

    model = BikanetForImageDeblurring.from_pretrained(tmp_path / "resumed")
    BikanetImageProcessor.from_pretrained(tmp_path / "resumed")
    assert model.config.hidden_size == 4
    card = (tmp_path / "resumed" / "README.md").read_text()
    results = json.loads((tmp_path / "resumed" / "eval_results.json").read_text())
    assert f"{results['validation_quick']['psnr']:.3f}" in card and "pipeline_tag: image-to-image" in card


@pytest.mark.slow
def test_training_with_noise_and_jpeg_is_scored_on_those_tracks_too(folders, tmp_path):
    noise = ("--noise_sigma", "5", "--noise_probability", "0.5", "--noise_level_input", "true")
    run_training(folders, tmp_path / "noisy", 2, *noise, "--jpeg_probability", "0.5")
    state = json.loads((tmp_path / "noisy" / "checkpoint-2" / "trainer_state.json").read_text())
    metrics = state["validation"][0]
    # the same images and kernels with the protocol's noise (σ = 2.55), and saved as JPEG q90: the blurred input
    # scores lower there
    assert metrics["blurred_psnr_noisy"] < metrics["blurred_psnr"]
    assert metrics["blurred_psnr_jpeg"] < metrics["blurred_psnr"]
    assert metrics["score_with_noise"] == pytest.approx((metrics["psnr"] + metrics["psnr_noisy"]) / 2)
    tracks = (metrics["psnr"], metrics["psnr_noisy"], metrics["psnr_jpeg"])
    assert metrics["score_with_jpeg"] == pytest.approx(sum(tracks) / 3)
    assert state["best_score"] == pytest.approx(metrics["score_with_jpeg"])
    card = (tmp_path / "noisy" / "README.md").read_text()
    assert "50% of them with white Gaussian noise of σ uniform in [0, 5]" in card
    assert "then 50% of them saved as a JPEG of quality 70–95" in card
    assert f"| noise track: this model, true kernel | {metrics['psnr_noisy']:.2f} |" in card
    assert f"| JPEG track: this model, true kernel | {metrics['psnr_jpeg']:.2f} |" in card
    assert "It measures the photo's noise level itself" in card
    assert BikanetForImageDeblurring.from_pretrained(tmp_path / "noisy").config.noise_level_input


def test_refuses_to_start_over_existing_checkpoints(folders, tmp_path):
    (tmp_path / "checkpoint-5").mkdir()
    cmd = training_command(folders, tmp_path, "--max_train_steps", "1", *TINY)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "--resume_from_checkpoint latest" in result.stderr


@pytest.mark.slow
def test_init_from_a_pretrained_folder(folders, tmp_path):
    start = tmp_path / "start"
    BikanetForImageDeblurring(BikanetConfig(hidden_size=6, block_hidden_size=8, num_blocks=1)).save_pretrained(start)
    cmd = training_command(folders, tmp_path / "next", "--init_from", str(start), "--max_train_steps", "1")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert BikanetForImageDeblurring.from_pretrained(tmp_path / "next").config.hidden_size == 6
    # Model flags change the pretrained config: weights that still fit are kept (here the head, with the new
    # motion-flow channels, starts fresh), the rest start fresh; the log says which.
    grown = [*cmd, "--output_dir", str(tmp_path / "grown"), "--kernel_conditioning", "motion_flow"]
    result = subprocess.run([*grown, "--kernel_family", "motion", "--kernel_size", "31", "--crop_size", "34"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MISMATCH" in result.stderr or "mismatch" in result.stderr
    start_weights = load_file(start / "model.safetensors")
    grown_model = BikanetForImageDeblurring.from_pretrained(tmp_path / "grown")
    assert grown_model.config.kernel_conditioning == "motion_flow" and grown_model.mapping is None
    assert grown_model.head.weight.shape[1] == start_weights["head.weight"].shape[1] + 2
    bad = subprocess.run([*cmd, "--config_name", str(start)], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--init_from takes the config" in bad.stderr


@pytest.mark.slow
def test_gaussian_training_with_whole_photo_estimates(folders, tmp_path):
    """--estimated_kernel_probability with Gaussian blur: the amortized estimates of whole training photos
    (train/precompute_kernel_estimates.py), validated and scored with the true and the estimated kernels."""
    estimates = tmp_path / "estimates.npz"
    precompute = [
        sys.executable,
        str(REPO_ROOT / "train" / "precompute_kernel_estimates.py"),
        "--output",
        str(estimates),
    ]
    options = [
        "--train_dirs",
        str(folders / "train"),
        "--kernel_family",
        "gaussian",
        "--per_image",
        "1",
        "--workers",
        "1",
    ]
    subprocess.run([*precompute, *options], check=True, capture_output=True, timeout=300)
    blind = [
        "--estimated_kernel_probability",
        "0.5",
        "--kernel_estimates",
        str(estimates),
        "--kernel_estimate_input",
        "true",
    ]
    run_training(folders, tmp_path / "g", 2, *blind)
    results = json.loads((tmp_path / "g" / "eval_results.json").read_text())
    best = results["validation_quick"]
    assert best["psnr_true_and_estimated"] == pytest.approx((best["psnr"] + best["psnr_estimated_kernel"]) / 2)
    assert best["psnr_true_and_estimated"] == max(v["psnr_true_and_estimated"] for v in results["history"])
    card = (tmp_path / "g" / "README.md").read_text()
    assert "50% of the crops given the blind (amortized) estimate of their kernel instead of the true one, so" in card
    assert "kernel estimated blind (amortized)" in card and "estimates.npz" in card
    assert BikanetForImageDeblurring.from_pretrained(tmp_path / "g").config.kernel_estimate_input
