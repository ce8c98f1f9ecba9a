#!/usr/bin/env python
"""Train the amortized kernel estimator (blurred image → Gaussian blur kernel) with 🤗 Accelerate.

Same conventions as ``train/train_bikanet.py`` (shared loop in ``bikanet_hf.training``): on-the-fly crops of sharp
images blurred with a fresh kernel each (bank16 mixed with the random Gaussian family; with ``--kernel_family
motion`` camera-shake kernels, for the motion model's estimator), ``checkpoint-N`` folders,
exact ``--resume_from_checkpoint latest``, EMA, validation, ``save_pretrained`` of the best checkpoint with a model
card. Loss and validation score: the protocol's kernel error ``Σ|k̂ − k|``; validation estimates each of the
protocol's quick pairs of bsds500_val from the whole blurred image (``BikanetKernelEstimator.estimate``).

Example:

    python train/train_kernel_estimator.py --output_dir runs/estimator --max_train_steps 3000 \\
        --resume_from_checkpoint latest
    python train/train_kernel_estimator.py --output_dir runs/motion-estimator --kernel_family motion
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from bikanet_hf import corpus
from bikanet_hf.configuration_kernel_estimator import BikanetKernelEstimatorConfig
from bikanet_hf.image_io import to_tensor
from bikanet_hf.metrics import kernel_l1
from bikanet_hf.modeling_kernel_estimator import BikanetKernelEstimator, kernel_covariance, spread_error
from bikanet_hf.protocol import protocol_pairs
from bikanet_hf.training import (
    TrainingTask,
    add_training_arguments,
    check_training_arguments,
    run_summary,
    run_training,
    training_sources,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(
        p,
        crop_size=128,
        learning_rate=1e-3,
        learning_rate_help="Peak Adam learning rate.",
        context_probability=1.0,
        context_probability_help="Fraction of crops blurred with their real surroundings (default 1.0: what a "
        "crop of a real photo looks like); the rest are blurred with mirror padding.",
    )
    g = p.add_argument_group("model (BikanetKernelEstimatorConfig fields)")
    g.add_argument("--init_from", default=None, help="Start from the weights of a pretrained estimator folder.")
    g.add_argument("--head_hidden_size", type=int, default=None, help="BikanetKernelEstimatorConfig.head_hidden_size.")
    g.add_argument("--head_layers", type=int, default=None, help="BikanetKernelEstimatorConfig.head_layers.")
    g.add_argument("--num_directions", type=int, default=None, help="BikanetKernelEstimatorConfig.num_directions.")
    g.add_argument(
        "--calibration_samples",
        type=int,
        default=1024,
        help="Training crops (drawn apart from the training stream) that set the feature standardisation.",
    )
    args = p.parse_args(argv)
    check_training_arguments(p, args)
    if args.estimated_kernel_probability:
        p.error("--estimated_kernel_probability is for BIKAnet training (an estimator learns from the true kernel)")
    return args


@torch.no_grad()
def validate(model: BikanetKernelEstimator, pairs: list, device: torch.device) -> dict:
    """Mean kernel error of whole-image estimates on the protocol's pairs (for a motion estimator: the error
    between the Gaussians of the estimated and the true covariance, ``spread_error``)."""
    model.eval()
    errors = []
    for pair in pairs:
        image = to_tensor(pair.blurred).to(device)
        estimate = model.estimate(image)
        if model.config.kernel_family == "motion":
            true = kernel_covariance(torch.from_numpy(pair.kernel)[None].float().to(device))
            errors.append(float(spread_error(estimate.covariance, true, model.config.kernel_size)[0]))
        else:
            errors.append(kernel_l1(estimate.kernel[0].cpu().double().numpy(), pair.kernel))
    return {"kernel_l1": float(np.mean(errors)), "num_pairs": len(pairs)}


def build_config(args: argparse.Namespace) -> BikanetKernelEstimatorConfig:
    """The default config with the flags given; for camera shake (``--kernel_family motion``) also a 31×31 frame,
    widths up to 8 px (a 25-px shake has σ ≈ 7) and a wider re-blur."""
    fields = {f: getattr(args, f) for f in ("head_hidden_size", "head_layers", "num_directions")}
    fields = {k: v for k, v in fields.items() if v is not None}
    if args.kernel_family == "motion":
        fields |= {"kernel_family": "motion", "kernel_size": 31, "sigma_max": 8.0}
        fields["reblur_sigmas"] = [0.0, 0.7, 1.4, 2.8, 5.0, 8.0]
    return BikanetKernelEstimatorConfig(**fields)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    validation_dir = args.validation_dir or str(corpus.default_data_dir() / "bsds500_val")

    def make_task() -> TrainingTask:
        track = "motion" if args.kernel_family == "motion" else "quick"
        pairs = list(protocol_pairs(validation_dir, track=track, limit=args.validation_limit))
        if args.init_from:
            model = BikanetKernelEstimator.from_pretrained(args.init_from)
        else:
            model = BikanetKernelEstimator(build_config(args))
            # Seed + 1: calibration crops are drawn apart from the training stream (seed), reproducibly.
            calibration = corpus.on_the_fly(
                corpus.sharp_images(training_sources(args)),
                num_samples=args.calibration_samples,
                crop_size=args.crop_size,
                seed=args.seed + 1,
                bank16_fraction=args.bank16_fraction,
                context_probability=args.context_probability,
                kernel_family=args.kernel_family,
            )
            model.calibrate(torch.stack(calibration[:]["blurred"]))
        return TrainingTask(
            name="Kernel estimator",
            model=model,
            compute_loss=lambda model, batch: model(pixel_values=batch["blurred"], labels=batch["kernel"]).loss,
            validate=lambda model, device: validate(model, pairs, device),
            describe=lambda m: f"validation kernel error {m['kernel_l1']:.4f} ({m['num_pairs']} {track} pairs)",
            finalize=lambda output_dir, state: finalize(output_dir, state, args),
            score_key="kernel_l1",
            higher_is_better=False,
        )

    return run_training(args, make_task)


def finalize(output_dir: Path, state: dict, args: argparse.Namespace) -> None:
    """The best estimator, its measured validation and a short model card at the top of ``output_dir``."""
    best = BikanetKernelEstimator.from_pretrained(output_dir / "best")
    best.save_pretrained(output_dir, safe_serialization=True)
    metrics = next(v for v in state["validation"] if v["step"] == state["best_step"])
    training = run_summary(state, args) | {"init_from": args.init_from}
    results = {"validation_quick": metrics, "training": training, "history": state["validation"]}
    (output_dir / "eval_results.json").write_text(json.dumps(results, indent=2))
    (output_dir / "README.md").write_text(model_card(best.config, metrics, training))


def model_card(config: BikanetKernelEstimatorConfig, metrics: dict, training: dict) -> str:
    """The README.md of an estimator folder; every number from its run."""
    if config.kernel_family == "motion":
        what = (
            "the covariance (length and direction) of its camera shake, for blind deblurring with the BIKAnet motion\n"
            'model (`bikanet_hf.estimate_kernel(..., blur_type="motion")` turns it into a straight motion)'
        )
        score = (
            f"mean spread error (Σ|g(Σ̂) − g(Σ)| between the Gaussians of the estimated and the true covariance) = "
            f"{metrics['kernel_l1']:.4f}\non the first {metrics['num_pairs']} pairs of the protocol's motion track "
            "(Levin kernels) of BSDS500 val"
        )
        kernels = "a random camera-shake trajectory up to 25 px long"
        limits = (
            f"it answers with a covariance (spread from {config.sigma_min} to {config.sigma_max} px): the shake's "
            "path (curves, pauses) is beyond it"
        )
    else:
        what = "its Gaussian blur kernel (17×17), for blind deblurring with BIKAnet"
        score = (
            f"mean kernel error Σ|k̂ − k| = {metrics['kernel_l1']:.4f} on the\nfirst {metrics['num_pairs']} protocol "
            "quick pairs of BSDS500 val (0 = exact, 2 = disjoint)"
        )
        kernels = f"bank16 with probability {training['bank16_fraction']}, else the random Gaussian family"
        limits = (
            f"it can only answer with a Gaussian (σ from {config.sigma_min} to {config.sigma_max} px); camera-shake "
            "motion blur is the motion estimator's job"
        )
    started_from = f" Started from the weights of {training['init_from']}." if training.get("init_from") else ""
    return f"""---
library_name: transformers
license: other
license_name: research-only-weights
tags: [blur-kernel-estimation, deblurring, bikanet]
---

# BIKAnet amortized kernel estimator

One network pass from a blurred photo to {what}.
It measures how the image's edges soften when re-blurred by known Gaussians, in {config.num_directions}
directions, and an MLP maps these statistics to the blur; large images are measured on their most textured
{config.crop_size}×{config.crop_size} crops.

Validation (measured at the end of training): {score}.

Training: {training["steps"]} steps (best at {training["best_step"]}), batch {training["batch_size"]} of
{training["crop_size"]}×{training["crop_size"]} crops of {", ".join(training["train_sources"])}, each blurred with a
fresh kernel ({kernels}), Adam {training["learning_rate"]:g}, {training["train_minutes"]:.1f} minutes on
{training["hardware"]}; {training["num_parameters"]:,} parameters.{started_from}

Limitations: {limits}. Trained on BSDS500 (non-commercial research licence).
"""


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
